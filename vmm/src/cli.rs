//! The command line: what a user types, parsed and checked by clap. Each value parser turns a bad
//! value into one line that names the fix; `config.rs` then checks the combination.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

const AFTER_HELP: &str = "\
Examples:
  Boot a kernel with its console on the terminal:
    iovmm --kernel bzImage --cmdline 'console=ttyS0' --memory 1G --cpus 2
  CI: boot a test kernel from a root disk, keep the log, fail after 10 minutes:
    iovmm --kernel vmlinux --disk path=root.ext4 --cmdline 'console=ttyS0 root=/dev/vda rw panic=-1' \\
          --serial file=console.log --timeout 600
  Put every virtio device behind an emulated Intel VT-d:
    iovmm --kernel vmlinux --disk path=root.ext4 --rng --iommu intel,aw-bits=48 \\
          --cmdline 'console=ttyS0 root=/dev/vda intel_iommu=on'

Exit status:
  0        the guest powered off or rebooted
  N        the guest wrote N to the test-exit port (0xf4)
  1        iovmm could not set up or run the VM (the message says why)
  2        bad command line
  3        the guest crashed (triple fault, or an instruction KVM could not emulate)
  124      --timeout expired
  130      you pressed Ctrl-A x on the serial console";

/// iovmm: a virtual machine monitor on KVM with an emulated IOMMU.
#[derive(Debug, Parser)]
#[command(name = "iovmm", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// Guest kernel: an ELF vmlinux (PVH or 64-bit entry) or a bzImage (its payload is decompressed
    /// on the host when it is gzip, LZ4, zstd or xz). Example: --kernel arch/x86/boot/bzImage
    #[arg(long, value_name = "PATH")]
    pub kernel: PathBuf,

    /// Initial ramdisk, loaded high in guest memory. Keep it uncompressed on hosts without
    /// hardware virtualization: in-guest decompression is slow there. Example: --initrd initrd.cpio
    #[arg(long, value_name = "PATH")]
    pub initrd: Option<PathBuf>,

    /// Kernel command line. Example: --cmdline 'console=ttyS0 root=/dev/vda rw'
    #[arg(long, value_name = "STRING", default_value = "console=ttyS0")]
    pub cmdline: String,

    /// Guest memory, with an optional K, M or G suffix (a plain number means MiB). Example: --memory 2G
    #[arg(long, value_name = "SIZE", default_value = "512M", value_parser = parse_size)]
    pub memory: u64,

    /// Number of vCPUs. Example: --cpus 4
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = parse_cpus, allow_negative_numbers = true)]
    pub cpus: u8,

    /// Where the COM1 serial console goes: stdio (and reads the terminal), file=PATH, or off.
    /// Example: --serial file=console.log
    #[arg(long, value_name = "stdio|file=PATH|off", default_value = "stdio", value_parser = parse_output)]
    pub serial: Output,

    /// Add a virtio console (the guest's hvc0): stdio (default when given without a value),
    /// file=PATH or off. With stdio it, not the serial port, reads the terminal.
    /// Example: --console --cmdline 'console=hvc0'
    #[arg(long, value_name = "stdio|file=PATH|off", num_args = 0..=1,
          default_missing_value = "stdio", value_parser = parse_output)]
    pub console: Option<Output>,

    /// Add a virtio block device backed by a raw image; repeat for more disks (vda, vdb, ...).
    /// Example: --disk path=root.ext4 --disk path=data.img,readonly=on
    #[arg(long, value_name = "path=FILE[,readonly=on]", value_parser = parse_disk)]
    pub disk: Vec<DiskSpec>,

    /// Add a virtio entropy device (hwrng in the guest).
    #[arg(long)]
    pub rng: bool,

    /// Put an emulated IOMMU in front of every PCI device's DMA and publish it in ACPI.
    /// Options: aw-bits=39|48 (default 48), caching-mode=on|off (default off), pt=on|off
    /// (pass-through support, default on). Example: --iommu intel,aw-bits=39,caching-mode=on
    #[arg(long, value_name = "intel[,OPTIONS]", value_parser = parse_iommu)]
    pub iommu: Option<IommuSpec>,

    /// Write one line per IOMMU event (register write, command, invalidation, queued
    /// descriptor, translation, fault) to FILE, and the unit's state (registers, root and
    /// context entries) when the VM stops. For debugging guest IOMMU drivers; needs --iommu.
    /// Example: --iommu intel --iommu-trace vtd.trace
    #[arg(long, value_name = "FILE")]
    pub iommu_trace: Option<PathBuf>,

    /// Stop the guest after this many seconds and exit with status 124. Example: --timeout 600
    #[arg(long, value_name = "SECONDS", value_parser = parse_timeout, allow_negative_numbers = true)]
    pub timeout: Option<u64>,

    /// CPU model. auto: on hosts without VT-x/AMD-V (where KVM emulates guest kernel code), hide
    /// the instruction-set extensions the host cannot emulate and tell the kernel so on its
    /// command line; elsewhere pass the host CPU. host: never add anything. compat: always hide them.
    #[arg(long, value_name = "MODEL", default_value = "auto")]
    pub cpu: CpuChoice,

    /// How to enter an ELF vmlinux that has a PVH note: auto (PVH where it works), pvh, or linux64
    /// (the 64-bit Linux boot protocol).
    #[arg(long, value_name = "ENTRY", default_value = "auto")]
    pub boot_entry: BootEntryChoice,

    /// Diagnostics on stderr: error, warn, info, debug or trace.
    #[arg(long, value_name = "LEVEL", default_value = "info", value_parser = parse_log_level)]
    pub log_level: log::LevelFilter,
}

