//! Putting a guest in memory and its vCPUs in their start state: kernel loading (ELF vmlinux,
//! bzImage decompressed on the host, micro-guests), boot parameters and the e820 map, ACPI
//! tables, and CPU setup.

pub mod acpi;
pub mod cpu;
mod error;
pub mod loader;
pub mod params;

pub use error::Error;
