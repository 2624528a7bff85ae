//! Identity page tables for the first 4 GiB with 2 MiB pages. Linux's 64-bit entry and the
//! micro-guests need paging on; the user bit lets CPL3 micro-guests touch everything, which is
//! the point of them (they test devices, not isolation).

use resources::layout::{PDE_COUNT, PDE_START, PDPTE_START, PML4_START};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::Error;

const PRESENT: u64 = 1;
const WRITABLE: u64 = 1 << 1;
const USER: u64 = 1 << 2;
const HUGE: u64 = 1 << 7;
const TABLE: u64 = PRESENT | WRITABLE | USER;

/// Writes PML4, PDPT and `PDE_COUNT` page directories.
pub fn write_identity_page_tables(mem: &GuestMemoryMmap) -> Result<(), Error> {
    let write = |value: u64, addr: u64| {
        mem.write_obj(value, GuestAddress(addr))
            .map_err(|_| Error::GuestMemory {
                what: "the page tables",
                addr,
            })
    };
    write(PDPTE_START | TABLE, PML4_START)?;
    for dir in 0..PDE_COUNT {
        write((PDE_START + dir * 0x1000) | TABLE, PDPTE_START + dir * 8)?;
        for entry in 0..512u64 {
            let page = (dir << 30) | (entry << 21);
            write(page | TABLE | HUGE, PDE_START + dir * 0x1000 + entry * 8)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use vm_memory::GuestAddress;

    use super::*;

    #[test]
    fn maps_every_2m_page_below_4g_to_itself() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        write_identity_page_tables(&mem).unwrap();
        let read = |a: u64| mem.read_obj::<u64>(GuestAddress(a)).unwrap();
        for va in [0u64, 0x20_0000, 0xfee0_0000, 0xffff_ffff] {
            let pml4e = read(PML4_START + ((va >> 39) & 511) * 8);
            let pdpte = read((pml4e & !0xfff) + ((va >> 30) & 511) * 8);
            let pde = read((pdpte & !0xfff) + ((va >> 21) & 511) * 8);
            assert_eq!(pde & HUGE, HUGE);
            assert_eq!((pde & !0x1f_ffff) | (va & 0x1f_ffff), va);
        }
    }
}