/// Where a console's output goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// The terminal.
    Stdio,
    /// A file (truncated).
    File(PathBuf),
    /// Nowhere.
    Off,
}

/// One `--disk`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskSpec {
    /// Backing file.
    pub path: PathBuf,
    /// Read-only for the guest.
    pub readonly: bool,
}

/// `--iommu`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IommuSpec {
    /// Address width: 39 or 48.
    pub aw_bits: u8,
    /// CAP.CM.
    pub caching_mode: bool,
    /// ECAP.PT.
    pub pass_through: bool,
}

/// `--cpu`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CpuChoice {
    /// Compat where the host has no hardware virtualization.
    Auto,
    /// The host's CPU, nothing added.
    Host,
    /// Always hide the extensions and add the kernel parameters.
    Compat,
}

/// `--boot-entry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BootEntryChoice {
    /// PVH if the kernel has the note.
    Auto,
    /// PVH (fails if the kernel has no PVH note).
    Pvh,
    /// The 64-bit Linux boot protocol.
    Linux64,
}

/// Parses `512M`, `2G`, `65536K` or `512` (MiB).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let hint = || {
        format!("'{s}' is not a size: use a number with an optional K, M or G suffix, e.g. 512M")
    };
    let t = s.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 10),
        Some((i, 'M' | 'm')) => (&t[..i], 20),
        Some((i, 'G' | 'g')) => (&t[..i], 30),
        _ => (t, 20),
    };
    let n: u64 = digits.parse().map_err(|_| hint())?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("'{s}' is too large"))
}

fn parse_cpus(s: &str) -> Result<u8, String> {
    match s.parse::<u8>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "'{s}' is not a vCPU count: use a number from 1 to 255, e.g. --cpus 2"
        )),
    }
}

fn parse_log_level(s: &str) -> Result<log::LevelFilter, String> {
    match s.parse::<log::LevelFilter>() {
        Ok(l) if l != log::LevelFilter::Off => Ok(l),
        _ => Err(format!(
            "'{s}' is not a log level: use error, warn, info, debug or trace"
        )),
    }
}

fn parse_timeout(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "'{s}' is not a timeout: use whole seconds, at least 1, e.g. --timeout 600"
        )),
    }
}

fn parse_output(s: &str) -> Result<Output, String> {
    match s {
        "stdio" => Ok(Output::Stdio),
        "off" => Ok(Output::Off),
        _ => match s.strip_prefix("file=") {
            Some(p) if !p.is_empty() => Ok(Output::File(PathBuf::from(p))),
            _ => Err(format!(
                "'{s}' is not an output: use stdio, off or file=PATH, e.g. file=console.log"
            )),
        },
    }
}

fn parse_on_off(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(format!("'{key}={value}': use {key}=on or {key}=off")),
    }
}

fn parse_disk(s: &str) -> Result<DiskSpec, String> {
    let mut path = None;
    let mut readonly = false;
    for part in s.split(',') {
        match part.split_once('=') {
            Some(("path", p)) if !p.is_empty() => path = Some(PathBuf::from(p)),
            Some(("readonly", v)) => readonly = parse_on_off("readonly", v)?,
            _ => {
                return Err(format!(
                    "'{part}' is not a disk option: use path=FILE[,readonly=on], e.g. path=root.ext4"
                ));
            }
        }
    }
    let path =
        path.ok_or_else(|| format!("'{s}' names no file: use path=FILE, e.g. path=root.ext4"))?;
    Ok(DiskSpec { path, readonly })
}

