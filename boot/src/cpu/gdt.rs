//! The boot GDT. Selectors follow Linux's boot protocol (code 0x10, data 0x18) and add user
//! segments for micro-guests (user data 0x28, user code 0x30, so `sysret`-style ordering).

use resources::layout::{BOOT_GDT_MAX_ENTRIES, BOOT_GDT_START};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::Error;

/// Number of descriptors written.
pub const GDT_ENTRIES: usize = 7;
/// Kernel 64-bit code.
pub const KERNEL_CODE64: u16 = 0x10;
/// Kernel data (also the 32-bit flat data segment for PVH).
pub const KERNEL_DATA: u16 = 0x18;
/// Kernel 32-bit code for PVH entry.
pub const KERNEL_CODE32: u16 = 0x08;
/// The TSS descriptor slot (KVM needs a usable TR; the descriptor is zero).
pub const TSS: u16 = 0x20;
/// User data, RPL 3.
pub const USER_DATA: u16 = 0x28 | 3;
/// User 64-bit code, RPL 3.
pub const USER_CODE64: u16 = 0x30 | 3;

const _: () = assert!(GDT_ENTRIES <= BOOT_GDT_MAX_ENTRIES);

/// Descriptor from base/limit/flags in the packed `flags` form (access byte in bits 0-7,
/// G/DB/L/AVL in bits 12-15), as Intel SDM vol 3 §3.4.5 lays it out.
const fn descriptor(flags: u64, base: u64, limit: u64) -> u64 {
    ((base & 0xff00_0000) << 32)
        | ((base & 0x00ff_ffff) << 16)
        | (limit & 0xffff)
        | ((limit & 0xf_0000) << 32)
        | ((flags & 0xf0ff) << 40)
}

/// The descriptors, indexed by selector / 8.
pub const fn gdt_entries() -> [u64; GDT_ENTRIES] {
    [
        0,
        descriptor(0xc09b, 0, 0xf_ffff), // 0x08: 32-bit code, DPL0
        descriptor(0xa09b, 0, 0xf_ffff), // 0x10: 64-bit code, DPL0
        descriptor(0xc093, 0, 0xf_ffff), // 0x18: data, DPL0
        descriptor(0x808b, 0, 0xfffff),  // 0x20: busy 64-bit TSS
        descriptor(0xc0f3, 0, 0xf_ffff), // 0x28: data, DPL3
        descriptor(0xa0fb, 0, 0xf_ffff), // 0x30: 64-bit code, DPL3
    ]
}

/// Writes the GDT at `BOOT_GDT_START`.
pub fn write_gdt(mem: &GuestMemoryMmap) -> Result<(), Error> {
    for (i, entry) in gdt_entries().iter().enumerate() {
        let addr = BOOT_GDT_START + (i as u64) * 8;
        mem.write_obj(*entry, GuestAddress(addr))
            .map_err(|_| Error::GuestMemory {
                what: "the GDT",
                addr,
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_match_the_well_known_encodings() {
        let g = gdt_entries();
        assert_eq!(g[(KERNEL_CODE64 / 8) as usize], 0x00af_9b00_0000_ffff);
        assert_eq!(g[(KERNEL_DATA / 8) as usize], 0x00cf_9300_0000_ffff);
        assert_eq!(g[(KERNEL_CODE32 / 8) as usize], 0x00cf_9b00_0000_ffff);
        assert_eq!(g[(USER_DATA / 8) as usize], 0x00cf_f300_0000_ffff);
        assert_eq!(g[(USER_CODE64 / 8) as usize], 0x00af_fb00_0000_ffff);
    }
}
