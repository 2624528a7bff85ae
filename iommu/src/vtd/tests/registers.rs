//! Register reset values, access rules and CAP/ECAP layouts.

use super::*;
use crate::Error;

fn field(value: u64, hi: u32, lo: u32) -> u64 {
    (value >> lo) & ((1u64 << (hi - lo + 1)) - 1)
}

#[test]
fn reset_values() {
    let rig = Rig::new(VtdConfig::default());
    rig.unit.reset();
    assert_eq!(rig.r32(0x00), 0x10, "VER");
    assert_eq!(rig.r64(0x08), VtdConfig::default().cap());
    assert_eq!(rig.r64(0x10), VtdConfig::default().ecap());
    assert_eq!(rig.r32(0x18), 0, "GCMD reads 0");
    assert_eq!(rig.r32(0x1c), 0, "GSTS");
    assert_eq!(rig.r64(0x20), 0, "RTADDR");
    assert_eq!(rig.r64(0x28), 0, "CCMD");
    assert_eq!(rig.r32(0x34), 0, "FSTS");
    assert_eq!(rig.r32(0x38), 0x8000_0000, "FECTL.IM");
    assert_eq!(rig.r32(0x64), 0, "PMEN");
    assert_eq!(rig.r64(0x80), 0, "IQH");
    assert_eq!(rig.r64(0x88), 0, "IQT");
    assert_eq!(rig.r64(0x90), 0, "IQA");
    assert_eq!(rig.r32(0x9c), 0, "ICS");
    assert_eq!(rig.r32(0xa0), 0x8000_0000, "IECTL.IM");
    assert_eq!(rig.r64(0xf8), 0, "IOTLB");
    assert_eq!(rig.frcd(0), (0, 0));
}

#[test]
fn cap_fields_follow_the_spec_bit_positions() {
    for aw in [39u8, 48] {
        for cm in [false, true] {
            for pt in [false, true] {
                let config = VtdConfig {
                    aw_bits: aw,
                    caching_mode: cm,
                    pass_through: pt,
                    fault_records: 8,
                };
                let cap = config.cap();
                assert_eq!(field(cap, 2, 0), 6, "ND");
                assert_eq!(field(cap, 4, 4), 0, "RWBF");
                assert_eq!(field(cap, 6, 5), 0, "PLMR/PHMR");
                assert_eq!(field(cap, 7, 7), u64::from(cm), "CM");
                let sagaw = if aw == 48 { 0b110 } else { 0b010 };
                assert_eq!(field(cap, 12, 8), sagaw, "SAGAW");
                assert_eq!(field(cap, 21, 16), u64::from(aw - 1), "MGAW");
                assert_eq!(field(cap, 33, 24) * 16, 0x220, "FRO");
                assert_eq!(field(cap, 37, 34), 0b11, "SLLPS 2M+1G");
                assert_eq!(field(cap, 39, 39), 1, "PSI");
                assert_eq!(field(cap, 47, 40), 7, "NFR");
                assert_eq!(field(cap, 53, 48), 18, "MAMV");
                assert_eq!(field(cap, 55, 54), 0b11, "DWD/DRD");
                assert_eq!(field(cap, 63, 56), 0);
                let ecap = config.ecap();
                assert_eq!(field(ecap, 0, 0), 1, "C");
                assert_eq!(field(ecap, 1, 1), 1, "QI");
                assert_eq!(field(ecap, 2, 2), 0, "DT");
                assert_eq!(field(ecap, 3, 3), 0, "IR");
                assert_eq!(field(ecap, 4, 4), 0, "EIM");
                assert_eq!(field(ecap, 6, 6), u64::from(pt), "PT");
                assert_eq!(field(ecap, 17, 8) * 16, 0xf0, "IRO");
                assert_eq!(field(ecap, 43, 43), 0, "SMTS");
                assert_eq!(ecap & !0x3_ff47, 0, "nothing else");
            }
        }
    }
}

#[test]
fn cap_matches_the_checklist_example_apart_from_our_additions() {
    let config = VtdConfig {
        aw_bits: 39,
        caching_mode: false,
        pass_through: true,
        fault_records: 1,
    };
    // The checklist's minimal value, plus SLLPS (bits 35:34) and DWD/DRD (bits 55:54).
    assert_eq!(
        config.cap(),
        0x0012_0080_2226_0206 | 0b11 << 34 | 0b11 << 54
    );
    assert_eq!(config.ecap(), 0xF43);
    let qemu48 = VtdConfig {
        aw_bits: 48,
        fault_records: 1,
        ..config
    };
    // QEMU's aw-bits=48 CAP is 0x00D2_008C_222F_0606 (ND, SAGAW, MGAW, FRO, SLLPS, PSI, MAMV,
    // DWD/DRD) — the same fields as ours.
    assert_eq!(qemu48.cap(), 0x00D2_008C_222F_0606);
}

