//! Checks that the command line makes sense as a whole before anything is built, so that a bad
//! value fails in milliseconds with a message naming the flag, never halfway through a boot.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use resources::layout::{MAX_MEMORY, MIN_MEMORY};

use crate::cli::{BootEntryChoice, Cli, CpuChoice, DiskSpec, IommuSpec, Output};

/// A command-line mistake: printed as is, exit status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn usage<T>(msg: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(msg.into()))
}

/// One disk, opened.
#[derive(Debug)]
pub struct DiskConfig {
    /// The backing file, opened for reading (and writing unless read-only).
    pub file: File,
    /// Where it came from (for messages).
    pub path: PathBuf,
    /// Read-only for the guest.
    pub readonly: bool,
}

/// The VM to build, checked.
#[derive(Debug)]
pub struct VmConfig {
    /// Guest kernel image.
    pub kernel: PathBuf,
    /// Initial ramdisk.
    pub initrd: Option<PathBuf>,
    /// Kernel command line as given (iovmm may append to it).
    pub cmdline: String,
    /// Guest memory in bytes.
    pub memory: u64,
    /// vCPU count.
    pub cpus: u8,
    /// COM1 output.
    pub serial: Output,
    /// virtio-console output, if there is one.
    pub console: Option<Output>,
    /// virtio-blk devices.
    pub disks: Vec<DiskConfig>,
    /// virtio-rng device.
    pub rng: bool,
    /// The IOMMU, if any.
    pub iommu: Option<IommuSpec>,
    /// Where IOMMU events go.
    pub iommu_trace: Option<PathBuf>,
    /// Seconds before the guest is stopped.
    pub timeout: Option<u64>,
    /// CPU model choice.
    pub cpu: CpuChoice,
    /// How to enter a PVH-capable vmlinux.
    pub boot_entry: BootEntryChoice,
}

fn readable_file(flag: &str, path: &Path) -> Result<(), UsageError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => File::open(path)
            .map(drop)
            .or_else(|e| usage(format!("{flag} {}: cannot read it: {e}", path.display()))),
        Ok(_) => usage(format!("{flag} {}: not a regular file", path.display())),
        Err(e) => usage(format!(
            "{flag} {}: {e}; give the path of an existing file",
            path.display()
        )),
    }
}

fn open_disk(spec: &DiskSpec) -> Result<DiskConfig, UsageError> {
    let file = OpenOptions::new()
        .read(true)
        .write(!spec.readonly)
        .open(&spec.path)
        .or_else(|e| {
            let hint = if spec.readonly {
                ""
            } else {
                " (add readonly=on to use a file you cannot write)"
            };
            usage(format!("--disk path={}: {e}{hint}", spec.path.display()))
        })?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len == 0 || len % 512 != 0 {
        return usage(format!(
            "--disk path={}: the image is {len} bytes; a disk image must be a non-empty multiple of 512 bytes",
            spec.path.display()
        ));
    }
    Ok(DiskConfig {
        file,
        path: spec.path.clone(),
        readonly: spec.readonly,
    })
}

fn fmt_mib(bytes: u64) -> String {
    format!("{}M", bytes >> 20)
}

