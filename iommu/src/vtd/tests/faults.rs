//! Fault recording: overflow, compression, fault events (masked and not), FPD.

use super::*;

fn faulting_rig(records: u8) -> Rig {
    let mut rig = Rig::enabled(VtdConfig {
        fault_records: records,
        ..VtdConfig::default()
    });
    rig.context_table(0); // every device on bus 0: context not present (0x2)
    rig.w32(0x3c, 0x31);
    rig.w32(0x40, 0xfee0_1000);
    rig.w32(0x44, 0x0000_0002);
    rig
}

#[test]
fn overflow_sets_pfo_and_drops() {
    let rig = faulting_rig(2);
    for dev in 1..=3u8 {
        assert!(
            rig.translate(rid(0, dev, 0), 0x1000, Permissions::Read)
                .is_err()
        );
    }
    assert_eq!(rig.frcd(0).1 & 0xffff, 0x08);
    assert_eq!(rig.frcd(1).1 & 0xffff, 0x10);
    let fsts = rig.r32(0x34);
    assert_eq!(fsts & 3, 3, "PFO | PPF");
    let stats = rig.unit.stats();
    assert_eq!((stats.faults_recorded, stats.faults_dropped), (2, 1));
    // PFO set: even after a record is freed, faults are dropped until PFO is cleared.
    rig.w32(0x220 + 12, 1 << 31);
    assert!(rig.translate(rid(0, 4, 0), 0, Permissions::Read).is_err());
    assert_eq!(rig.frcd(0).1 >> 63, 0);
    rig.w32(0x34, 1);
    assert_eq!(rig.r32(0x34) & 1, 0);
    assert!(rig.translate(rid(0, 4, 0), 0, Permissions::Read).is_err());
    // Round robin: the next slot after 1 is 0.
    assert_eq!(rig.frcd(0).1 & 0xffff, 0x20);
}

#[test]
fn same_source_is_compressed() {
    let rig = faulting_rig(8);
    for _ in 0..5 {
        assert!(
            rig.translate(rid(0, 1, 0), 0x1000, Permissions::Read)
                .is_err()
        );
    }
    assert_eq!(rig.frcd(0).1 >> 63, 1);
    assert_eq!(rig.frcd(1).1 >> 63, 0);
    assert_eq!(rig.unit.stats().faults_dropped, 4);
    // Cleared: the next one is recorded again, in the next slot.
    rig.w32(0x22c, 1 << 31);
    assert_eq!(rig.r32(0x34) & 2, 0, "PPF follows the records");
    assert!(
        rig.translate(rid(0, 1, 0), 0x1000, Permissions::Read)
            .is_err()
    );
    assert_eq!(rig.frcd(1).1 >> 63, 1);
    assert_eq!((rig.r32(0x34) >> 8) & 0xff, 1, "FRI");
}

#[test]
fn masked_fault_event_is_pending_until_unmasked() {
    let rig = faulting_rig(8);
    // FECTL.IM is set at reset.
    assert!(
        rig.translate(rid(0, 1, 0), 0x1000, Permissions::Read)
            .is_err()
    );
    assert!(rig.msis.take().is_empty());
    assert_eq!(rig.r32(0x38), 1 << 31 | 1 << 30, "IM | IP");
    rig.w32(0x38, 0);
    assert_eq!(rig.msis.take(), vec![(0x2_fee0_1000, 0x31)]);
    assert_eq!(rig.r32(0x38), 0);
}

#[test]
fn unmasked_fault_event_is_sent_once_per_pending_condition() {
    let rig = faulting_rig(8);
    rig.w32(0x38, 0);
    assert!(
        rig.translate(rid(0, 1, 0), 0x1000, Permissions::Read)
            .is_err()
    );
    assert_eq!(rig.msis.take(), vec![(0x2_fee0_1000, 0x31)]);
    // Another fault while PPF is set: recorded, no new interrupt.
    assert!(
        rig.translate(rid(0, 2, 0), 0x1000, Permissions::Read)
            .is_err()
    );
    assert!(rig.msis.take().is_empty());
    assert_eq!(rig.frcd(1).1 >> 63, 1);
    // Software clears both; the next fault interrupts again.
    rig.w32(0x22c, 1 << 31);
    rig.w32(0x23c, 1 << 31);
    assert!(
        rig.translate(rid(0, 3, 0), 0x1000, Permissions::Read)
            .is_err()
    );
    assert_eq!(rig.msis.take().len(), 1);
}

#[test]
fn fpd_suppresses_qualified_faults_only() {
    let mut rig = faulting_rig(8);
    let dev = rid(0, 5, 0);
    let top = rig.alloc();
    rig.set_context_raw(dev, top | 1 << 1 | 1, 1 | 1 << 8);
    // Not present PTE: qualified, suppressed.
    assert!(rig.translate(dev, 0x1000, Permissions::Read).is_err());
    // Not-present context with FPD: suppressed too.
    rig.set_context_raw(rid(0, 6, 0), 1 << 1, 0);
    assert!(
        rig.translate(rid(0, 6, 0), 0x1000, Permissions::Read)
            .is_err()
    );
    assert_eq!(rig.frcd(0), (0, 0));
    assert_eq!(rig.unit.stats().faults_suppressed, 2);
    // Reserved bits in the context entry are not qualified: reported despite FPD.
    rig.set_context_raw(rid(0, 7, 0), top | 1 << 1 | 1 << 4 | 1, 1);
    assert!(
        rig.translate(rid(0, 7, 0), 0x1000, Permissions::Read)
            .is_err()
    );
    assert_eq!((rig.frcd(0).1 >> 32) & 0xff, 0xb);
}

#[test]
fn fri_points_at_the_oldest_pending_record_after_wrapping() {
    let rig = faulting_rig(4);
    // Fill slots 0..3, clear 0 and 1, then fault twice more: slots 0 and 1 are reused.
    for dev in 1..=4u8 {
        assert!(rig.translate(rid(0, dev, 0), 0, Permissions::Read).is_err());
    }
    rig.w32(0x22c, 1 << 31);
    rig.w32(0x23c, 1 << 31);
    assert_eq!((rig.r32(0x34) >> 8) & 0xff, 2);
    for dev in 5..=6u8 {
        assert!(rig.translate(rid(0, dev, 0), 0, Permissions::Read).is_err());
    }
    // Pending: 2, 3 (older), 0, 1 (newer). Linux walks from FRI while F is set.
    assert_eq!((rig.r32(0x34) >> 8) & 0xff, 2);
    let mut walked = Vec::new();
    let mut i = 2u64;
    while rig.frcd(i).1 >> 63 == 1 {
        walked.push(rig.frcd(i).1 & 0xffff);
        rig.w32(0x220 + 16 * i + 12, 1 << 31);
        i = (i + 1) % 4;
    }
    assert_eq!(walked, vec![0x18, 0x20, 0x28, 0x30]);
    assert_eq!(rig.r32(0x34) & 2, 0);
}
