//! Queued invalidation: head/tail, wait descriptors, errors, and principle 4 (a wait completes
//! only after the DMA that may use old translations has finished).

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::*;

#[test]
fn head_follows_tail_and_wait_writes_status() {
    let mut rig = Rig::new(VtdConfig::default());
    let base = rig.enable_qi();
    let status = rig.alloc();
    rig.submit(base, &[iotlb_desc(1, 0, 0, 0), wait_sw(status, 0x2)]);
    assert_eq!(rig.r64(0x80), 0x20, "IQH");
    assert_eq!(rig.r64(0x88), 0x20, "IQT");
    assert_eq!(rig.read_u64(status), 2);
    // A tail equal to the head does nothing.
    rig.write_u64(status, 0);
    rig.w32(0x88, 0x20);
    assert_eq!(rig.read_u64(status), 0);
    // Wrap-around: fill up to the last slot and beyond.
    let mut descs = vec![(4u64, 0u64); 253]; // IEC no-ops
    descs.push(wait_sw(status, 9));
    rig.submit(base, &descs);
    assert_eq!(rig.r64(0x80), 0, "2 + 254 descriptors wrap to index 0");
    rig.submit(base, &[(3, 0), wait_sw(status, 10)]);
    assert_eq!(rig.r64(0x80), 0x10 * 2, "wrapped to index 2");
    assert_eq!(rig.read_u64(status), 10);
    let stats = rig.unit.stats();
    assert_eq!(stats.waits, 3);
    assert_eq!(
        stats.invalidations[&crate::InvalidationKind::InterruptEntry],
        253
    );
    assert_eq!(stats.invalidations[&crate::InvalidationKind::DeviceTlb], 1);
}

#[test]
fn wait_with_interrupt_flag() {
    let mut rig = Rig::new(VtdConfig::default());
    let base = rig.enable_qi();
    rig.w32(0xa4, 0x4041);
    rig.w32(0xa8, 0xfee0_2000);
    rig.w32(0xac, 0);
    rig.w32(0xa0, 0); // unmask
    rig.submit(base, &[(5 | 1 << 4, 0)]);
    assert_eq!(rig.r32(0x9c), 1, "ICS.IWC");
    assert_eq!(rig.msis.take(), vec![(0xfee0_2000, 0x4041)]);
    // IWC still set: no second interrupt.
    rig.submit(base, &[(5 | 1 << 4, 0)]);
    assert!(rig.msis.take().is_empty());
    // Cleared (RW1C), masked: pending, then sent on unmask.
    rig.w32(0x9c, 1);
    assert_eq!(rig.r32(0x9c), 0);
    rig.w32(0xa0, 1 << 31);
    rig.submit(base, &[(5 | 1 << 4, 0)]);
    assert!(rig.msis.take().is_empty());
    assert_eq!(rig.r32(0xa0), 1 << 31 | 1 << 30, "IM | IP");
    rig.w32(0xa0, 0);
    assert_eq!(rig.msis.take(), vec![(0xfee0_2000, 0x4041)]);
    assert_eq!(rig.r32(0xa0), 0);
}

#[test]
fn bad_descriptor_stops_the_queue_with_iqe() {
    let mut rig = Rig::new(VtdConfig::default());
    rig.w32(0x3c, 0x55);
    rig.w32(0x40, 0xfee0_0000);
    rig.w32(0x38, 0); // fault events unmasked
    let base = rig.enable_qi();
    let status = rig.alloc();
    let bad: [(u64, u64); 5] = [
        (0xf, 0),                 // unknown type
        (0, 0),                   // type 0
        (2 | 1 << 4 | 1 << 8, 0), // IOTLB with a reserved bit
        (1, 0),                   // context-cache with granularity 0
        (2 | 3 << 4, 19),         // PSI with AM above MAMV
    ];
    for (i, desc) in bad.into_iter().enumerate() {
        let head = rig.r64(0x80);
        rig.submit(base, &[(4, 0), desc, wait_sw(status, 7)]);
        assert_eq!(rig.r32(0x34) & 1 << 4, 1 << 4, "case {i}: IQE");
        assert_eq!(
            rig.r64(0x80),
            head + 0x10,
            "case {i}: IQH at the bad descriptor"
        );
        assert_eq!(rig.read_u64(status), 0, "case {i}: nothing after it ran");
        assert_eq!(
            rig.msis.take(),
            vec![(0xfee0_0000, 0x55)],
            "case {i}: fault event"
        );
        // Linux's recovery: overwrite the bad slot with the wait descriptor, clear IQE.
        let slot = base + head + 0x10;
        rig.write_u64(slot, wait_sw(status, 7).0);
        rig.write_u64(slot + 8, wait_sw(status, 7).1);
        rig.w32(0x34, 1 << 4);
        assert_eq!(rig.read_u64(status), 7, "case {i}: resumed");
        assert_eq!(rig.r64(0x80), rig.r64(0x88));
        rig.write_u64(status, 0);
    }
    assert_eq!(rig.unit.stats().queue_errors, 5);
}

