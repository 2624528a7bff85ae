//! The Linux zero page (`boot_params`) for the 64-bit boot protocol.

use linux_loader::configurator::linux::LinuxBootConfigurator;
use linux_loader::configurator::{BootConfigurator, BootParams};
use linux_loader::loader::bootparam::{boot_e820_entry, boot_params, setup_header};
use resources::layout::ZERO_PAGE_START;
use vm_memory::{GuestAddress, GuestMemoryMmap};

use super::{BootLocations, e820_map};
use crate::Error;

/// "HdrS".
const HDRS_MAGIC: u32 = 0x5372_6448;
/// The boot sector signature.
const BOOT_FLAG: u16 = 0xaa55;
/// `type_of_loader` for a loader without an assigned id.
const LOADER_UNDEFINED: u8 = 0xff;
/// loadflags: the protected-mode code is loaded at 1 MiB or above.
const LOADED_HIGH: u8 = 1;
/// Boot protocol version we speak when the kernel gave no header (2.12: 64-bit entry, xloadflags).
const SYNTHESIZED_PROTOCOL: u16 = 0x020c;

/// Builds and writes the zero page; `header` is the bzImage's setup header, if any.
pub fn write_zero_page(
    mem: &GuestMemoryMmap,
    header: Option<&setup_header>,
    at: &BootLocations,
) -> Result<(), Error> {
    let hdr = match header {
        Some(h) => *h,
        None => setup_header {
            boot_flag: BOOT_FLAG,
            header: HDRS_MAGIC,
            version: SYNTHESIZED_PROTOCOL,
            kernel_alignment: 0x100_0000,
            ..Default::default()
        },
    };
    let mut params = boot_params {
        hdr,
        ..Default::default()
    };
    params.hdr.type_of_loader = LOADER_UNDEFINED;
    params.hdr.loadflags |= LOADED_HIGH;
    params.hdr.cmd_line_ptr = at.cmdline.0 as u32;
    params.hdr.cmdline_size = at.cmdline.1 as u32 + 1;
    if let Some((addr, size)) = at.initrd {
        params.hdr.ramdisk_image = addr as u32;
        params.hdr.ramdisk_size = size as u32;
        params.ext_ramdisk_image = (addr >> 32) as u32;
        params.ext_ramdisk_size = (size >> 32) as u32;
    }
    params.acpi_rsdp_addr = at.rsdp;
    let map = e820_map(at.mem_size);
    for (slot, entry) in params.e820_table.iter_mut().zip(&map) {
        *slot = boot_e820_entry {
            addr: entry.addr,
            size: entry.size,
            r#type: entry.kind,
        };
    }
    params.e820_entries = map.len().min(params.e820_table.len()) as u8;
    LinuxBootConfigurator::write_bootparams(
        &BootParams::new(&params, GuestAddress(ZERO_PAGE_START)),
        mem,
    )
    .map_err(|_| Error::GuestMemory {
        what: "the zero page",
        addr: ZERO_PAGE_START,
    })
}

#[cfg(test)]
mod tests {
    use vm_memory::Bytes;

    use super::*;

    fn read_params(m: &GuestMemoryMmap) -> boot_params {
        m.read_obj(GuestAddress(ZERO_PAGE_START)).unwrap()
    }

    #[test]
    fn synthesized_header_and_pointers() {
        let m = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 64 << 20)]).unwrap();
        let at = BootLocations {
            mem_size: 64 << 20,
            cmdline: (0x2_0000, 13),
            initrd: Some((0x300_0000, 4096)),
            rsdp: 0xe_0000,
        };
        write_zero_page(&m, None, &at).unwrap();
        let p = read_params(&m);
        let h = p.hdr;
        assert_eq!({ h.header }, HDRS_MAGIC);
        assert_eq!({ h.boot_flag }, BOOT_FLAG);
        assert_eq!(h.type_of_loader, 0xff);
        assert_eq!({ h.cmd_line_ptr }, 0x2_0000);
        assert_eq!({ h.cmdline_size }, 14);
        assert_eq!(
            ({ h.ramdisk_image }, { h.ramdisk_size }),
            (0x300_0000, 4096)
        );
        assert_eq!({ p.acpi_rsdp_addr }, 0xe_0000);
        assert_eq!(p.e820_entries, 4);
        let e = p.e820_table[2];
        assert_eq!(
            ({ e.addr }, { e.size }, { e.r#type }),
            (0x10_0000, (64 << 20) - 0x10_0000, 1)
        );
        // Byte offsets from Documentation/arch/x86/zero-page.rst.
        let mut raw = [0u8; 4096];
        m.read_slice(&mut raw, GuestAddress(ZERO_PAGE_START))
            .unwrap();
        assert_eq!(&raw[0x202..0x206], b"HdrS");
        assert_eq!(raw[0x1e8], 4, "e820_entries at 0x1e8");
        assert_eq!(
            u64::from_le_bytes(raw[0x70..0x78].try_into().unwrap()),
            0xe_0000,
            "acpi_rsdp_addr at 0x70"
        );
        assert_eq!(
            u32::from_le_bytes(raw[0x228..0x22c].try_into().unwrap()),
            0x2_0000,
            "cmd_line_ptr at 0x228"
        );
        assert_eq!(
            u64::from_le_bytes(raw[0x2d0 + 40..0x2d0 + 48].try_into().unwrap()),
            0x10_0000,
            "e820_table[2].addr"
        );
    }

    #[test]
    fn a_bzimage_header_is_kept_and_completed() {
        let m = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 64 << 20)]).unwrap();
        let from_file = setup_header {
            header: HDRS_MAGIC,
            version: 0x020f,
            init_size: 0x123_4000,
            ..Default::default()
        };
        let at = BootLocations {
            mem_size: 64 << 20,
            cmdline: (0x2_0000, 0),
            initrd: None,
            rsdp: 0xe_0000,
        };
        write_zero_page(&m, Some(&from_file), &at).unwrap();
        let h = read_params(&m).hdr;
        assert_eq!(({ h.version }, { h.init_size }), (0x020f, 0x123_4000));
        assert_eq!(h.loadflags & LOADED_HIGH, LOADED_HIGH);
        assert_eq!({ h.ramdisk_image }, 0);
    }
}