#[test]
fn validate_refuses_bad_configurations() {
    let good = VtdConfig::default();
    assert_eq!(good.validate(), Ok(()));
    for aw in [0u8, 32, 40, 57, 64] {
        let bad = VtdConfig {
            aw_bits: aw,
            ..good
        };
        assert_eq!(bad.validate(), Err(Error::AddressWidth(aw)));
    }
    for records in [0u8, 223, 255] {
        let bad = VtdConfig {
            fault_records: records,
            ..good
        };
        assert!(
            matches!(bad.validate(), Err(Error::FaultRecords { .. })),
            "{records}"
        );
        assert!(VtdUnit::new(bad, rig_guest(), Arc::new(Msis::default())).is_err());
    }
    let most = VtdConfig {
        fault_records: 222,
        ..good
    };
    assert_eq!(most.validate(), Ok(()));
    assert_eq!((most.cap() >> 40) & 0xff, 221);
}

fn rig_guest() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap()
}

#[test]
fn read_only_registers_ignore_writes_and_unknown_offsets_read_zero() {
    let rig = Rig::new(VtdConfig::default());
    let cap = rig.r64(0x08);
    rig.w64(0x08, !0);
    rig.w64(0x10, 0);
    rig.w32(0x00, 0x55);
    rig.w32(0x1c, 0xffff_ffff);
    rig.w32(0x64, 0xffff_ffff);
    rig.w64(0x80, 0x1230);
    assert_eq!(rig.r64(0x08), cap);
    assert_eq!(rig.r64(0x10), VtdConfig::default().ecap());
    assert_eq!(rig.r32(0x00), 0x10);
    assert_eq!(rig.r32(0x1c), 1 << 30, "only RTPS from the rig's SRTP");
    assert_eq!(rig.r32(0x64), 0);
    assert_eq!(rig.r64(0x80), 0);
    for offset in [0x48u64, 0x100, 0x400, 0xe00, 0xffc] {
        rig.w32(offset, 0xdead_beef);
        assert_eq!(rig.r32(offset), 0, "{offset:#x}");
    }
    // Misaligned and odd-sized accesses do nothing.
    let mut two = [0xffu8; 2];
    rig.unit.mmio_read(0x08, &mut two);
    assert_eq!(two, [0, 0]);
    rig.unit.mmio_write(0x1a, &[0xff, 0xff]);
    rig.unit.mmio_write(0x1000, &[0xff; 4]);
    assert_eq!(rig.r32(0x1c), 1 << 30);
}

#[test]
fn four_byte_halves_of_wide_registers() {
    let rig = Rig::new(VtdConfig::default());
    assert_eq!(
        u64::from(rig.r32(0x08)) | u64::from(rig.r32(0x0c)) << 32,
        rig.r64(0x08)
    );
    rig.w32(0x20, 0x0012_3000);
    rig.w32(0x24, 0x1);
    assert_eq!(rig.r64(0x20), 0x1_0012_3000);
    // TTM (11:10) and bits 9:0 are not writable.
    rig.w64(0x20, 0x4000 | 0xfff);
    assert_eq!(rig.r64(0x20), 0x4000);
    // FEADDR/FEUADDR with one 8-byte write (Xen does this).
    rig.w64(0x40, 0x0000_0001_fee0_1003);
    assert_eq!(rig.r32(0x40), 0xfee0_1000, "FEADDR bits 1:0 reserved");
    assert_eq!(rig.r32(0x44), 1);
    rig.w32(0x3c, 0xffff_0041);
    assert_eq!(rig.r32(0x3c), 0x41, "FEDATA 15:0");
}

#[test]
fn gcmd_commands_update_gsts_within_the_write() {
    let mut rig = Rig::new(VtdConfig::default());
    // SRTP latched in Rig::new.
    assert_eq!(rig.r32(0x1c), 1 << 30);
    // WBF completes at once; WBFS reads 0.
    rig.w32(0x18, 1 << 27);
    assert_eq!(rig.r32(0x1c), 1 << 30);
    // TE (level): on, and stays on while Linux writes its whole image again.
    rig.w32(0x18, 1 << 31);
    assert_eq!(rig.r32(0x1c), 1 << 31 | 1 << 30);
    rig.w32(0x18, 1 << 31 | 1 << 27);
    assert_eq!(rig.r32(0x1c) & 1 << 31, 1 << 31);
    // QIE with TE kept.
    let base = rig.alloc();
    rig.w64(0x90, base);
    rig.w32(0x18, 1 << 31 | 1 << 26);
    assert_eq!(rig.r32(0x1c), 1 << 31 | 1 << 30 | 1 << 26);
    assert_eq!(rig.r64(0x80), 0, "IQH reset at enable");
    // Unsupported commands (IRE, SIRTP, CFI, EAFL, SFL) leave their status 0.
    rig.w32(
        0x18,
        1 << 31 | 1 << 26 | 1 << 25 | 1 << 24 | 1 << 23 | 1 << 28 | 1 << 29,
    );
    assert_eq!(rig.r32(0x1c), 1 << 31 | 1 << 30 | 1 << 26);
    // Both off.
    rig.w32(0x18, 0);
    assert_eq!(rig.r32(0x1c), 1 << 30);
    assert_eq!(rig.r32(0x18), 0, "GCMD is write-only");
}

