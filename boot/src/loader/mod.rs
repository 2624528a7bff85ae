//! Kernel loading: an ELF vmlinux (PVH or 64-bit Linux entry), a bzImage (its payload
//! decompressed on the host when the format allows, else the kernel's own decompressor), or a
//! micro-guest (an ELF carrying the IOVMM note, entered at CPL3).

mod bzimage;
mod decompress;
mod elf;
mod initrd;

use std::path::Path;

use linux_loader::loader::bootparam::setup_header;
use vm_memory::GuestMemoryMmap;

pub use decompress::{PayloadFormat, decompress_payload};
pub use initrd::load_initrd;

use crate::Error;

/// How the boot vCPU enters the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryPoint {
    /// The 64-bit Linux boot protocol: long mode, RSI = zero page.
    Linux64(u64),
    /// PVH: 32-bit protected mode without paging, RBX = `hvm_start_info`.
    Pvh(u64),
    /// A micro-guest: long mode at CPL3, RDI = boot info.
    MicroGuest(u64),
}

/// Which entry to use for an ELF vmlinux that offers PVH.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryPreference {
    /// PVH when the kernel has the note, else the 64-bit entry.
    Auto,
    /// PVH, or an error if the kernel has no PVH note.
    Pvh,
    /// The 64-bit Linux entry.
    Linux64,
}

/// A kernel in guest memory.
#[derive(Clone, Debug)]
pub struct LoadedKernel {
    /// Where to start.
    pub entry: EntryPoint,
    /// One past the highest byte the image occupies (including its bss).
    pub kernel_end: u64,
    /// The bzImage's setup header, to copy into the zero page.
    pub setup_header: Option<setup_header>,
    /// One line for the log: what was loaded and how.
    pub description: String,
}

/// Loads the kernel at `path` into `mem`.
pub fn load_kernel(
    mem: &GuestMemoryMmap,
    path: &Path,
    preference: EntryPreference,
) -> Result<LoadedKernel, Error> {
    let image = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if elf::is_elf(&image) {
        return elf::load(mem, path, &image, preference, "ELF");
    }
    if bzimage::is_bzimage(&image) {
        return bzimage::load(mem, path, &image);
    }
    Err(Error::UnknownFormat {
        path: path.to_path_buf(),
    })
}
