//! The initial ramdisk: as high as the kernel can reach, above the kernel image.

use std::fs::File;
use std::path::Path;

use linux_loader::loader::bootparam::setup_header;
use resources::layout::{PAGE_SIZE, ram_end_below_4g};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::Error;

/// Highest initrd address for kernels without a setup header (the 64-bit boot protocol's
/// `ramdisk_image` is 32 bits; 2 GiB is the traditional `initrd_addr_max`).
const DEFAULT_INITRD_ADDR_MAX: u64 = 0x7fff_ffff;

/// Loads the initrd at `path`; returns `(address, size)`.
pub fn load_initrd(
    mem: &GuestMemoryMmap,
    mem_size: u64,
    path: &Path,
    kernel_end: u64,
    header: Option<&setup_header>,
) -> Result<(u64, u64), Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let addr_max = header
        .map(|h| u64::from(h.initrd_addr_max))
        .filter(|&m| m != 0)
        .unwrap_or(DEFAULT_INITRD_ADDR_MAX);
    let limit = ram_end_below_4g(mem_size).min(addr_max.saturating_add(1));
    let lowest = kernel_end.div_ceil(PAGE_SIZE) * PAGE_SIZE;
    let addr = limit
        .checked_sub(size)
        .map(|a| a & !(PAGE_SIZE - 1))
        .filter(|&a| a >= lowest && size > 0)
        .ok_or(Error::InitrdTooLarge {
            path: path.to_path_buf(),
            size,
            limit,
        })?;
    let len = usize::try_from(size).map_err(|_| Error::InitrdTooLarge {
        path: path.to_path_buf(),
        size,
        limit,
    })?;
    mem.read_exact_volatile_from(GuestAddress(addr), &mut file, len)
        .map_err(|_| Error::GuestMemory {
            what: "the initrd",
            addr,
        })?;
    Ok((addr, size))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn file_of(len: usize) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("iovmm-initrd-{}-{len}", std::process::id()));
        let mut f = File::create(&p).unwrap();
        f.write_all(&vec![0xab; len]).unwrap();
        p
    }

    #[test]
    fn placed_page_aligned_at_the_top_of_ram() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 64 << 20)]).unwrap();
        let p = file_of(10_000);
        let (addr, size) = load_initrd(&mem, 64 << 20, &p, 0x200_0000, None).unwrap();
        assert_eq!(size, 10_000);
        assert_eq!(addr % PAGE_SIZE, 0);
        assert!(addr + size <= 64 << 20 && addr + size > (64 << 20) - PAGE_SIZE * 4);
        assert_eq!(
            mem.read_obj::<u8>(GuestAddress(addr + 9_999)).unwrap(),
            0xab
        );
    }

    #[test]
    fn respects_initrd_addr_max() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 64 << 20)]).unwrap();
        let p = file_of(4096);
        let h = setup_header {
            initrd_addr_max: 0x1ff_ffff,
            ..Default::default()
        };
        let (addr, _) = load_initrd(&mem, 64 << 20, &p, 0x100_0000, Some(&h)).unwrap();
        assert!(addr + 4096 <= 0x200_0000);
    }

    #[test]
    fn too_large_is_a_clear_error() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 32 << 20)]).unwrap();
        let p = file_of(20 << 20);
        let err = load_initrd(&mem, 32 << 20, &p, 0x100_0000, None).unwrap_err();
        assert!(err.to_string().contains("--memory"), "{err}");
    }
}
