//! bzImages: the setup header, the payload, and the choice between decompressing it here and
//! leaving it to the kernel's own decompressor.

use std::io::Cursor;
use std::path::Path;

use linux_loader::loader::bootparam::setup_header;
use linux_loader::loader::{BzImage, KernelLoader};
use resources::layout::HIGH_RAM_START;
use vm_memory::{ByteValued, GuestAddress, GuestMemoryMmap};

use super::decompress::{PayloadFormat, decompress_payload};
use super::{EntryPoint, EntryPreference, LoadedKernel, elf};
use crate::Error;

/// Offset of the setup header in the file.
const SETUP_HEADER_OFFSET: usize = 0x1f1;
/// Offset of the "HdrS" magic.
const MAGIC_OFFSET: usize = 0x202;
/// Boot protocol version that added `payload_offset`/`payload_length`.
const PROTOCOL_WITH_PAYLOAD: u16 = 0x0208;
/// The 64-bit entry of the compressed kernel, relative to where it is loaded.
const STARTUP_64_OFFSET: u64 = 0x200;

/// True if `image` carries the bzImage magic.
pub(crate) fn is_bzimage(image: &[u8]) -> bool {
    image.get(MAGIC_OFFSET..MAGIC_OFFSET + 4) == Some(b"HdrS")
}

/// The setup header of `image`.
pub(crate) fn read_setup_header(image: &[u8]) -> Option<setup_header> {
    let bytes = image.get(SETUP_HEADER_OFFSET..SETUP_HEADER_OFFSET + size_of::<setup_header>())?;
    let mut header = setup_header::default();
    header.as_mut_slice().copy_from_slice(bytes);
    Some(header)
}

/// The compressed payload: where the protected-mode code starts plus `payload_offset`.
fn payload<'a>(image: &'a [u8], header: &setup_header) -> Result<&'a [u8], String> {
    let version = header.version;
    if version < PROTOCOL_WITH_PAYLOAD {
        return Err(format!(
            "boot protocol {version:#x} predates payload fields (2.08)"
        ));
    }
    let setup_sects = match header.setup_sects {
        0 => 4,
        n => usize::from(n),
    };
    let start = (setup_sects + 1) * 512;
    let offset = header.payload_offset as usize;
    let length = header.payload_length as usize;
    start
        .checked_add(offset)
        .and_then(|s| Some(s..s.checked_add(length)?))
        .and_then(|r| image.get(r))
        .ok_or_else(|| "payload_offset/payload_length run past the end of the file".to_string())
}

/// Loads a bzImage: on the host when its payload format allows, else in the guest.
pub(crate) fn load(
    mem: &GuestMemoryMmap,
    path: &Path,
    image: &[u8],
) -> Result<LoadedKernel, Error> {
    let bad = |reason: String| Error::BadBzImage {
        path: path.to_path_buf(),
        reason,
    };
    let header = read_setup_header(image).ok_or_else(|| bad("truncated setup header".into()))?;
    let payload = payload(image, &header).map_err(bad)?;
    let format = PayloadFormat::detect(payload);
    if format.on_host() {
        let started = std::time::Instant::now();
        match decompress_payload(payload) {
            Ok(vmlinux) => {
                let took = started.elapsed();
                let mut kernel =
                    elf::load(mem, path, &vmlinux, EntryPreference::Linux64, "bzImage")?;
                kernel.setup_header = Some(header);
                kernel.description = format!(
                    "{}; {} payload decompressed on the host ({:.1} MiB in {} ms)",
                    kernel.description,
                    format.name(),
                    vmlinux.len() as f64 / (1 << 20) as f64,
                    took.as_millis()
                );
                return Ok(kernel);
            }
            Err(e) => log::warn!(
                "{}: {e}; leaving decompression to the guest",
                path.display()
            ),
        }
    } else {
        log::warn!(
            "{}: {} payload: iovmm decompresses gzip, xz, lz4 and zstd only, so the guest does it \
             (slow on hosts without VT-x/AMD-V)",
            path.display(),
            format.name()
        );
    }
    in_guest(mem, path, image, header, format)
}