#[test]
fn tail_beyond_the_queue_is_an_error() {
    let mut rig = Rig::new(VtdConfig::default());
    rig.enable_qi();
    rig.w32(0x88, 256 << 4);
    assert_eq!(rig.r32(0x34) & 1 << 4, 1 << 4);
    assert_eq!(rig.r64(0x80), 0);
}

#[test]
fn a_wait_completes_only_after_dma_in_flight_finishes() {
    let mut rig = Rig::enabled(VtdConfig::default());
    let dev = rid(0, 3, 0);
    let top = rig.translated(dev, 1, 1);
    rig.map(top, 3, 0x1000, 0x9000, 0x1000, RW);
    let base = rig.enable_qi();
    let status = rig.alloc();
    let unit = rig.unit.clone();

    // A device thread starts a DMA and holds it in flight.
    let (started_tx, started_rx) = mpsc::channel();
    let (finish_tx, finish_rx) = mpsc::channel::<()>();
    let dma = {
        let unit = unit.clone();
        thread::spawn(move || {
            let _guard = unit.dma_begin();
            assert!(unit.translate(dev, 0x1000, 4, Permissions::Read).is_ok());
            started_tx.send(()).unwrap();
            finish_rx.recv().unwrap();
            // The DMA may translate again while the invalidation is waiting: the unit's lock
            // must not be held across the drain, or this would deadlock.
            assert!(unit.translate(dev, 0x1008, 4, Permissions::Read).is_ok());
        })
    };
    started_rx.recv().unwrap();

    // A vCPU submits [IOTLB global, wait(SW)].
    for (i, (lo, hi)) in [iotlb_desc(1, 0, 0, 0), wait_sw(status, 0x2)]
        .into_iter()
        .enumerate()
    {
        rig.write_u64(base + 16 * i as u64, lo);
        rig.write_u64(base + 16 * i as u64 + 8, hi);
    }
    let vcpu = {
        let unit = unit.clone();
        thread::spawn(move || unit.mmio_write(0x88, &0x20u32.to_le_bytes()))
    };
    thread::sleep(Duration::from_millis(100));
    assert_eq!(
        rig.read_u64(status),
        0,
        "wait completed while a DMA was in flight"
    );
    assert!(!vcpu.is_finished());
    finish_tx.send(()).unwrap();
    dma.join().unwrap();
    vcpu.join().unwrap();
    assert_eq!(rig.read_u64(status), 2);
}

#[test]
fn register_invalidation_also_waits_for_dma_in_flight() {
    let rig = Rig::enabled(VtdConfig::default());
    let unit = rig.unit.clone();
    let guard = unit.dma_begin();
    let vcpu = {
        let unit = unit.clone();
        thread::spawn(move || unit.mmio_write(0xf8, &(1u64 << 63 | 1 << 60).to_le_bytes()))
    };
    thread::sleep(Duration::from_millis(50));
    assert!(!vcpu.is_finished(), "IVT cleared while a DMA was in flight");
    drop(guard);
    vcpu.join().unwrap();
    assert_eq!(rig.r64(0xf8) >> 63, 0);
}
