//! The test kernel and disk images, built by `tests/scripts/` and cached under
//! `~/.cache/iovmm` (or `$IOVMM_CACHE`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The test kernel's build products.
#[derive(Debug, Clone)]
pub struct KernelArtifacts {
    /// Uncompressed ELF.
    pub vmlinux: PathBuf,
    /// The same kernel as a bzImage (xz payload).
    pub bzimage: PathBuf,
    /// The uncompressed test initramfs (`/dev/console` and the tiny `/init`).
    pub initramfs: PathBuf,
    /// The tiny static init program itself.
    pub init: PathBuf,
}

fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("IOVMM_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".cache/iovmm")
}

/// The cached test kernel, or None (then the test skips, unless `IOVMM_REQUIRE_KERNEL` is set:
/// CI sets it after building the kernel, so a missing kernel fails instead of skipping).
pub fn kernel_artifacts() -> Option<KernelArtifacts> {
    let dir = cache_root().join("kernel/current");
    let found = KernelArtifacts {
        vmlinux: dir.join("vmlinux"),
        bzimage: dir.join("bzImage"),
        initramfs: dir.join("initramfs.cpio"),
        init: dir.join("init"),
    };
    if found.vmlinux.is_file() && found.bzimage.is_file() && found.initramfs.is_file() {
        return Some(found);
    }
    let hint = "build it with tests/scripts/build-kernel.sh";
    if std::env::var_os("IOVMM_REQUIRE_KERNEL").is_some() {
        let _ = writeln_stderr(&format!(
            "the test kernel is missing from {} ({hint})",
            dir.display()
        ));
        return None;
    }
    let _ = writeln_stderr(&format!(
        "SKIPPED: no test kernel in {} ({hint})",
        dir.display()
    ));
    None
}

/// True if a missing kernel must fail the test rather than skip it.
pub fn kernel_required() -> bool {
    std::env::var_os("IOVMM_REQUIRE_KERNEL").is_some()
}

fn writeln_stderr(s: &str) -> std::io::Result<()> {
    use std::io::Write;
    writeln!(std::io::stderr(), "{s}")
}

/// Disk images for one test.
#[derive(Debug, Clone)]
pub struct Disks {
    /// ext4 root filesystem.
    pub root: PathBuf,
    /// Raw disk with an MBR partition table.
    pub data: PathBuf,
}

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts")
}

/// Creates fresh disk images in `dir` with `tests/scripts/make-disks.sh`, with `init` as the
/// root filesystem's `/sbin/init` when given.
pub fn make_disks(dir: &Path, init: Option<&Path>) -> Result<Disks, String> {
    let script = scripts_dir().join("make-disks.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(dir)
        .args(init)
        .output()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(Disks {
        root: dir.join("root.ext4"),
        data: dir.join("data.raw"),
    })
}

/// The ext4 superblock's mount count and last mount time (s_mnt_count, s_mtime).
pub fn superblock_mounts(image: &Path) -> Result<(u16, u32), String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(image).map_err(|e| format!("{}: {e}", image.display()))?;
    let mut sb = [0u8; 1024];
    f.seek(SeekFrom::Start(1024))
        .and_then(|_| f.read_exact(&mut sb))
        .map_err(|e| format!("{}: {e}", image.display()))?;
    let magic = u16::from_le_bytes([sb[56], sb[57]]);
    if magic != 0xef53 {
        return Err(format!(
            "{}: not ext2/3/4 (magic {magic:#x})",
            image.display()
        ));
    }
    let mnt_count = u16::from_le_bytes([sb[52], sb[53]]);
    let mtime = u32::from_le_bytes([sb[44], sb[45], sb[46], sb[47]]);
    Ok((mnt_count, mtime))
}
