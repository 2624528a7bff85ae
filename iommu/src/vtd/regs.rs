//! The register page: offsets, bit masks and reset values (VT-d spec chapter 11).

use super::config::{FRO, IRO};

/// Version register: 1.0 (Linux only prints it).
pub(crate) const VER_VALUE: u32 = 0x10;

pub(crate) const VER: u64 = 0x00;
pub(crate) const CAP: u64 = 0x08;
pub(crate) const ECAP: u64 = 0x10;
pub(crate) const GCMD: u64 = 0x18;
pub(crate) const GSTS: u64 = 0x1C;
pub(crate) const RTADDR: u64 = 0x20;
pub(crate) const CCMD: u64 = 0x28;
pub(crate) const FSTS: u64 = 0x34;
pub(crate) const FECTL: u64 = 0x38;
pub(crate) const FEDATA: u64 = 0x3C;
pub(crate) const FEADDR: u64 = 0x40;
pub(crate) const FEUADDR: u64 = 0x44;
pub(crate) const PMEN: u64 = 0x64;
pub(crate) const IQH: u64 = 0x80;
pub(crate) const IQT: u64 = 0x88;
pub(crate) const IQA: u64 = 0x90;
pub(crate) const ICS: u64 = 0x9C;
pub(crate) const IECTL: u64 = 0xA0;
pub(crate) const IEDATA: u64 = 0xA4;
pub(crate) const IEADDR: u64 = 0xA8;
pub(crate) const IEUADDR: u64 = 0xAC;
pub(crate) const IQER: u64 = 0xB0;
pub(crate) const IVA: u64 = IRO * 16;
pub(crate) const IOTLB: u64 = IRO * 16 + 8;
pub(crate) const FRCD_BASE: u64 = FRO * 16;

/// The 64-bit registers: a 4-byte access to either half is a partial access to the register.
pub(crate) const WIDE: [u64; 10] = [CAP, ECAP, RTADDR, CCMD, IQH, IQT, IQA, IQER, IVA, IOTLB];

// GCMD / GSTS bits.
pub(crate) const GCMD_TE: u32 = 1 << 31;
pub(crate) const GCMD_SRTP: u32 = 1 << 30;
pub(crate) const GCMD_WBF: u32 = 1 << 27;
pub(crate) const GCMD_QIE: u32 = 1 << 26;
pub(crate) const GSTS_TES: u32 = 1 << 31;
pub(crate) const GSTS_RTPS: u32 = 1 << 30;
pub(crate) const GSTS_QIES: u32 = 1 << 26;

// RTADDR: 63:12 root table address, 11:10 translation table mode.
pub(crate) const RTADDR_ADDR: u64 = !0xfff;
pub(crate) const RTADDR_TTM: u64 = 0b11 << 10;

// CCMD.
pub(crate) const CCMD_ICC: u64 = 1 << 63;
pub(crate) const CCMD_WRITABLE: u64 = 0xE000_0003_FFFF_FFFF;
pub(crate) const CCMD_CAIG_SHIFT: u32 = 59;

// FSTS.
pub(crate) const FSTS_PFO: u32 = 1 << 0;
pub(crate) const FSTS_PPF: u32 = 1 << 1;
pub(crate) const FSTS_IQE: u32 = 1 << 4;
pub(crate) const FSTS_ICE: u32 = 1 << 5;
pub(crate) const FSTS_ITE: u32 = 1 << 6;
/// The FSTS bits software clears by writing 1.
pub(crate) const FSTS_RW1C: u32 = FSTS_PFO | FSTS_IQE | FSTS_ICE | FSTS_ITE;

// FECTL / IECTL: 31 IM (interrupt mask), 30 IP (interrupt pending).
pub(crate) const CTL_IM: u32 = 1 << 31;
pub(crate) const CTL_IP: u32 = 1 << 30;
/// Message data: 15:0 (no extended interrupt message data without EIM).
pub(crate) const MSI_DATA_MASK: u32 = 0xffff;
/// Message address: 31:2.
pub(crate) const MSI_ADDR_MASK: u32 = !0x3;

// Queued invalidation.
/// IQH/IQT: descriptor index in bits 18:4 (128-bit descriptors).
pub(crate) const IQ_INDEX_MASK: u64 = 0x7fff0;
/// IQA: 63:12 base, 2:0 QS. DW (bit 11) is read-only 0: without ECAP.SMTS only 128-bit
/// descriptors exist.
pub(crate) const IQA_WRITABLE: u64 = 0xFFFF_FFFF_FFFF_F007;
pub(crate) const ICS_IWC: u32 = 1;

