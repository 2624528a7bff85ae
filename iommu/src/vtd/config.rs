//! What the VMM chooses about the VT-d unit, and the CAP/ECAP registers that follow from it.

use crate::Error;

/// Offset of the first fault recording register, in 16-byte units (CAP.FRO): records start at
/// 0x220, right after the registers the spec defines below the MTRR block (QEMU's layout).
pub(crate) const FRO: u64 = 0x22;
/// Offset of the IOTLB registers in 16-byte units (ECAP.IRO): IVA at 0xF0, IOTLB at 0xF8.
pub(crate) const IRO: u64 = 0xF;
/// Largest page-selective invalidation address mask (CAP.MAMV): 2^18 pages = 1 GiB, QEMU's value.
pub(crate) const MAMV: u8 = 18;
/// Number of domain ids supported (CAP.ND = 6 → 2^16): every root-bus slot gets its own domain.
pub(crate) const ND: u64 = 6;
/// The register page size.
pub(crate) const PAGE: u64 = 0x1000;

/// How the VMM configures the VT-d unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VtdConfig {
    /// Guest address width in bits: 39 (3-level tables) or 48 (3- and 4-level tables).
    pub aw_bits: u8,
    /// Caching mode (CAP.CM): the guest also invalidates on map, so MAP events are exact; Linux
    /// then uses strict unmap flushing.
    pub caching_mode: bool,
    /// Offer pass-through contexts (ECAP.PT, context TT=10).
    pub pass_through: bool,
    /// Number of fault recording registers.
    pub fault_records: u8,
}

impl Default for VtdConfig {
    fn default() -> Self {
        Self {
            aw_bits: 39,
            caching_mode: false,
            pass_through: true,
            fault_records: 8,
        }
    }
}

/// The most fault records that fit between CAP.FRO and the end of the register page (and that
/// CAP.NFR, 8 bits, can count).
pub(crate) fn max_fault_records() -> u8 {
    let fit = (PAGE - FRO * 16) / 16;
    u8::try_from(fit).unwrap_or(u8::MAX)
}

impl VtdConfig {
    /// Checks the configuration; every other method assumes it passed.
    pub fn validate(&self) -> Result<(), Error> {
        if self.aw_bits != 39 && self.aw_bits != 48 {
            return Err(Error::AddressWidth(self.aw_bits));
        }
        let max = max_fault_records();
        if self.fault_records == 0 || self.fault_records > max {
            return Err(Error::FaultRecords {
                requested: self.fault_records,
                max,
            });
        }
        Ok(())
    }

    /// The Capability register (offset 0x08).
    pub fn cap(&self) -> u64 {
        // SAGAW bit 1 = 39-bit/3-level; bit 2 = 48-bit/4-level. A 48-bit unit keeps 3-level
        // support because Linux picks the largest AGAW but other guests may pick 39.
        let sagaw: u64 = if self.aw_bits == 48 { 0b110 } else { 0b010 };
        let mgaw = u64::from(self.aw_bits.saturating_sub(1));
        let nfr = u64::from(self.fault_records.saturating_sub(1)) & 0xff;
        ND // 2:0 ND: 64K domain ids
            | u64::from(self.caching_mode) << 7 // CM: not-present entries may be cached
            | sagaw << 8 // 12:8 SAGAW
            | mgaw << 16 // 21:16 MGAW = width - 1
            | FRO << 24 // 33:24 FRO
            | 0b11 << 34 // SLLPS: 2 MiB (34) and 1 GiB (35) second-level pages
            | 1 << 39 // PSI: page-selective IOTLB invalidation
            | nfr << 40 // 47:40 NFR = records - 1
            | u64::from(MAMV) << 48 // 53:48 MAMV
            | 1 << 54 // DWD: write draining (we complete synchronously; Linux just sets DW)
            | 1 << 55 // DRD: read draining (likewise)
        // RWBF, PLMR/PHMR, ZLR, AFL, PI, FL1GP, ESRTPS stay 0: nothing to flush or protect.
    }

    /// The Extended Capability register (offset 0x10).
    pub fn ecap(&self) -> u64 {
        1 // C: page walks snoop CPU caches (we read guest RAM coherently), so Linux skips clflush
            | 1 << 1 // QI: queued invalidation (Linux always prefers it)
            | u64::from(self.pass_through) << 6 // PT: context TT=10 pass-through
            | IRO << 8 // 17:8 IRO
        // DT, IR, EIM, SC, NEST, PASID, SMTS (bit 43: would switch Linux to scalable mode and
        // 256-bit descriptors) all stay 0.
    }

    /// Number of second-level levels for context AW value `aw` (1 → 3, 2 → 4) if SAGAW has it.
    pub(crate) fn levels_for_aw(&self, aw: u8) -> Option<u8> {
        let sagaw = (self.cap() >> 8) & 0x1f;
        if aw < 5 && (sagaw >> aw) & 1 == 1 {
            Some(aw + 2)
        } else {
            None
        }
    }
}
