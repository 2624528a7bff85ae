//! The guest's physical memory map as firmware would report it.

use resources::layout::{
    EBDA_START, HIGH_RAM_START, PCI_ECAM_SIZE, PCI_ECAM_START, ram_end_below_4g, ram_ranges,
};

/// e820 type: usable RAM.
pub const E820_RAM: u32 = 1;
/// e820 type: reserved.
pub const E820_RESERVED: u32 = 2;

/// One e820 entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E820Entry {
    /// Start.
    pub addr: u64,
    /// Length.
    pub size: u64,
    /// Type.
    pub kind: u32,
}

/// The map of a guest with `mem_size` bytes of RAM: low RAM, the legacy hole (EBDA, ACPI
/// tables, BIOS area) reserved, RAM up to the MMIO hole, the ECAM window reserved (Linux uses
/// MMCONFIG only if it is), and RAM above 4 GiB.
pub fn e820_map(mem_size: u64) -> Vec<E820Entry> {
    let mut map = vec![
        E820Entry {
            addr: 0,
            size: EBDA_START,
            kind: E820_RAM,
        },
        E820Entry {
            addr: EBDA_START,
            size: HIGH_RAM_START - EBDA_START,
            kind: E820_RESERVED,
        },
        E820Entry {
            addr: HIGH_RAM_START,
            size: ram_end_below_4g(mem_size).saturating_sub(HIGH_RAM_START),
            kind: E820_RAM,
        },
        E820Entry {
            addr: PCI_ECAM_START,
            size: PCI_ECAM_SIZE,
            kind: E820_RESERVED,
        },
    ];
    if let Some(&(addr, size)) = ram_ranges(mem_size).get(1) {
        map.push(E820Entry {
            addr,
            size,
            kind: E820_RAM,
        });
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ram_total(map: &[E820Entry]) -> u64 {
        map.iter()
            .filter(|e| e.kind == E820_RAM)
            .map(|e| e.size)
            .sum()
    }

    #[test]
    fn small_guest() {
        let map = e820_map(512 << 20);
        assert_eq!(map.len(), 4);
        assert_eq!(
            map[2],
            E820Entry {
                addr: 0x10_0000,
                size: (512 << 20) - 0x10_0000,
                kind: E820_RAM
            }
        );
        assert_eq!(ram_total(&map), (512 << 20) - (HIGH_RAM_START - EBDA_START));
        // Entries are sorted and disjoint.
        for w in map.windows(2) {
            assert!(w[0].addr + w[0].size <= w[1].addr);
        }
    }

    #[test]
    fn large_guest_has_ram_above_4g() {
        let map = e820_map(6 << 30);
        let high = map.last().unwrap();
        assert_eq!(
            (high.addr, high.size, high.kind),
            (1 << 32, (6 << 30) - 0xc000_0000, E820_RAM)
        );
        assert_eq!(map[2].addr + map[2].size, 0xc000_0000);
    }
}
