//! The command line as a user meets it: help, and one clear line for each mistake.

// A test that cannot set itself up should fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use iovmm_tests::run;

fn iovmm(args: &[&str]) -> iovmm_tests::RunResult {
    run(
        std::path::Path::new(env!("CARGO_BIN_EXE_iovmm")),
        args,
        Duration::from_secs(30),
    )
}

#[test]
fn help_explains_every_flag_with_an_example() {
    let r = iovmm(&["--help"]);
    assert_eq!(r.status, Some(0), "{}", r.transcript());
    for flag in [
        "--kernel",
        "--initrd",
        "--cmdline",
        "--memory",
        "--cpus",
        "--serial",
        "--console",
        "--disk",
        "--rng",
        "--iommu",
        "--timeout",
        "--cpu",
        "--log-level",
    ] {
        assert!(r.stdout.contains(flag), "--help does not mention {flag}");
    }
    assert!(r.stdout.contains("Exit status"), "{}", r.stdout);
    assert!(r.stdout.matches("Example").count() >= 8, "{}", r.stdout);
}

#[test]
fn bad_values_name_the_flag_and_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["--kernel", "/x", "--memory", "lots"], "--memory"),
        (&["--kernel", "/x", "--cpus", "0"], "--cpus"),
        (&["--kernel", "/x", "--serial", "tty"], "--serial"),
        (&["--kernel", "/x", "--disk", "readonly=on"], "--disk"),
        (
            &["--kernel", "/x", "--iommu", "intel,aw-bits=57"],
            "--iommu",
        ),
        (&["--kernel", "/x", "--timeout", "-3"], "--timeout"),
        (&["--kernel", "/nonexistent/vmlinux"], "--kernel"),
        (&[], "--kernel"),
    ];
    for (args, flag) in cases {
        let r = iovmm(args);
        assert_eq!(r.status, Some(2), "{args:?}: {}", r.transcript());
        assert!(
            r.stderr.contains(flag),
            "{args:?} should name {flag}: {}",
            r.stderr
        );
        assert!(
            r.stdout.is_empty(),
            "{args:?} printed to stdout: {}",
            r.stdout
        );
    }
}

#[test]
fn memory_too_small_says_the_minimum() {
    let kernel = iovmm_tests::guest("hello");
    let r = iovmm(&["--kernel", kernel.to_str().unwrap(), "--memory", "4M"]);
    assert_eq!(r.status, Some(2), "{}", r.transcript());
    assert!(r.stderr.contains("at least 16M"), "{}", r.stderr);
}
