//! Purpose-built guests that run at CPL3 (natively, even on hosts where KVM emulates kernel
//! code) and drive devices directly. Each checks what it sees and reports through the serial
//! port and the test-exit status.

// A test that cannot set itself up should fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use iovmm_tests::{RunResult, guest, run};

fn iovmm(args: &[&str]) -> RunResult {
    run(
        Path::new(env!("CARGO_BIN_EXE_iovmm")),
        args,
        Duration::from_secs(60),
    )
}

#[test]
fn hello_prints_on_serial_and_exits_with_the_status_it_chose() {
    let kernel = guest("hello");
    for status in ["0", "7", "42"] {
        let cmdline = format!("exit={status} marker");
        let r = iovmm(&[
            "--kernel",
            kernel.to_str().unwrap(),
            "--memory",
            "32M",
            "--cmdline",
            &cmdline,
            "--timeout",
            "20",
        ]);
        assert_eq!(
            r.status,
            Some(status.parse().unwrap()),
            "{}",
            r.transcript()
        );
        assert!(
            r.stdout.contains(&format!(
                "hello from a micro-guest: cpl 3, 32 MiB, 1 cpus, cmdline '{cmdline}'"
            )),
            "{}",
            r.transcript()
        );
    }
}

#[test]
fn serial_output_can_go_to_a_file() {
    let dir = iovmm_tests::scratch_dir("serial-file");
    let log = dir.join("console.log");
    let kernel = guest("hello");
    let r = iovmm(&[
        "--kernel",
        kernel.to_str().unwrap(),
        "--serial",
        &format!("file={}", log.display()),
    ]);
    assert_eq!(r.status, Some(0), "{}", r.transcript());
    assert!(r.stdout.is_empty(), "{}", r.transcript());
    let written = std::fs::read_to_string(&log).unwrap();
    assert!(written.contains("hello from a micro-guest"), "{written}");
}
