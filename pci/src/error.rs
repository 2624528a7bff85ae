//! The pci crate's errors.

/// What went wrong building the bus.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Every slot on the root bus is taken.
    #[error("All 31 device slots on PCI bus 0 are taken")]
    BusFull,
    /// The slot is the host bridge's, out of range, or taken.
    #[error("PCI slot {0} is not free")]
    SlotTaken(u8),
    /// The 32-bit MMIO window has no room for another BAR.
    #[error("The PCI MMIO window is full")]
    OutOfMmio,
}
