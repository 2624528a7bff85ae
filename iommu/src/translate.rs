//! The interface between a bus and whatever translates its DMA.

use std::fmt;

use vm_memory::Permissions;

use crate::fence::DmaGuard;

/// Who performs a DMA: a PCI function, named by segment, bus and device/function number.
///
/// The bus number is the one the guest assigned at the time of the request (bus numbers below a
/// bridge are programmed by the guest), so callers compute it per request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequesterId {
    /// PCI segment group.
    pub segment: u16,
    /// Bus number.
    pub bus: u8,
    /// Device number (bits 7:3) and function number (bits 2:0).
    pub devfn: u8,
}

impl RequesterId {
    /// The requester id of `segment:bus:device.function`.
    pub fn new(segment: u16, bus: u8, device: u8, function: u8) -> Self {
        Self {
            segment,
            bus,
            devfn: ((device & 0x1f) << 3) | (function & 0x7),
        }
    }

    /// The 16-bit source id carried by the request (bus << 8 | devfn).
    pub fn source_id(self) -> u16 {
        (u16::from(self.bus) << 8) | u16::from(self.devfn)
    }

    /// Device number (0..32).
    pub fn device(self) -> u8 {
        self.devfn >> 3
    }

    /// Function number (0..8).
    pub fn function(self) -> u8 {
        self.devfn & 0x7
    }
}

impl fmt::Display for RequesterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{}",
            self.segment,
            self.bus,
            self.device(),
            self.function()
        )
    }
}

/// The translation of one I/O virtual address: the range `[iova, iova + len)` (which contains the
/// address asked for) maps to `[gpa, gpa + len)` with `perms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// First I/O virtual address of the range.
    pub iova: u64,
    /// Guest physical address `iova` maps to.
    pub gpa: u64,
    /// Length of the range in bytes (never 0).
    pub len: u64,
    /// Accesses the range permits.
    pub perms: Permissions,
}

/// A DMA the translator refused. By the time the caller sees this, the refusal has been recorded
/// the way the IOMMU records it (fault registers or event log, fault interrupt, trace).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("DMA {access} by {rid} at {iova:#x} refused: {reason}")]
pub struct DmaFault {
    /// Who asked.
    pub rid: RequesterId,
    /// The address that failed.
    pub iova: u64,
    /// `read` or `write`.
    pub access: &'static str,
    /// What the IOMMU found wrong (e.g. "PTE read access is not set (fault reason 0x6)").
    pub reason: String,
}

/// Something that translates the DMA of the devices on a bus: an IOMMU, or a chain of them.
pub trait DmaTranslate: Send + Sync + fmt::Debug {
    /// Translates an access of up to `len` bytes at `iova` by `rid`.
    ///
    /// The result covers `iova`; it may start before it and may end before `iova + len` (the caller
    /// asks again for the rest). A refusal is recorded before this returns.
    fn translate(
        &self,
        rid: RequesterId,
        iova: u64,
        len: u64,
        access: Permissions,
    ) -> Result<Translation, DmaFault>;

    /// Marks a DMA as in flight until the guard is dropped. Hold it from the first translation
    /// until the last byte is copied: completing an invalidation wait waits for every guard taken
    /// before the invalidation (no use after invalidation).
    fn dma_begin(&self) -> DmaGuard<'_>;
}

/// Where an IOMMU sends the interrupts it raises itself (fault events, invalidation completion):
/// a message-signalled interrupt in compatibility format.
pub trait MsiSink: Send + Sync + fmt::Debug {
    /// Delivers the MSI `data` to `address` (address_hi in bits 63:32). Returns false if it
    /// could not be delivered.
    fn send_msi(&self, address: u64, data: u32) -> bool;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_id_packs_bus_device_function() {
        let rid = RequesterId::new(0, 0x12, 0x1f, 7);
        assert_eq!(rid.source_id(), 0x12ff);
        assert_eq!(rid.device(), 0x1f);
        assert_eq!(rid.function(), 7);
        assert_eq!(rid.to_string(), "0000:12:1f.7");
    }

    #[test]
    fn out_of_range_device_and_function_are_masked() {
        let rid = RequesterId::new(0, 0, 0x23, 9);
        assert_eq!(rid.device(), 3);
        assert_eq!(rid.function(), 1);
    }
}
