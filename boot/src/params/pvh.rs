//! The PVH `hvm_start_info` structure, its memory map and the initrd module.

use linux_loader::configurator::pvh::PvhBootConfigurator;
use linux_loader::configurator::{BootConfigurator, BootParams};
use linux_loader::loader::elf::start_info::{
    hvm_memmap_table_entry, hvm_modlist_entry, hvm_start_info,
};
use resources::layout::PVH_INFO_START;
use vm_memory::{GuestAddress, GuestMemoryMmap};

use super::{BootLocations, e820_map};
use crate::Error;

/// `XEN_HVM_START_MAGIC_VALUE`.
const PVH_MAGIC: u32 = 0x336e_c578;
/// The memory map follows the start info; the module list follows the memory map.
const MEMMAP_START: u64 = PVH_INFO_START + 0x100;
const MODLIST_START: u64 = PVH_INFO_START + 0x800;

/// Writes the start info (at `PVH_INFO_START`) for a PVH entry.
pub fn write_pvh_start_info(mem: &GuestMemoryMmap, at: &BootLocations) -> Result<(), Error> {
    let map: Vec<hvm_memmap_table_entry> = e820_map(at.mem_size)
        .into_iter()
        .map(|e| hvm_memmap_table_entry {
            addr: e.addr,
            size: e.size,
            type_: e.kind,
            reserved: 0,
        })
        .collect();
    let mut info = hvm_start_info {
        magic: PVH_MAGIC,
        version: 1,
        cmdline_paddr: at.cmdline.0,
        rsdp_paddr: at.rsdp,
        memmap_paddr: MEMMAP_START,
        memmap_entries: map.len() as u32,
        ..Default::default()
    };
    if at.initrd.is_some() {
        info.nr_modules = 1;
        info.modlist_paddr = MODLIST_START;
    }
    let mut params = BootParams::new(&info, GuestAddress(PVH_INFO_START));
    params.set_sections(&map, GuestAddress(MEMMAP_START));
    if let Some((paddr, size)) = at.initrd {
        let module = hvm_modlist_entry {
            paddr,
            size,
            ..Default::default()
        };
        params.set_modules(&[module], GuestAddress(MODLIST_START));
    }
    PvhBootConfigurator::write_bootparams(&params, mem).map_err(|_| Error::GuestMemory {
        what: "the PVH start info",
        addr: PVH_INFO_START,
    })
}

#[cfg(test)]
mod tests {
    use vm_memory::Bytes;

    use super::*;

    #[test]
    fn start_info_points_at_everything() {
        let m = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 64 << 20)]).unwrap();
        let at = BootLocations {
            mem_size: 64 << 20,
            cmdline: (0x2_0000, 4),
            initrd: Some((0x300_0000, 0x2000)),
            rsdp: 0xe_0000,
        };
        write_pvh_start_info(&m, &at).unwrap();
        let info: hvm_start_info = m.read_obj(GuestAddress(PVH_INFO_START)).unwrap();
        assert_eq!(info.magic, 0x336e_c578);
        assert_eq!((info.cmdline_paddr, info.rsdp_paddr), (0x2_0000, 0xe_0000));
        assert_eq!(info.memmap_entries, 4);
        let third: hvm_memmap_table_entry = m
            .read_obj(GuestAddress(info.memmap_paddr + 2 * 24))
            .unwrap();
        assert_eq!((third.addr, third.type_), (0x10_0000, 1));
        let module: hvm_modlist_entry = m.read_obj(GuestAddress(info.modlist_paddr)).unwrap();
        assert_eq!(
            (info.nr_modules, module.paddr, module.size),
            (1, 0x300_0000, 0x2000)
        );
    }
}
