//! Translation: walks at each level and page size, permissions, every fault reason.

use super::*;

fn fault_reason(rig: &Rig, i: u64) -> u64 {
    (rig.frcd(i).1 >> 32) & 0xff
}

#[test]
fn three_level_walk_with_each_page_size() {
    let mut rig = Rig::enabled(VtdConfig::default());
    let dev = rid(0, 3, 0);
    let top = rig.translated(dev, 1, 1);
    rig.map(top, 3, 0x1234_5000, 0x0020_0000, 0x1000, RW);
    rig.map(top, 3, 0x4060_0000, 0x0300_0000, 0x20_0000, R);
    rig.map(top, 3, 0x80_0000_0000 - GIB, 2 * GIB, GIB, RW);
    assert_eq!(rig.gpa(dev, 0x1234_5678), 0x0020_0678);
    let t = rig.translate(dev, 0x4061_2345, Permissions::Read).unwrap();
    assert_eq!(
        t,
        Translation {
            iova: 0x4060_0000,
            gpa: 0x0300_0000,
            len: 0x20_0000,
            perms: Permissions::Read
        }
    );
    let t = rig
        .translate(dev, 0x7f_c123_4567, Permissions::Write)
        .unwrap();
    assert_eq!((t.iova, t.gpa, t.len), (0x7f_c000_0000, 2 * GIB, GIB));
    assert_eq!(t.perms, Permissions::ReadWrite);
    // Nothing was recorded.
    assert_eq!(rig.r32(0x34), 0);
}

#[test]
fn four_level_walk_on_a_48_bit_unit() {
    let config = VtdConfig {
        aw_bits: 48,
        ..VtdConfig::default()
    };
    let mut rig = Rig::enabled(config);
    let dev = rid(0, 4, 0);
    let top = rig.translated(dev, 2, 2);
    let iova = 0xabc0_1234_5000u64;
    rig.map(top, 4, iova, 0x40_0000, 0x1000, RW);
    rig.map(top, 4, 0x7f80_4000_0000, 3 * GIB, GIB, RW);
    rig.map(top, 4, 0x1_0020_0000, 0x60_0000, 0x20_0000, RW);
    assert_eq!(rig.gpa(dev, iova + 0x10), 0x40_0010);
    assert_eq!(rig.gpa(dev, 0x7f80_4000_0008), 3 * GIB + 8);
    assert_eq!(rig.gpa(dev, 0x1_0030_0000), 0x70_0000);
    // A 3-level context on the same unit also works.
    let dev3 = rid(0, 5, 0);
    let top3 = rig.translated(dev3, 3, 1);
    rig.map(top3, 3, 0x5000, 0x9000, 0x1000, R);
    assert_eq!(rig.gpa(dev3, 0x5004), 0x9004);
    // ... but its IOVAs stop at 39 bits.
    assert!(rig.translate(dev3, 1 << 39, Permissions::Read).is_err());
    assert_eq!(fault_reason(&rig, 0), 0x4);
}

#[test]
fn write_to_read_only_page_records_reason_5_with_sid_and_address() {
    let mut rig = Rig::enabled(VtdConfig::default());
    let dev = rid(0, 3, 1);
    let top = rig.translated(dev, 1, 1);
    rig.map(top, 3, 0x8000, 0x2_0000, 0x1000, R);
    let err = rig.translate(dev, 0x8abc, Permissions::Write).unwrap_err();
    assert!(err.reason.contains("0x05"), "{}", err.reason);
    assert!(err.reason.contains("PTE Write access is not set"));
    assert_eq!(err.access, "write");
    let (lo, hi) = rig.frcd(0);
    assert_eq!(lo, 0x8000, "FI is the page address");
    assert_eq!(hi & 0xffff, 0x0019, "SID 00:03.1");
    assert_eq!((hi >> 32) & 0xff, 0x5);
    assert_eq!((hi >> 62) & 1, 0, "T = 0: write");
    assert_eq!(hi >> 63, 1, "F");
    let fsts = rig.r32(0x34);
    assert_eq!(fsts & 2, 2, "PPF");
    assert_eq!((fsts >> 8) & 0xff, 0, "FRI");
}

