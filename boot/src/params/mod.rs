//! Boot parameters: the e820 map, the Linux zero page, the PVH start info, the micro-guest boot
//! info and the command line.

mod cmdline;
mod e820;
mod linux;
mod micro;
mod pvh;

pub use cmdline::write_cmdline;
pub use e820::{E820_RAM, E820_RESERVED, E820Entry, e820_map};
pub use linux::write_zero_page;
pub use micro::{MICRO_GUEST_MAGIC, MicroGuestInfo, write_micro_guest_info};
pub use pvh::write_pvh_start_info;

/// Where the pieces the boot parameters point at are.
#[derive(Clone, Copy, Debug, Default)]
pub struct BootLocations {
    /// Guest RAM size.
    pub mem_size: u64,
    /// Command line address and length (without the NUL).
    pub cmdline: (u64, usize),
    /// Initrd address and size, if any.
    pub initrd: Option<(u64, u64)>,
    /// ACPI RSDP address.
    pub rsdp: u64,
}