// IOTLB registers.
pub(crate) const IOTLB_IVT: u64 = 1 << 63;
pub(crate) const IOTLB_WRITABLE: u64 = 0xB003_FFFF_0000_0000;
pub(crate) const IOTLB_IAIG_SHIFT: u32 = 57;
pub(crate) const IVA_WRITABLE: u64 = 0xFFFF_FFFF_FFFF_F07F;

// Fault recording register (128 bits; `hi` is bits 127:64).
pub(crate) const FRCD_HI_F: u64 = 1 << 63;

/// The name of the register at `offset`, for traces.
pub(crate) fn name(offset: u64, fault_records: u8) -> &'static str {
    let frcd_end = FRCD_BASE + 16 * u64::from(fault_records);
    match offset & !3 {
        VER => "VER",
        o if o & !7 == CAP => "CAP",
        o if o & !7 == ECAP => "ECAP",
        GCMD => "GCMD",
        GSTS => "GSTS",
        o if o & !7 == RTADDR => "RTADDR",
        o if o & !7 == CCMD => "CCMD",
        FSTS => "FSTS",
        FECTL => "FECTL",
        FEDATA => "FEDATA",
        FEADDR => "FEADDR",
        FEUADDR => "FEUADDR",
        PMEN => "PMEN",
        o if o & !7 == IQH => "IQH",
        o if o & !7 == IQT => "IQT",
        o if o & !7 == IQA => "IQA",
        ICS => "ICS",
        IECTL => "IECTL",
        IEDATA => "IEDATA",
        IEADDR => "IEADDR",
        IEUADDR => "IEUADDR",
        o if o & !7 == IQER => "IQER",
        o if o & !7 == IVA => "IVA",
        o if o & !7 == IOTLB => "IOTLB",
        o if (FRCD_BASE..frcd_end).contains(&o) => "FRCD",
        _ => "unknown",
    }
}

/// The register file: everything software can read back. Caches and fault records live
/// elsewhere.
#[derive(Debug, Clone)]
pub(crate) struct Registers {
    pub gsts: u32,
    pub rtaddr: u64,
    /// The root table in use: RTADDR as latched by the last SRTP.
    pub root_table: u64,
    pub ccmd: u64,
    /// FSTS bits stored (PFO, IQE, ICE, ITE); PPF and FRI are derived from the records.
    pub fsts: u32,
    pub fectl: u32,
    pub fedata: u32,
    pub feaddr: u32,
    pub feuaddr: u32,
    pub iqh: u64,
    pub iqt: u64,
    pub iqa: u64,
    /// IQA as latched when QI was enabled: base and number of descriptors.
    pub queue_base: u64,
    pub queue_len: u64,
    pub ics: u32,
    pub iectl: u32,
    pub iedata: u32,
    pub ieaddr: u32,
    pub ieuaddr: u32,
    pub iva: u64,
    pub iotlb: u64,
}

impl Registers {
    /// Power-on values: everything 0 except the interrupt masks.
    pub(crate) fn reset() -> Self {
        Self {
            gsts: 0,
            rtaddr: 0,
            root_table: 0,
            ccmd: 0,
            fsts: 0,
            fectl: CTL_IM,
            fedata: 0,
            feaddr: 0,
            feuaddr: 0,
            iqh: 0,
            iqt: 0,
            iqa: 0,
            queue_base: 0,
            queue_len: 0,
            ics: 0,
            iectl: CTL_IM,
            iedata: 0,
            ieaddr: 0,
            ieuaddr: 0,
            iva: 0,
            iotlb: 0,
        }
    }

    /// Where fault events go: (address, data).
    pub(crate) fn fault_msi(&self) -> (u64, u32) {
        (
            u64::from(self.feuaddr) << 32 | u64::from(self.feaddr),
            self.fedata,
        )
    }

    /// Where invalidation completion events go: (address, data).
    pub(crate) fn completion_msi(&self) -> (u64, u32) {
        (
            u64::from(self.ieuaddr) << 32 | u64::from(self.ieaddr),
            self.iedata,
        )
    }

    pub(crate) fn translation_enabled(&self) -> bool {
        self.gsts & GSTS_TES != 0
    }

    pub(crate) fn qi_enabled(&self) -> bool {
        self.gsts & GSTS_QIES != 0
    }
}
