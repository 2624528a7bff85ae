//! Booting the test kernel and judging its console log.
//!
//! On hosts without VT-x/AMD-V a boot takes a minute or more (kernel code is emulated) and guest
//! user space cannot make system calls, so the test /init dies on its first one and the kernel
//! panics and reboots (`panic=-1`). Reaching `Run /init` (or running the root disk's
//! `/sbin/init`) is the success criterion there; on a host with hardware virtualization /init
//! must print its line and power off.

use std::path::Path;
use std::time::Duration;

use crate::kernel::{KernelArtifacts, kernel_artifacts, kernel_required};
use crate::{RunResult, one_linux_guest_at_a_time, run};

/// The line the kernel prints before it executes the initramfs's /init.
pub const RUN_INIT: &str = "Run /init as init process";
/// The line before it executes the root filesystem's /sbin/init.
pub const RUN_SBIN_INIT: &str = "Run /sbin/init as init process";
/// What the test /init prints when user space can make system calls.
pub const INIT_SPOKE: &str = "iovmm-init: user space runs";
/// The panic that follows when /init cannot make system calls.
pub const INIT_KILLED: &str = "Kernel panic - not syncing: Attempted to kill init!";

/// The test kernel, or None when the test should skip (a missing kernel fails the test when
/// `IOVMM_REQUIRE_KERNEL` is set).
pub fn artifacts_or_skip() -> Option<KernelArtifacts> {
    let found = kernel_artifacts();
    assert!(
        found.is_some() || !kernel_required(),
        "IOVMM_REQUIRE_KERNEL is set but the test kernel is missing"
    );
    found
}

/// Same test as the VMM's `--cpu auto`: VT-x/AMD-V present and KVM not the software backend.
pub fn host_has_hardware_virtualization() -> bool {
    !Path::new("/sys/module/kvm_pvm").exists()
        && std::fs::read_to_string("/proc/cpuinfo")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("flags"))
            .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"))
}

/// Runs the iovmm binary `bin` with `args` (one Linux guest at a time), allowing 11 minutes
/// (the tests pass `--timeout 600`).
pub fn boot_linux(bin: &Path, args: &[&str]) -> RunResult {
    let _serial = one_linux_guest_at_a_time();
    run(bin, args, Duration::from_secs(660))
}

/// Checks `log`: no panic or oops before init started, init started, and what followed is one
/// of the endings the module comment allows; iovmm ended with 0.
pub fn assert_reached_init(log: &str, r: &RunResult) {
    let init_at = log.find(RUN_INIT).or_else(|| log.find(RUN_SBIN_INIT));
    assert!(
        init_at.is_some(),
        "the kernel never started init\n{log}\n{}",
        r.transcript()
    );
    let Some(init_at) = init_at else { return };
    let (before, after) = log.split_at(init_at);
    for bad in [
        "Kernel panic",
        "Oops",
        "BUG:",
        "general protection fault",
        "WARNING:",
    ] {
        assert!(
            !before.contains(bad),
            "'{bad}' before init\n{log}\n{}",
            r.transcript()
        );
    }
    assert_eq!(
        r.status,
        Some(0),
        "reboot or power-off ends iovmm with 0\n{}",
        r.transcript()
    );
    let spoke = after.contains(INIT_SPOKE);
    if host_has_hardware_virtualization() {
        assert!(spoke, "/init did not run\n{log}\n{}", r.transcript());
    } else {
        assert!(
            spoke || after.contains(INIT_KILLED),
            "unexpected ending after init\n{log}\n{}",
            r.transcript()
        );
    }
}
