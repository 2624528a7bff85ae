//! The guest physical address map (x86_64).
//!
//! ```text
//! 0x0000_0000 ┬ real-mode IVT / BDA (unused, RAM)
//! 0x0000_0500 │ boot GDT, then an empty IDT
//! 0x0000_6000 │ PVH start_info and its memory map
//! 0x0000_7000 │ Linux zero page (boot_params) / micro-guest boot info
//! 0x0000_8ff0 │ boot stack top (64-bit Linux entry)
//! 0x0000_9000 │ boot page tables: PML4, PDPT, 4 page directories (identity, 2 MiB pages)
//! 0x0002_0000 │ kernel command line
//! 0x0008_0000 │ micro-guest initial stack top
//! 0x0009_fc00 ┼ reserved: EBDA, ACPI tables at 0xe_0000, BIOS area
//! 0x0010_0000 ┼ RAM (kernel at its ELF physical address, usually 16 MiB; initrd at the top)
//! 0xc000_0000 ┼ MMIO hole (RAM resumes at 4 GiB)
//!             │ 0xc000_0000 PCI 32-bit memory window (512 MiB)
//!             │ 0xe000_0000 PCI ECAM (256 buses, 256 MiB)
//!             │ 0xfec0_0000 IOAPIC
//!             │ 0xfed9_0000 VT-d remapping unit registers
//!             │ 0xfee0_0000 local APIC
//! 4 GiB       ┼ RAM above the hole
//! 256 GiB     ┼ PCI 64-bit memory window (256 GiB)
//! ```

/// Size of a small page.
pub const PAGE_SIZE: u64 = 0x1000;

/// Boot GDT (four 8-byte descriptors).
pub const BOOT_GDT_START: u64 = 0x500;
/// Maximum number of GDT entries the boot GDT holds.
pub const BOOT_GDT_MAX_ENTRIES: usize = 8;
/// Boot IDT (empty: the guest installs its own before enabling interrupts).
pub const BOOT_IDT_START: u64 = 0x520;

/// PVH `hvm_start_info`, followed by its memory map.
pub const PVH_INFO_START: u64 = 0x6000;
/// Linux zero page (`boot_params`). Micro-guests find their boot info here instead.
pub const ZERO_PAGE_START: u64 = 0x7000;
/// Stack pointer handed to a 64-bit Linux entry.
pub const BOOT_STACK_POINTER: u64 = 0x8ff0;

/// Boot page tables: PML4 at +0, PDPT at +4K, then four page directories covering 4 GiB.
pub const PML4_START: u64 = 0x9000;
/// Page-directory-pointer table of the boot page tables.
pub const PDPTE_START: u64 = 0xa000;
/// First of the four page directories of the boot page tables.
pub const PDE_START: u64 = 0xb000;
/// Number of page directories (each maps 1 GiB with 2 MiB pages).
pub const PDE_COUNT: u64 = 4;

/// Kernel command line.
pub const CMDLINE_START: u64 = 0x2_0000;
/// Largest command line we place (Linux x86 accepts 2048 bytes; newer kernels more).
pub const CMDLINE_MAX_SIZE: usize = 4096;

/// Initial stack top of a micro-guest (grows down towards the command line).
pub const MICRO_GUEST_STACK_TOP: u64 = 0x8_0000;

/// End of conventional low memory (start of the EBDA).
pub const EBDA_START: u64 = 0x9_fc00;
/// ACPI tables: the RSDP sits here, where the guest scans for it, and the tables follow.
pub const ACPI_START: u64 = 0xe_0000;
/// End (exclusive) of the area reserved for ACPI tables.
pub const ACPI_END: u64 = 0x10_0000;
/// First byte of RAM above the legacy area.
pub const HIGH_RAM_START: u64 = 0x10_0000;

/// Start of the MMIO hole below 4 GiB; RAM below 4 GiB ends here.
pub const MMIO_HOLE_START: u64 = 0xc000_0000;
/// 4 GiB: RAM above the hole starts here.
pub const RAM_ABOVE_4G_START: u64 = 0x1_0000_0000;

/// PCI 32-bit memory window (BARs are allocated from here).
pub const PCI_MMIO32_START: u64 = 0xc000_0000;
/// Size of the PCI 32-bit memory window.
pub const PCI_MMIO32_SIZE: u64 = 0x2000_0000;

