//! Fault reasons and the fault recording registers (VT-d spec 7.2, checklist §5).

use std::fmt;

/// Why a DMA was refused (legacy-mode fault reason codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultReason {
    /// 0x1: the root entry for the bus is not present.
    RootNotPresent,
    /// 0x2: the context entry for the device is not present.
    ContextNotPresent,
    /// 0x3: the context entry asks for something unsupported (TT, AW).
    InvalidContext,
    /// 0x4: the address is beyond the domain's address width.
    BeyondMgaw,
    /// 0x5: a write through an entry without W.
    WriteNotSet,
    /// 0x6: a read through an entry without R.
    ReadNotSet,
    /// 0x7: a page-table pointer that cannot be read.
    NextTableInvalid,
    /// 0x8: the root table cannot be read.
    RootTableInvalid,
    /// 0x9: the context table cannot be read.
    ContextTableInvalid,
    /// 0xA: reserved bits set in a root entry.
    RootReserved,
    /// 0xB: reserved bits set in a context entry.
    ContextReserved,
    /// 0xC: reserved bits set in a page-table entry.
    PteReserved,
    /// 0xE: a DMA to the interrupt address window.
    InterruptAddress,
}

impl FaultReason {
    /// The FR code recorded in the fault recording register.
    pub fn code(self) -> u8 {
        match self {
            Self::RootNotPresent => 0x1,
            Self::ContextNotPresent => 0x2,
            Self::InvalidContext => 0x3,
            Self::BeyondMgaw => 0x4,
            Self::WriteNotSet => 0x5,
            Self::ReadNotSet => 0x6,
            Self::NextTableInvalid => 0x7,
            Self::RootTableInvalid => 0x8,
            Self::ContextTableInvalid => 0x9,
            Self::RootReserved => 0xA,
            Self::ContextReserved => 0xB,
            Self::PteReserved => 0xC,
            Self::InterruptAddress => 0xE,
        }
    }

    /// The wording Linux prints for this code (`dma_remap_fault_reasons`), so a trace and the
    /// guest's dmesg can be matched up.
    pub fn name(self) -> &'static str {
        match self {
            Self::RootNotPresent => "Present bit in root entry is clear",
            Self::ContextNotPresent => "Present bit in context entry is clear",
            Self::InvalidContext => "Invalid context entry",
            Self::BeyondMgaw => "Access beyond MGAW",
            Self::WriteNotSet => "PTE Write access is not set",
            Self::ReadNotSet => "PTE Read access is not set",
            Self::NextTableInvalid => "Next page table ptr is invalid",
            Self::RootTableInvalid => "Root table address invalid",
            Self::ContextTableInvalid => "Context table ptr is invalid",
            Self::RootReserved => "non-zero reserved fields in RTP",
            Self::ContextReserved => "non-zero reserved fields in CTP",
            Self::PteReserved => "non-zero reserved fields in PTE",
            Self::InterruptAddress => "DMA to the interrupt address range",
        }
    }

    /// Qualified faults are not reported when the context entry has FPD set; the others
    /// (root and context table problems) are always reported.
    pub fn qualified(self) -> bool {
        !matches!(
            self,
            Self::RootNotPresent
                | Self::RootTableInvalid
                | Self::ContextTableInvalid
                | Self::RootReserved
                | Self::ContextReserved
        )
    }
}

impl fmt::Display for FaultReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[fault reason {:#04x}] {}", self.code(), self.name())
    }
}

/// One fault recording register: `lo` is bits 63:0 (FI), `hi` bits 127:64.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FaultRecord {
    pub lo: u64,
    pub hi: u64,
}

impl FaultRecord {
    /// A record of `reason` for source id `sid` at `addr` (T = 1 for reads), F set.
    pub(crate) fn new(sid: u16, addr: u64, reason: FaultReason, read: bool) -> Self {
        let hi = u64::from(sid) // 79:64 SID
            | u64::from(reason.code()) << 32 // 103:96 FR
            | u64::from(read) << 62 // 126 T: 1 = read
            | super::regs::FRCD_HI_F; // 127 F
        Self {
            lo: addr & !0xfff,
            hi,
        }
    }

    pub(crate) fn pending(&self) -> bool {
        self.hi & super::regs::FRCD_HI_F != 0
    }

    pub(crate) fn sid(&self) -> u16 {
        (self.hi & 0xffff) as u16
    }
}

/// What happened to a fault handed to [`FaultRecords::record`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// Written at this index.
    At(usize),
    /// Dropped: a record for the same source id is still pending (compression).
    Compressed,
    /// Dropped: the next record is still pending (sets PFO) or PFO was already set.
    Overflow,
}

/// The fault recording registers, used round-robin.
#[derive(Debug, Clone)]
pub(crate) struct FaultRecords {
    pub records: Vec<FaultRecord>,
    next: usize,
}

impl FaultRecords {
    pub(crate) fn new(count: u8) -> Self {
        Self {
            records: vec![FaultRecord::default(); usize::from(count.max(1))],
            next: 0,
        }
    }

    /// Whether any record has F set (FSTS.PPF).
    pub(crate) fn any_pending(&self) -> bool {
        self.records.iter().any(FaultRecord::pending)
    }

    /// Index of the oldest pending record (FSTS.FRI): records are written round-robin, so it
    /// is the first pending one after the slot written last. Linux walks from FRI while F is
    /// set, so pointing anywhere else would strand older records.
    pub(crate) fn first_pending(&self) -> Option<usize> {
        let count = self.records.len();
        (0..count)
            .map(|i| (self.next + i) % count)
            .find(|&i| self.records.get(i).is_some_and(FaultRecord::pending))
    }

    /// Records a fault unless `overflowed` (FSTS.PFO) or the rules say drop.
    pub(crate) fn record(&mut self, overflowed: bool, record: FaultRecord) -> Recorded {
        if overflowed {
            return Recorded::Overflow;
        }
        if self
            .records
            .iter()
            .any(|r| r.pending() && r.sid() == record.sid())
        {
            return Recorded::Compressed;
        }
        let index = self.next;
        match self.records.get_mut(index) {
            Some(slot) if !slot.pending() => {
                *slot = record;
                self.next = (index + 1) % self.records.len().max(1);
                Recorded::At(index)
            }
            _ => Recorded::Overflow,
        }
    }

    /// A 4-byte read of the record area at byte `offset` (relative to the first record).
    pub(crate) fn read_dword(&self, offset: u64) -> u32 {
        let index = usize::try_from(offset / 16).unwrap_or(usize::MAX);
        let Some(record) = self.records.get(index) else {
            return 0;
        };
        let qword = if offset % 16 >= 8 {
            record.hi
        } else {
            record.lo
        };
        if offset % 8 >= 4 {
            (qword >> 32) as u32
        } else {
            qword as u32
        }
    }

    /// A 4-byte write at byte `offset`: only F (bit 31 of the last dword) is writable, RW1C.
    pub(crate) fn write_dword(&mut self, offset: u64, value: u32) {
        let index = usize::try_from(offset / 16).unwrap_or(usize::MAX);
        if offset % 16 != 12 || value & (1 << 31) == 0 {
            return;
        }
        if let Some(record) = self.records.get_mut(index) {
            record.hi &= !super::regs::FRCD_HI_F;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.records
            .iter_mut()
            .for_each(|r| *r = FaultRecord::default());
        self.next = 0;
    }
}