fn parse_iommu(s: &str) -> Result<IommuSpec, String> {
    let mut parts = s.split(',');
    match parts.next() {
        Some("intel") => {}
        Some("amd") => return Err("AMD-Vi is not implemented yet: use --iommu intel".into()),
        other => {
            return Err(format!(
                "'{}' is not an IOMMU model: use intel, e.g. --iommu intel,aw-bits=48",
                other.unwrap_or_default()
            ));
        }
    }
    let mut spec = IommuSpec {
        aw_bits: 48,
        caching_mode: false,
        pass_through: true,
    };
    for part in parts {
        match part.split_once('=') {
            Some(("aw-bits", "39")) => spec.aw_bits = 39,
            Some(("aw-bits", "48")) => spec.aw_bits = 48,
            Some(("aw-bits", v)) => {
                return Err(format!(
                    "'aw-bits={v}': VT-d supports aw-bits=39 or aw-bits=48"
                ));
            }
            Some(("caching-mode", v)) => spec.caching_mode = parse_on_off("caching-mode", v)?,
            Some(("pt", v)) => spec.pass_through = parse_on_off("pt", v)?,
            _ => {
                return Err(format!(
                    "'{part}' is not an IOMMU option: use aw-bits=39|48, caching-mode=on|off, pt=on|off"
                ));
            }
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("64k").unwrap(), 64 << 10);
        assert_eq!(parse_size("256").unwrap(), 256 << 20);
        assert!(parse_size("12X").unwrap_err().contains("512M"));
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999G").is_err());
    }

    #[test]
    fn outputs() {
        assert_eq!(parse_output("stdio").unwrap(), Output::Stdio);
        assert_eq!(parse_output("off").unwrap(), Output::Off);
        assert_eq!(
            parse_output("file=/tmp/x").unwrap(),
            Output::File("/tmp/x".into())
        );
        assert!(parse_output("file=").is_err());
        assert!(parse_output("tty").is_err());
    }

    #[test]
    fn disks() {
        let d = parse_disk("path=a.img,readonly=on").unwrap();
        assert_eq!((d.path, d.readonly), ("a.img".into(), true));
        assert!(!parse_disk("path=a.img").unwrap().readonly);
        assert!(parse_disk("readonly=on").unwrap_err().contains("path=FILE"));
        assert!(parse_disk("path=a,ro=1").unwrap_err().contains("ro=1"));
        assert!(parse_disk("path=a,readonly=maybe").is_err());
    }

    #[test]
    fn iommu_options() {
        let s = parse_iommu("intel").unwrap();
        assert_eq!(
            (s.aw_bits, s.caching_mode, s.pass_through),
            (48, false, true)
        );
        let s = parse_iommu("intel,aw-bits=39,caching-mode=on,pt=off").unwrap();
        assert_eq!(
            (s.aw_bits, s.caching_mode, s.pass_through),
            (39, true, false)
        );
        assert!(parse_iommu("intel,aw-bits=57").unwrap_err().contains("39"));
        assert!(parse_iommu("amd").unwrap_err().contains("not implemented"));
        assert!(parse_iommu("virtio").is_err());
        assert!(parse_iommu("intel,foo=1").is_err());
    }

    #[test]
    fn the_whole_command_line_parses() {
        let cli = Cli::try_parse_from([
            "iovmm",
            "--kernel",
            "k",
            "--memory",
            "1G",
            "--cpus",
            "2",
            "--disk",
            "path=a",
            "--disk",
            "path=b,readonly=on",
            "--console",
            "--rng",
            "--timeout",
            "5",
        ])
        .unwrap();
        assert_eq!(cli.memory, 1 << 30);
        assert_eq!(cli.cpus, 2);
        assert_eq!(cli.disk.len(), 2);
        assert_eq!(cli.console, Some(Output::Stdio));
        assert_eq!(cli.timeout, Some(5));
        assert_eq!(cli.serial, Output::Stdio);
    }

    #[test]
    fn errors_name_the_flag() {
        let err = Cli::try_parse_from(["iovmm", "--kernel", "k", "--cpus", "0"]).unwrap_err();
        assert!(err.to_string().contains("--cpus"), "{err}");
        let err = Cli::try_parse_from(["iovmm"]).unwrap_err();
        assert!(err.to_string().contains("--kernel"), "{err}");
    }
}
