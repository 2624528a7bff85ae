//! IOMMU models. Pure logic over guest memory: no KVM, no threads of their own, so every path can
//! be unit-tested with a `GuestMemoryMmap`.
//!
//! The seam the rest of the VMM sees is [`DmaTranslate`]: the PCI host bridge holds one (or none)
//! and every device's DMA handle asks it to translate each access by the device's requester id.
//! [`VtdUnit`] is the emulated Intel VT-d remapping unit.

#![deny(clippy::indexing_slicing)]

mod error;
mod fence;
mod translate;
pub mod vtd;

pub use error::Error;
pub use fence::{DmaFence, DmaGuard};
pub use translate::{DmaFault, DmaTranslate, MsiSink, RequesterId, Translation};
pub use vtd::{
    FaultReason, InvalidationKind, MappingEvent, MappingObserver, ObserverId, VtdConfig, VtdEvent,
    VtdStats, VtdUnit,
};
