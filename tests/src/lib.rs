//! The test harness: runs the `iovmm` binary on micro-guests and on the test kernel, with a
//! timeout, and hands back its exit status, console and diagnostics.
//!
//! Integration tests live in `tests/integration/` and are compiled as tests of the `iovmm`
//! package (so Cargo builds the binary and tells them where it is).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

mod kernel;
pub mod linux;

pub use kernel::{
    Disks, KernelArtifacts, kernel_artifacts, kernel_required, make_disks, superblock_mounts,
};

/// The path of a micro-guest built from `tests/guests/<name>.c`.
pub fn guest(name: &str) -> PathBuf {
    Path::new(env!("IOVMM_GUEST_DIR")).join(format!("{name}.elf"))
}

/// What one run of iovmm produced.
#[derive(Debug)]
pub struct RunResult {
    /// Exit status (None: killed by a signal).
    pub status: Option<i32>,
    /// Everything the guest printed on stdout (serial and/or console on stdio).
    pub stdout: String,
    /// iovmm's diagnostics.
    pub stderr: String,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
}

impl RunResult {
    /// stdout and stderr, for assertion messages.
    pub fn transcript(&self) -> String {
        format!(
            "status {:?} after {:.1}s\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.elapsed.as_secs_f64(),
            self.stdout,
            self.stderr
        )
    }
}

/// Runs `bin` with `args`, killing it after `limit` (the harness's own safety net; tests pass
/// `--timeout` to iovmm for the behaviour under test).
pub fn run(bin: &Path, args: &[&str], limit: Duration) -> RunResult {
    let start = Instant::now();
    let child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            return RunResult {
                status: None,
                stdout: String::new(),
                stderr: format!("cannot start {}: {e}", bin.display()),
                elapsed: start.elapsed(),
            };
        }
    };
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            // SAFETY: kill with signal 0 only checks that the process exists.
            if unsafe { libc::kill(pid as i32, 0) } != 0 {
                return;
            }
        }
        // SAFETY: sending SIGKILL to our own child.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    });
    let output = child.wait_with_output();
    let _ = watchdog.join();
    match output {
        Ok(out) => RunResult {
            status: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: start.elapsed(),
        },
        Err(e) => RunResult {
            status: None,
            stdout: String::new(),
            stderr: format!("waiting for iovmm failed: {e}"),
            elapsed: start.elapsed(),
        },
    }
}

static SLOW_GUESTS: Mutex<()> = Mutex::new(());

/// Serialises Linux boots: each keeps a host core busy for minutes, and two at once on a
/// two-core machine only make both slower.
pub fn one_linux_guest_at_a_time() -> MutexGuard<'static, ()> {
    SLOW_GUESTS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fresh scratch directory for one test.
pub fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("iovmm-test-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::create_dir_all(&dir);
    dir
}
