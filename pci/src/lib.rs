//! The PCI bus: host bridge, configuration space, BARs, capabilities, MSI-X, and the DMA handle
//! through which every function reaches memory.

#![deny(clippy::indexing_slicing)]

mod bus;
pub mod config;
mod device;
pub mod dma;
mod error;
mod host_bridge;
pub mod msix;

pub use bus::{PciBus, SharedDevice};
pub use config::{BarSpec, ConfigSpace, Identity};
pub use device::PciDevice;
pub use dma::{DeviceDma, DmaMemory};
pub use error::Error;
pub use host_bridge::HostBridge;
pub use msix::{InterruptVectors, MsiMessage, Msix};