#[test]
fn read_of_write_only_page_records_reason_6() {
    let mut rig = Rig::enabled(VtdConfig::default());
    let dev = rid(1, 0, 0);
    let top = rig.translated(dev, 1, 1);
    rig.map(top, 3, 0x8000, 0x2_0000, 0x1000, W);
    assert!(rig.translate(dev, 0x8000, Permissions::Write).is_ok());
    let err = rig.translate(dev, 0x8000, Permissions::Read).unwrap_err();
    assert!(err.reason.contains("PTE Read access is not set"));
    let (_, hi) = rig.frcd(0);
    assert_eq!((hi >> 32) & 0xff, 0x6);
    assert_eq!((hi >> 62) & 1, 1, "T = 1: read");
    assert_eq!(hi & 0xffff, 0x0100);
}

#[test]
fn permissions_are_anded_down_the_walk() {
    let mut rig = Rig::enabled(VtdConfig::default());
    let dev = rid(0, 3, 0);
    let top = rig.translated(dev, 1, 1);
    rig.map(top, 3, 0x8000, 0x2_0000, 0x1000, RW);
    // Make the top-level entry read-only.
    let entry = rig.read_u64(top);
    rig.write_u64(top, entry & !W);
    let err = rig.translate(dev, 0x8000, Permissions::Write).unwrap_err();
    assert!(err.reason.contains("0x05"));
    assert_eq!(
        rig.translate(dev, 0x8000, Permissions::Read).unwrap().perms,
        Permissions::Read
    );
}

#[test]
fn not_present_pte_faults_by_access_kind() {
    let mut rig = Rig::enabled(VtdConfig::default());
    let dev = rid(0, 3, 0);
    rig.translated(dev, 1, 1);
    assert!(rig.translate(dev, 0x5000, Permissions::Read).is_err());
    assert_eq!(fault_reason(&rig, 0), 0x6);
    let dev2 = rid(0, 4, 0);
    rig.translated(dev2, 2, 1);
    assert!(rig.translate(dev2, 0x5000, Permissions::Write).is_err());
    assert_eq!(fault_reason(&rig, 1), 0x5);
}

