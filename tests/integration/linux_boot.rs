//! Boots the test kernel (tests/scripts/build-kernel.sh) and checks from its console log that
//! the platform works: ACPI found, every vCPU up, init started.
//!
//! On hosts without VT-x/AMD-V a boot takes minutes (kernel code is emulated) and guest user
//! space cannot make system calls, so the test initramfs's /init dies on its first one and the
//! kernel panics and reboots (`panic=-1`). Reaching `Run /init` is the success criterion there;
//! on a host with hardware virtualization /init must print and power off.

use std::path::Path;
use std::time::Duration;

use iovmm_tests::kernel::{kernel_artifacts, kernel_required};
use iovmm_tests::{RunResult, one_linux_guest_at_a_time, run};

const RUN_INIT: &str = "Run /init as init process";
const INIT_SPOKE: &str = "iovmm-init: user space runs";
/// The panic that follows when /init cannot make system calls (see the module comment).
const INIT_KILLED: &str = "Kernel panic - not syncing: Attempted to kill init!";

fn boot(kernel: &Path, initramfs: &Path, cpus: &str) -> RunResult {
    let _serial = one_linux_guest_at_a_time();
    run(
        Path::new(env!("CARGO_BIN_EXE_iovmm")),
        &[
            "--kernel",
            kernel.to_str().unwrap(),
            "--initrd",
            initramfs.to_str().unwrap(),
            "--cpus",
            cpus,
            "--memory",
            "256M",
            "--cmdline",
            "console=ttyS0 panic=-1",
            "--timeout",
            "600",
        ],
        Duration::from_secs(660),
    )
}

fn host_has_hardware_virtualization() -> bool {
    !Path::new("/sys/module/kvm_pvm").exists()
        && std::fs::read_to_string("/proc/cpuinfo")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("flags"))
            .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"))
}

/// The log up to `RUN_INIT` has no panic or oops, init started, and what followed is one of
/// the two endings the module comment allows.
fn assert_reached_init(r: &RunResult) {
    let log = &r.stdout;
    let Some(init_at) = log.find(RUN_INIT) else {
        panic!("the kernel never started init\n{}", r.transcript());
    };
    let before = &log[..init_at];
    for bad in ["Kernel panic", "Oops", "BUG:", "general protection fault"] {
        assert!(
            !before.contains(bad),
            "'{bad}' before init\n{}",
            r.transcript()
        );
    }
    assert_eq!(
        r.status,
        Some(0),
        "reboot or power-off ends iovmm with 0\n{}",
        r.transcript()
    );
    let after = &log[init_at..];
    if host_has_hardware_virtualization() {
        assert!(
            after.contains(INIT_SPOKE),
            "/init did not run\n{}",
            r.transcript()
        );
    } else {
        assert!(
            after.contains(INIT_SPOKE) || after.contains(INIT_KILLED),
            "unexpected ending after init\n{}",
            r.transcript()
        );
    }
}

fn artifacts_or_skip() -> Option<iovmm_tests::kernel::KernelArtifacts> {
    let found = kernel_artifacts();
    assert!(
        found.is_some() || !kernel_required(),
        "IOVMM_REQUIRE_KERNEL is set but the test kernel is missing"
    );
    found
}

#[test]
fn elf_vmlinux_with_two_cpus_finds_acpi_brings_up_both_cpus_and_starts_init() {
    let Some(k) = artifacts_or_skip() else { return };
    let r = boot(&k.vmlinux, &k.initramfs, "2");
    let log = &r.stdout;
    for line in [
        "ACPI: RSDP 0x00000000000E0000",
        "ACPI: XSDT 0x",
        "ACPI: FACP 0x",
        "ACPI: DSDT 0x",
        "ACPI: APIC 0x",
        "ACPI: Using ACPI (MADT) for SMP configuration information",
        "ACPI: Interpreter enabled",
        "smp: Brought up 1 node, 2 CPUs",
        "serial8250: ttyS0 at I/O 0x3f8 (irq = 4, base_baud = 115200) is a 16550A",
    ] {
        assert!(log.contains(line), "missing '{line}'\n{}", r.transcript());
    }
    assert!(r.stderr.contains("PVH entry"), "{}", r.transcript());
    assert_reached_init(&r);
}

#[test]
fn bzimage_payload_is_decompressed_on_the_host_and_boots_to_init() {
    let Some(k) = artifacts_or_skip() else { return };
    let r = boot(&k.bzimage, &k.initramfs, "1");
    assert!(
        r.stderr.contains("decompressed on the host"),
        "the xz payload should be unpacked by iovmm\n{}",
        r.transcript()
    );
    assert!(
        r.stdout.contains("smp: Brought up 1 node, 1 CPU"),
        "{}",
        r.transcript()
    );
    assert_reached_init(&r);
}