/// The kernel's own decompressor: load the protected-mode part at 1 MiB and enter its 64-bit
/// entry point.
fn in_guest(
    mem: &GuestMemoryMmap,
    path: &Path,
    image: &[u8],
    header: setup_header,
    format: PayloadFormat,
) -> Result<LoadedKernel, Error> {
    let loaded = BzImage::load(
        mem,
        None,
        &mut Cursor::new(image),
        Some(GuestAddress(HIGH_RAM_START)),
    )
    .map_err(|e| Error::BadBzImage {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let load = loaded.kernel_load.0;
    // The decompressor works in place and needs init_size bytes from the load address.
    let init_size = u64::from(header.init_size);
    let kernel_end = load.saturating_add(init_size.max(loaded.kernel_end));
    Ok(LoadedKernel {
        entry: EntryPoint::Linux64(load + STARTUP_64_OFFSET),
        kernel_end,
        setup_header: loaded.setup_header.or(Some(header)),
        description: format!(
            "bzImage, {} payload decompressed by the guest",
            format.name()
        ),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::decompress::tests::kernel_style_payload;
    use super::super::elf::tests::build_elf;
    use super::*;

    /// A bzImage around `payload`: 4 setup sectors, protocol 2.15, a loadable header.
    pub(crate) fn build_bzimage(payload: &[u8]) -> Vec<u8> {
        let setup_sects = 4u8;
        let pm_start = (usize::from(setup_sects) + 1) * 512;
        let mut img = vec![0u8; pm_start];
        let mut h = setup_header {
            setup_sects,
            boot_flag: 0xaa55,
            header: 0x5372_6448,
            version: 0x020f,
            loadflags: 1,
            code32_start: 0x10_0000,
            initrd_addr_max: 0x7fff_ffff,
            kernel_alignment: 0x20_0000,
            relocatable_kernel: 1,
            cmdline_size: 2047,
            payload_offset: 0x100,
            payload_length: payload.len() as u32,
            init_size: 0x80_0000,
            ..Default::default()
        };
        h.syssize = (0x100 + payload.len()).div_ceil(16) as u32;
        img[SETUP_HEADER_OFFSET..SETUP_HEADER_OFFSET + size_of::<setup_header>()]
            .copy_from_slice(h.as_slice());
        img.resize(pm_start + 0x100, 0x90);
        img.extend_from_slice(payload);
        img
    }

    fn mem() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 64 << 20)]).unwrap()
    }

    #[test]
    fn host_formats_load_the_inner_elf_with_the_64bit_entry() {
        let vmlinux = build_elf(
            0x100_0000,
            0x100_0000,
            b"inner kernel",
            &[("Xen", 18, &0x100_0004u32.to_le_bytes())],
        );
        for format in [
            PayloadFormat::Gzip,
            PayloadFormat::Xz,
            PayloadFormat::Lz4,
            PayloadFormat::Zstd,
        ] {
            let image = build_bzimage(&kernel_style_payload(format, &vmlinux));
            let m = mem();
            let k = load(&m, Path::new("bz"), &image).unwrap();
            // Even with a PVH note, a bzImage boots through its setup header's 64-bit entry.
            assert_eq!(k.entry, EntryPoint::Linux64(0x100_0000), "{format:?}");
            assert!(
                k.description.contains("decompressed on the host"),
                "{}",
                k.description
            );
            let h = k.setup_header.unwrap();
            assert_eq!({ h.header }, 0x5372_6448);
            let mut back = [0u8; 12];
            vm_memory::Bytes::read_slice(&m, &mut back, GuestAddress(0x100_0000)).unwrap();
            assert_eq!(&back, b"inner kernel");
        }
    }

    #[test]
    fn other_formats_fall_back_to_the_guest_decompressor() {
        let image = build_bzimage(b"BZh91AY&SY not really bzip2 but recognised as such");
        let k = load(&mem(), Path::new("bz"), &image).unwrap();
        assert_eq!(k.entry, EntryPoint::Linux64(0x10_0000 + STARTUP_64_OFFSET));
        assert!(k.kernel_end >= 0x10_0000 + 0x80_0000);
        assert!(k.description.contains("by the guest"));
    }

    #[test]
    fn a_corrupt_host_payload_falls_back_too() {
        let mut payload = kernel_style_payload(
            PayloadFormat::Gzip,
            &build_elf(0x100_0000, 0x100_0000, &[1; 4096], &[]),
        );
        let n = payload.len();
        for b in &mut payload[20..n - 8] {
            *b = 0;
        }
        let k = load(&mem(), Path::new("bz"), &build_bzimage(&payload)).unwrap();
        assert!(k.description.contains("by the guest"));
    }

    #[test]
    fn payload_past_the_end_is_an_error() {
        let mut image = build_bzimage(b"\x1f\x8b");
        let len_at = SETUP_HEADER_OFFSET + 0x24c - 0x1f1;
        image[len_at..len_at + 4].copy_from_slice(&0x10_0000u32.to_le_bytes());
        let err = load(&mem(), Path::new("bz"), &image).unwrap_err();
        assert!(err.to_string().contains("past the end"), "{err}");
        let truncated = &build_bzimage(b"x")[..0x210];
        assert!(load(&mem(), Path::new("bz"), truncated).is_err());
    }
}