#[test]
fn root_and_context_faults() {
    let mut rig = Rig::enabled(VtdConfig::default());
    type Setup = Box<dyn Fn(&mut Rig, RequesterId)>;
    let cases: Vec<(RequesterId, Setup, u64)> = vec![
        // Root entry not present (nothing on bus 7).
        (rid(7, 0, 0), Box::new(|_, _| {}), 0x1),
        // Context entry not present.
        (
            rid(0, 1, 0),
            Box::new(|r, d| {
                r.context_table(d.bus);
            }),
            0x2,
        ),
        // AW 2 (48-bit) is not in SAGAW of a 39-bit unit.
        (
            rid(0, 2, 0),
            Box::new(|r, d| {
                let t = r.alloc();
                r.set_context_raw(d, t | 1, 2 | 1 << 8)
            }),
            0x3,
        ),
        // TT = 01 needs device-TLB support.
        (
            rid(0, 3, 0),
            Box::new(|r, d| {
                let t = r.alloc();
                r.set_context_raw(d, t | 1 << 2 | 1, 1 | 1 << 8)
            }),
            0x3,
        ),
        // TT = 11 is reserved.
        (
            rid(0, 4, 0),
            Box::new(|r, d| {
                let t = r.alloc();
                r.set_context_raw(d, t | 3 << 2 | 1, 1 | 1 << 8)
            }),
            0x3,
        ),
        // Reserved bits in the context entry (lo 11:4; hi 127:88).
        (
            rid(0, 5, 0),
            Box::new(|r, d| {
                let t = r.alloc();
                r.set_context_raw(d, t | 1 << 5 | 1, 1 | 1 << 8)
            }),
            0xB,
        ),
        (
            rid(0, 6, 0),
            Box::new(|r, d| {
                let t = r.alloc();
                r.set_context_raw(d, t | 1, 1 | 1 << 8 | 1 << 40)
            }),
            0xB,
        ),
        // SLPTPTR above the host address width.
        (
            rid(0, 7, 0),
            Box::new(|r, d| r.set_context_raw(d, 1 << 40 | 1, 1 | 1 << 8)),
            0xB,
        ),
        // Context table pointer outside guest memory.
        (
            rid(2, 0, 0),
            Box::new(|r, _| r.write_u64(ROOT + 2 * 16, 0x7f_0000_0000 & ((1 << 39) - 1) | 1)),
            0x9,
        ),
        // Reserved bits in the root entry.
        (
            rid(3, 0, 0),
            Box::new(|r, _| {
                let t = r.alloc();
                r.write_u64(ROOT + 3 * 16, t | 1 << 3 | 1)
            }),
            0xA,
        ),
        (
            rid(4, 0, 0),
            Box::new(|r, _| {
                let t = r.alloc();
                r.write_u64(ROOT + 4 * 16 + 8, 1);
                r.write_u64(ROOT + 4 * 16, t | 1)
            }),
            0xA,
        ),
    ];
    for (i, (dev, setup, reason)) in cases.into_iter().enumerate() {
        setup(&mut rig, dev);
        let err = rig.translate(dev, 0x1000, Permissions::Read).unwrap_err();
        assert!(
            err.reason.contains(&format!("{reason:#04x}")),
            "case {i}: {}",
            err.reason
        );
        // Clear the record so the next case is recorded in a known slot.
        let record = rig.frcd(i as u64 % 8);
        assert_eq!((record.1 >> 32) & 0xff, reason, "case {i}");
        assert_eq!(record.1 & 0xffff, u64::from(dev.source_id()), "case {i}");
        rig.w32(0x220 + 16 * (i as u64 % 8) + 12, 1 << 31);
    }
}

#[test]
fn unreadable_root_table_is_reason_8() {
    let rig = Rig::new(VtdConfig::default());
    rig.w64(0x20, 0x40_0000_0000);
    rig.w32(0x18, 1 << 30);
    rig.w32(0x18, 1 << 31);
    let err = rig
        .translate(rid(0, 1, 0), 0, Permissions::Read)
        .unwrap_err();
    assert!(err.reason.contains("0x08"), "{}", err.reason);
}

#[test]
fn reserved_pte_bits_are_reason_c() {
    let mut rig = Rig::enabled(VtdConfig::default());
    let dev = rid(0, 3, 0);
    let top = rig.translated(dev, 1, 1);
    // SNP without snoop control.
    let at = rig.map(top, 3, 0x1000, 0x2000, 0x1000, RW);
    rig.write_u64(at, 0x2000 | RW | 1 << 11);
    // A page address above the 39-bit host address width.
    let at2 = rig.map(top, 3, 0x3000, 0x2000, 0x1000, RW);
    rig.write_u64(at2, 1 << 45 | RW);
    // A 2 MiB page whose address is not 2 MiB aligned.
    let at3 = rig.map(top, 3, 0x4000_0000, 0x20_0000, 0x20_0000, RW);
    rig.write_u64(at3, 0x20_1000 | RW | 1 << 7);
    // TM without device-TLB support.
    let at4 = rig.map(top, 3, 0x5000, 0x2000, 0x1000, RW);
    rig.write_u64(at4, 0x2000 | RW | 1 << 62);
    for (i, iova) in [0x1000u64, 0x3000, 0x4000_0000, 0x5000]
        .into_iter()
        .enumerate()
    {
        let d = rid(0, 3, 0);
        let err = rig.translate(d, iova, Permissions::Read).unwrap_err();
        assert!(err.reason.contains("0x0c"), "{iova:#x}: {}", err.reason);
        rig.w32(0x220 + 16 * i as u64 + 12, 1 << 31);
    }
    // Ignored bits (63, 61:52) are fine.
    let at5 = rig.map(top, 3, 0x6000, 0x7000, 0x1000, RW);
    rig.write_u64(at5, 0x7000 | RW | 1 << 63 | 1 << 55);
    assert_eq!(rig.gpa(dev, 0x6008), 0x7008);
}