impl VmConfig {
    /// Checks `cli` and opens the files it names.
    pub fn from_cli(cli: Cli) -> Result<Self, UsageError> {
        readable_file("--kernel", &cli.kernel)?;
        if let Some(initrd) = &cli.initrd {
            readable_file("--initrd", initrd)?;
        }
        if cli.memory < MIN_MEMORY {
            return usage(format!(
                "--memory {}: too small; give at least {}, e.g. --memory 512M",
                fmt_mib(cli.memory),
                fmt_mib(MIN_MEMORY)
            ));
        }
        if cli.memory > MAX_MEMORY {
            return usage(format!(
                "--memory {}: too large; iovmm supports up to {}",
                fmt_mib(cli.memory),
                fmt_mib(MAX_MEMORY)
            ));
        }
        if !cli.memory.is_multiple_of(1 << 20) {
            return usage("--memory: give a whole number of MiB, e.g. --memory 512M");
        }
        let disks = cli
            .disk
            .iter()
            .map(open_disk)
            .collect::<Result<Vec<_>, _>>()?;
        if disks.len() > 16 {
            return usage("--disk: at most 16 disks are supported");
        }
        for (flag, out) in [
            ("--serial", Some(&cli.serial)),
            ("--console", cli.console.as_ref()),
        ] {
            if let Some(Output::File(p)) = out
                && let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty())
                && !dir.is_dir()
            {
                return usage(format!(
                    "{flag} file={}: directory {} does not exist",
                    p.display(),
                    dir.display()
                ));
            }
        }
        if let Output::File(p) = &cli.serial
            && cli.console.as_ref() == Some(&cli.serial)
        {
            return usage(format!(
                "--serial and --console both write to {}; give them different files",
                p.display()
            ));
        }
        Ok(Self {
            kernel: cli.kernel,
            initrd: cli.initrd,
            cmdline: cli.cmdline,
            memory: cli.memory,
            cpus: cli.cpus,
            serial: cli.serial,
            console: cli.console,
            disks,
            rng: cli.rng,
            iommu: cli.iommu,
            iommu_trace: cli.iommu_trace,
            timeout: cli.timeout,
            cpu: cli.cpu,
            boot_entry: cli.boot_entry,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn tmpfile(name: &str, len: u64) -> PathBuf {
        let p = std::env::temp_dir().join(format!("iovmm-config-{}-{name}", std::process::id()));
        let f = File::create(&p).unwrap();
        f.set_len(len).unwrap();
        p
    }

    fn parse(args: &[&str]) -> Result<VmConfig, UsageError> {
        let mut full = vec!["iovmm"];
        full.extend_from_slice(args);
        VmConfig::from_cli(Cli::try_parse_from(full).unwrap())
    }

    #[test]
    fn missing_kernel_names_the_flag() {
        let err = parse(&["--kernel", "/nonexistent/vmlinux"]).unwrap_err();
        assert!(err.0.starts_with("--kernel /nonexistent/vmlinux"), "{err}");
    }

    #[test]
    fn memory_bounds() {
        let k = tmpfile("k1", 4096);
        let k = k.to_str().unwrap();
        assert!(
            parse(&["--kernel", k, "--memory", "8M"])
                .unwrap_err()
                .0
                .contains("too small")
        );
        assert!(
            parse(&["--kernel", k, "--memory", "1000G"])
                .unwrap_err()
                .0
                .contains("too large")
        );
        assert!(
            parse(&["--kernel", k, "--memory", "65537K"])
                .unwrap_err()
                .0
                .contains("whole number")
        );
        assert_eq!(
            parse(&["--kernel", k, "--memory", "64M"]).unwrap().memory,
            64 << 20
        );
    }

    #[test]
    fn disk_images_must_be_sector_multiples() {
        let k = tmpfile("k2", 4096);
        let bad = tmpfile("bad.img", 1000);
        let good = tmpfile("good.img", 1 << 20);
        let err = parse(&[
            "--kernel",
            k.to_str().unwrap(),
            "--disk",
            &format!("path={}", bad.display()),
        ])
        .unwrap_err();
        assert!(err.0.contains("multiple of 512"), "{err}");
        let cfg = parse(&[
            "--kernel",
            k.to_str().unwrap(),
            "--disk",
            &format!("path={},readonly=on", good.display()),
        ])
        .unwrap();
        assert!(cfg.disks[0].readonly);
    }

    #[test]
    fn serial_and_console_cannot_share_a_file() {
        let k = tmpfile("k3", 4096);
        let err = parse(&[
            "--kernel",
            k.to_str().unwrap(),
            "--serial",
            "file=/tmp/x.log",
            "--console",
            "file=/tmp/x.log",
        ])
        .unwrap_err();
        assert!(err.0.contains("different files"), "{err}");
    }
}