#[test]
fn qi_disable_waits_for_an_empty_queue() {
    let mut rig = Rig::new(VtdConfig::default());
    let base = rig.enable_qi();
    // Make IQE stop the queue with head != tail.
    rig.write_u64(base, 0xf);
    rig.w32(0x88, 0x10);
    assert_ne!(rig.r32(0x34) & 1 << 4, 0);
    rig.w32(0x18, 0);
    assert_ne!(rig.r32(0x1c) & 1 << 26, 0, "head != tail: still enabled");
}

#[test]
fn ccmd_completes_with_actual_granularity() {
    let rig = Rig::new(VtdConfig::default());
    for (cirg, name) in [(1u64, "global"), (2, "domain"), (3, "device")] {
        rig.w64(0x28, 1 << 63 | cirg << 61 | 0x0003_0000_0008 | 5);
        let ccmd = rig.r64(0x28);
        assert_eq!(ccmd >> 63, 0, "{name}: ICC clears");
        assert_eq!((ccmd >> 59) & 3, cirg, "{name}: CAIG");
        assert_eq!((ccmd >> 61) & 3, cirg, "{name}: CIRG kept");
    }
    // A write without ICC does nothing but store.
    rig.w64(0x28, 1 << 61);
    assert_eq!(rig.r64(0x28) >> 59 & 3, 3, "CAIG from before is kept");
}

#[test]
fn iotlb_register_completes_with_actual_granularity() {
    let rig = Rig::new(VtdConfig::default());
    for iirg in [1u64, 2, 3] {
        rig.w64(0xf0, 0x1000 | 1);
        rig.w64(0xf8, 1 << 63 | iirg << 60 | 7 << 32);
        let reg = rig.r64(0xf8);
        assert_eq!(reg >> 63, 0, "IVT clears");
        assert_eq!((reg >> 57) & 3, iirg, "IAIG");
        assert_eq!((reg >> 32) & 0xffff, 7, "DID kept");
    }
    assert_eq!(rig.r64(0xf0), 0, "IVA is write-only");
    // An address mask above MAMV is done domain-selectively.
    rig.w64(0xf0, 19);
    rig.w64(0xf8, 1 << 63 | 3 << 60);
    assert_eq!((rig.r64(0xf8) >> 57) & 3, 2);
    let stats = rig.unit.stats();
    assert_eq!(stats.invalidations[&crate::InvalidationKind::IotlbPage], 1);
    assert_eq!(
        stats.invalidations[&crate::InvalidationKind::IotlbDomain],
        2
    );
}

#[test]
fn register_invalidation_is_dropped_while_qi_is_on() {
    let mut rig = Rig::new(VtdConfig::default());
    rig.enable_qi();
    rig.w64(0x28, 1 << 63 | 1 << 61);
    assert_eq!(rig.r64(0x28), 0);
    rig.w64(0xf8, 1 << 63 | 1 << 60);
    assert_eq!(rig.r64(0xf8), 0);
}

#[test]
fn fsts_bits_are_write_one_to_clear() {
    let mut rig = Rig::new(VtdConfig::default());
    rig.enable_qi();
    rig.w32(0x88, 300 << 4); // beyond a 256-entry queue
    assert_eq!(rig.r32(0x34), 1 << 4, "IQE");
    rig.w32(0x34, 0);
    assert_eq!(rig.r32(0x34), 1 << 4, "writing 0 keeps it");
    rig.w32(0x34, 0xffff_ffee); // everything but IQE... and PFO/PPF
    assert_eq!(rig.r32(0x34), 1 << 4);
    rig.w32(0x34, 1 << 4);
    assert_eq!(rig.r32(0x34), 0);
}

#[test]
fn trace_names_registers() {
    let rig = Rig::new(VtdConfig::default());
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    rig.unit
        .set_tracer(Some(Arc::new(move |e: &crate::VtdEvent| {
            sink.lock().unwrap().push(e.to_string())
        })));
    rig.w32(0x18, 1 << 31);
    rig.r32(0x1c);
    rig.unit.set_tracer(None);
    rig.r32(0x1c);
    let lines = lines.lock().unwrap();
    assert_eq!(
        *lines,
        vec![
            "vtd: write32 GCMD@0x018 <- 0x80000000".to_string(),
            "vtd: gcmd TE 1".to_string(),
            "vtd: read32 GSTS@0x01c -> 0xc0000000".to_string(),
        ]
    );
}