#[test]
fn ps_at_level_4_is_reserved() {
    let config = VtdConfig {
        aw_bits: 48,
        ..VtdConfig::default()
    };
    let mut rig = Rig::enabled(config);
    let dev = rid(0, 3, 0);
    let top = rig.translated(dev, 1, 2);
    rig.write_u64(top, RW | 1 << 7);
    let err = rig.translate(dev, 0x1000, Permissions::Read).unwrap_err();
    assert!(err.reason.contains("0x0c"), "{}", err.reason);
}

#[test]
fn unreadable_page_table_is_reason_7() {
    let mut rig = Rig::enabled(VtdConfig::default());
    let dev = rid(0, 3, 0);
    let top = rig.translated(dev, 1, 1);
    rig.write_u64(top, 0x40_0000_0000 | RW);
    let err = rig.translate(dev, 0x1000, Permissions::Read).unwrap_err();
    assert!(err.reason.contains("0x07"), "{}", err.reason);
}

#[test]
fn iova_beyond_the_width_is_reason_4() {
    let mut rig = Rig::enabled(VtdConfig::default());
    let dev = rid(0, 3, 0);
    rig.translated(dev, 1, 1);
    let err = rig.translate(dev, 1 << 39, Permissions::Read).unwrap_err();
    assert!(err.reason.contains("0x04"), "{}", err.reason);
    assert!(err.reason.contains("Access beyond MGAW"));
}

#[test]
fn the_interrupt_window_is_never_memory() {
    let mut rig = Rig::enabled(VtdConfig::default());
    let dev = rid(0, 3, 0);
    let top = rig.translated(dev, 1, 1);
    // Even a 1 GiB mapping covering it does not make the window memory.
    rig.map(top, 3, 3 * GIB, 3 * GIB, GIB, RW);
    let err = rig
        .translate(dev, 0xfee0_0000, Permissions::Write)
        .unwrap_err();
    assert!(err.reason.contains("0x0e"), "{}", err.reason);
    assert!(rig.translate(dev, 0xfeef_fffc, Permissions::Write).is_err());
    // Around it, the 1 GiB page is cut at the window's edges.
    let below = rig.translate(dev, 0xfed0_0000, Permissions::Read).unwrap();
    assert_eq!((below.iova, below.len), (3 * GIB, 0xfee0_0000 - 3 * GIB));
    let above = rig.translate(dev, 0xff00_0000, Permissions::Read).unwrap();
    assert_eq!((above.iova, above.gpa), (0xfef0_0000, 0xfef0_0000));
    assert_eq!(above.iova + above.len, 4 * GIB);
    // With translation off too (nothing recorded then).
    let off = Rig::new(VtdConfig::default());
    assert!(off.translate(dev, 0xfee0_1000, Permissions::Write).is_err());
    assert_eq!(off.r32(0x34), 0);
}

#[test]
fn translation_off_is_identity() {
    let rig = Rig::new(VtdConfig::default());
    let t = rig
        .unit
        .translate(rid(0, 9, 0), 0x1234_5678, 0x100, Permissions::Write)
        .unwrap();
    assert_eq!((t.iova, t.gpa, t.len), (0x1234_5678, 0x1234_5678, 0x100));
    assert_eq!(rig.unit.stats().untranslated, 1);
    // Clipped at the window.
    let t = rig
        .unit
        .translate(rid(0, 9, 0), 0xfedf_f000, 0x10_0000, Permissions::Read)
        .unwrap();
    assert_eq!(t.len, 0x1000);
}

