//! The emulated Intel VT-d remapping unit: legacy mode (ECAP.SMTS = 0), second-level tables,
//! register-based and queued invalidation, fault recording, no interrupt remapping, no
//! device-TLB.
//!
//! The VMM maps the 4 KiB register page and forwards accesses to [`VtdUnit::mmio_read`] /
//! [`VtdUnit::mmio_write`]; devices reach it through [`crate::DmaTranslate`].

mod config;
mod context;
mod fault;
mod invalidation;
mod iotlb;
mod mmio;
mod notifier;
mod regs;
mod state;
mod stats;
mod trace;
mod translation;
mod unit;
mod walk;

#[cfg(test)]
mod tests;

pub use config::VtdConfig;
pub use fault::FaultReason;
pub use notifier::{MappingEvent, MappingObserver, ObserverId};
pub use stats::VtdStats;
pub use trace::{InvalidationKind, Tracer, VtdEvent};
pub use unit::VtdUnit;
