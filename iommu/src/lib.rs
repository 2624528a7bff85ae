//! IOMMU models. Pure logic over guest memory: no KVM, no threads of their own, so every path can
//! be unit-tested with a `GuestMemoryMmap`.
//!
//! The seam the rest of the VMM sees is [`DmaTranslate`]: the PCI host bridge holds one (or none)
//! and every device's DMA handle asks it to translate each access by the device's requester id.

#![deny(clippy::indexing_slicing)]

mod fence;
mod translate;

pub use fence::{DmaFence, DmaGuard};
pub use translate::{DmaFault, DmaTranslate, MsiSink, RequesterId, Translation};