/// PCI Express enhanced configuration access mechanism (ECAM), segment 0.
pub const PCI_ECAM_START: u64 = 0xe000_0000;
/// ECAM size: 256 buses x 32 devices x 8 functions x 4 KiB.
pub const PCI_ECAM_SIZE: u64 = 0x1000_0000;
/// Last bus number covered by ECAM.
pub const PCI_ECAM_LAST_BUS: u8 = 0xff;

/// IOAPIC registers (KVM's in-kernel IOAPIC).
pub const IOAPIC_START: u64 = 0xfec0_0000;
/// IOAPIC id, as listed in the MADT (and in the DMAR IOAPIC device scope).
pub const IOAPIC_ID: u8 = 0;
/// Number of IOAPIC pins (GSIs 0..24).
pub const IOAPIC_PINS: u32 = 24;

/// Intel VT-d remapping unit registers (one 4 KiB page, QEMU's address).
pub const VTD_START: u64 = 0xfed9_0000;
/// Size of the VT-d register page.
pub const VTD_SIZE: u64 = 0x1000;

/// Local APIC registers.
pub const LAPIC_START: u64 = 0xfee0_0000;
/// The interrupt window: DMA writes here are interrupt requests, never memory.
pub const MSI_WINDOW_START: u64 = 0xfee0_0000;
/// Size of the interrupt window.
pub const MSI_WINDOW_SIZE: u64 = 0x10_0000;

/// PCI 64-bit memory window.
pub const PCI_MMIO64_START: u64 = 0x40_0000_0000;
/// Size of the PCI 64-bit memory window.
pub const PCI_MMIO64_SIZE: u64 = 0x40_0000_0000;

/// Smallest guest memory we accept.
pub const MIN_MEMORY: u64 = 16 << 20;
/// Largest guest memory we accept: RAM must end below the 64-bit PCI window.
pub const MAX_MEMORY: u64 = MMIO_HOLE_START + (PCI_MMIO64_START - (1 << 30) - RAM_ABOVE_4G_START);

/// The guest RAM ranges `(start, size)` for a guest of `mem_size` bytes: everything below the
/// MMIO hole, and the rest above 4 GiB.
pub fn ram_ranges(mem_size: u64) -> Vec<(u64, u64)> {
    if mem_size <= MMIO_HOLE_START {
        vec![(0, mem_size)]
    } else {
        vec![
            (0, MMIO_HOLE_START),
            (RAM_ABOVE_4G_START, mem_size - MMIO_HOLE_START),
        ]
    }
}

/// One past the last RAM byte below 4 GiB.
pub fn ram_end_below_4g(mem_size: u64) -> u64 {
    mem_size.min(MMIO_HOLE_START)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_guest_has_one_range() {
        assert_eq!(ram_ranges(512 << 20), vec![(0, 512 << 20)]);
    }

    #[test]
    fn large_guest_is_split_around_the_hole() {
        let ranges = ram_ranges(4 << 30);
        assert_eq!(ranges, vec![(0, 0xc000_0000), (0x1_0000_0000, 1 << 30)]);
        let total: u64 = ranges.iter().map(|r| r.1).sum();
        assert_eq!(total, 4 << 30);
    }

    #[test]
    fn fixed_regions_do_not_overlap() {
        let mut regions = [
            (PCI_MMIO32_START, PCI_MMIO32_SIZE),
            (PCI_ECAM_START, PCI_ECAM_SIZE),
            (IOAPIC_START, 0x1000),
            (VTD_START, VTD_SIZE),
            (LAPIC_START, 0x1000),
        ];
        regions.sort();
        for pair in regions.windows(2) {
            assert!(pair[0].0 + pair[0].1 <= pair[1].0, "{pair:x?} overlap");
        }
        assert!(
            regions
                .iter()
                .all(|r| r.0 >= MMIO_HOLE_START && r.0 + r.1 <= RAM_ABOVE_4G_START)
        );
    }

    #[test]
    fn largest_guest_ends_below_the_64bit_window() {
        let ranges = ram_ranges(MAX_MEMORY);
        let (start, size) = ranges[1];
        assert!(start + size <= PCI_MMIO64_START);
    }
}
