//! Where things live in the guest: the physical memory map, the port I/O map, interrupt lines,
//! and allocators that hand out pieces of the PCI windows and the GSI space.
//!
//! Every other crate takes addresses from here, so that the e820 map, the ACPI tables, the
//! device buses and the loaders cannot disagree.

mod allocators;
pub mod layout;
pub mod ports;

pub use allocators::{AllocError, GsiAllocator, MmioAllocator};
