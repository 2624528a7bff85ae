//! Boots the test kernel (tests/scripts/build-kernel.sh) from its initramfs and checks from the
//! console log that the platform works: ACPI found, every vCPU up, init started. See
//! `iovmm_tests::linux` for what counts as reaching init on hosts without VT-x/AMD-V.

// A test that cannot set itself up should fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use iovmm_tests::RunResult;
use iovmm_tests::linux::{artifacts_or_skip, assert_reached_init, boot_linux};

fn boot(kernel: &Path, initramfs: &Path, cpus: &str) -> RunResult {
    boot_linux(
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
    )
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
    assert_eq!(log.matches("ACPI: FACS").count(), 1, "{}", r.transcript());
    assert!(r.stderr.contains("PVH entry"), "{}", r.transcript());
    assert_reached_init(log, &r);
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
    assert_reached_init(&r.stdout, &r);
}