#[test]
fn pass_through_context_is_identity_and_needs_ecap_pt() {
    let mut rig = Rig::enabled(VtdConfig::default());
    let dev = rid(0, 3, 0);
    rig.pass_through(dev, 9);
    let t = rig
        .unit
        .translate(dev, 0x1_2345_6000, 0x2000, Permissions::Write)
        .unwrap();
    assert_eq!(
        (t.iova, t.gpa, t.len),
        (0x1_2345_6000, 0x1_2345_6000, 0x2000)
    );
    assert_eq!(rig.unit.stats().translations_per_domain[&9], 1);

    let mut no_pt = Rig::enabled(VtdConfig {
        pass_through: false,
        ..VtdConfig::default()
    });
    no_pt.pass_through(dev, 9);
    let err = no_pt.translate(dev, 0x1000, Permissions::Read).unwrap_err();
    assert!(err.reason.contains("0x03"), "{}", err.reason);
}

#[test]
fn two_devices_in_two_domains() {
    let mut rig = Rig::enabled(VtdConfig::default());
    let a = rid(0, 3, 0);
    let b = rid(0, 4, 0);
    let ta = rig.translated(a, 1, 1);
    let tb = rig.translated(b, 2, 1);
    rig.map(ta, 3, 0x10_0000, 0xa0_0000, 0x1000, RW);
    rig.map(tb, 3, 0x10_0000, 0xb0_0000, 0x1000, RW);
    assert_eq!(rig.gpa(a, 0x10_0010), 0xa0_0010);
    assert_eq!(rig.gpa(b, 0x10_0010), 0xb0_0010);
    assert_eq!(rig.gpa(a, 0x10_0020), 0xa0_0020);
    let stats = rig.unit.stats();
    assert_eq!(stats.translations_per_domain.get(&1), Some(&2));
    assert_eq!(stats.translations_per_domain.get(&2), Some(&1));
    assert_eq!((stats.iotlb_hits, stats.iotlb_misses), (1, 2));
}

#[test]
fn devices_sharing_a_domain_share_iotlb_entries() {
    let mut rig = Rig::enabled(VtdConfig::default());
    let a = rid(0, 3, 0);
    let b = rid(0, 4, 0);
    let top = rig.translated(a, 5, 1);
    rig.set_context_raw(b, top | 1, 1 | 5 << 8);
    rig.map(top, 3, 0x7000, 0x9000, 0x1000, RW);
    assert_eq!(rig.gpa(a, 0x7000), 0x9000);
    assert_eq!(rig.gpa(b, 0x7008), 0x9008);
    let stats = rig.unit.stats();
    assert_eq!((stats.iotlb_hits, stats.iotlb_misses), (1, 1));
    assert_eq!(stats.translations_per_domain[&5], 2);
}

#[test]
fn faulting_translations_are_not_cached() {
    let mut rig = Rig::enabled(VtdConfig::default());
    let dev = rid(0, 3, 0);
    let top = rig.translated(dev, 1, 1);
    assert!(rig.translate(dev, 0x7000, Permissions::Read).is_err());
    // CM=0: the guest maps without invalidating; the next access must see it.
    rig.map(top, 3, 0x7000, 0x9000, 0x1000, R);
    assert_eq!(rig.gpa(dev, 0x7000), 0x9000);
    // A permission upgrade without invalidation is seen too.
    let at = rig.map(top, 3, 0x7000, 0x9000, 0x1000, RW);
    let _ = at;
    assert!(rig.translate(dev, 0x7000, Permissions::Write).is_ok());
}

#[test]
fn dump_state_lists_contexts() {
    let mut rig = Rig::enabled(VtdConfig::default());
    rig.translated(rid(0, 3, 0), 7, 1);
    rig.pass_through(rid(0, 4, 1), 8);
    let dump = rig.unit.dump_state();
    assert!(dump.contains("00:03.0 did=7 tt=0 aw=1"), "{dump}");
    assert!(dump.contains("00:04.1 did=8 tt=2 aw=2"), "{dump}");
    assert!(dump.contains("root[00]"), "{dump}");
}
