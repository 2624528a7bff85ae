//! The PCI bus: host bridge, configuration space, BARs, capabilities, MSI-X, and the DMA handle
//! through which every function reaches memory.

#![deny(clippy::indexing_slicing)]

pub mod dma;

pub use dma::{DeviceDma, DmaMemory};
