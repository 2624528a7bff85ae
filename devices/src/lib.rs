//! Devices: the legacy platform devices (serial, i8042 reset, CMOS clock, ACPI fixed hardware,
//! the test-exit port) and virtio devices with their PCI transport.

#![deny(clippy::indexing_slicing)]

pub mod legacy;
pub mod virtio;
