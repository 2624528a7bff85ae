//! Builds the micro-guests (`guests/*.c`) into ELF files with the host's gcc. They are tiny
//! freestanding programs that iovmm runs at CPL3; see `guests/guest.h`.

use std::path::{Path, PathBuf};
use std::process::Command;

const RUNTIME: [&str; 4] = ["crt0.S", "lib.c", "virtio.c", "vtd.c"];

fn build(guests: &Path, out: &Path, source: &Path) -> Result<(), String> {
    let stem = source
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or("bad guest file name")?;
    let target = out.join(format!("{stem}.elf"));
    let status = Command::new(std::env::var("IOVMM_GUEST_CC").unwrap_or_else(|_| "gcc".into()))
        .args([
            "-m64",
            "-O2",
            "-g",
            "-std=gnu11",
            "-ffreestanding",
            "-fno-pic",
            "-fno-pie",
            "-no-pie",
            "-nostdlib",
            "-static",
            "-mno-red-zone",
            "-mgeneral-regs-only",
            "-fno-stack-protector",
            "-fno-asynchronous-unwind-tables",
            "-fno-builtin",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-Wl,--build-id=none",
            "-Wl,-z,noexecstack",
        ])
        .arg("-T")
        .arg(guests.join("link.ld"))
        .arg("-I")
        .arg(guests)
        .args(RUNTIME.iter().map(|f| guests.join(f)))
        .arg(source)
        .arg("-o")
        .arg(&target)
        .status()
        .map_err(|e| format!("cannot run gcc to build the micro-guests ({e}); install gcc"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("gcc failed on {}", source.display()))
    }
}

fn main() -> Result<(), String> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let guests = manifest.join("guests");
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?);
    println!("cargo:rerun-if-changed={}", guests.display());
    println!("cargo:rerun-if-env-changed=IOVMM_GUEST_CC");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&guests)
        .map_err(|e| format!("{}: {e}", guests.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .filter(|p| !RUNTIME.iter().any(|r| p.ends_with(r)))
        .collect();
    entries.sort();
    for source in &entries {
        println!("cargo:rerun-if-changed={}", source.display());
        build(&guests, &out, source)?;
    }
    println!("cargo:rustc-env=IOVMM_GUEST_DIR={}", out.display());
    Ok(())
}
