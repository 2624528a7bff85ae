//! How the VM ends: the first reason to stop wins, wakes the main loop, and decides the exit
//! status (README.md and `--help` list them).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use devices::legacy::{StopHandle, StopRequest};
use vmm_sys_util::eventfd::EventFd;

/// Exit status: iovmm failed.
pub const EXIT_VMM_ERROR: i32 = 1;
/// Exit status: bad command line.
pub const EXIT_USAGE: i32 = 2;
/// Exit status: the guest crashed.
pub const EXIT_GUEST_CRASH: i32 = 3;
/// Exit status: `--timeout` expired.
pub const EXIT_TIMEOUT: i32 = 124;
/// Exit status: the user quit from the console.
pub const EXIT_USER_QUIT: i32 = 130;

/// Why the VM stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The guest asked (power-off, reset, test-exit).
    Guest(StopRequest),
    /// The guest did something that ends a real machine too (triple fault) or that KVM could not
    /// run; the string has the details.
    GuestCrash(String),
    /// `--timeout` expired.
    Timeout(u64),
    /// The user pressed the quit key.
    UserQuit,
    /// iovmm itself failed while running.
    VmmError(String),
}

impl StopReason {
    /// The process exit status for this reason.
    pub fn exit_code(&self) -> i32 {
        match self {
            StopReason::Guest(StopRequest::TestExit(v)) => i32::from(*v),
            StopReason::Guest(_) => 0,
            StopReason::GuestCrash(_) => EXIT_GUEST_CRASH,
            StopReason::Timeout(_) => EXIT_TIMEOUT,
            StopReason::UserQuit => EXIT_USER_QUIT,
            StopReason::VmmError(_) => EXIT_VMM_ERROR,
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Guest(req) => write!(f, "{req}"),
            StopReason::GuestCrash(what) => write!(f, "guest crashed: {what}"),
            StopReason::Timeout(s) => write!(f, "the guest did not stop within {s} s (--timeout)"),
            StopReason::UserQuit => write!(f, "quit from the console (Ctrl-A x)"),
            StopReason::VmmError(what) => write!(f, "iovmm failed: {what}"),
        }
    }
}

/// Shared by vCPU threads, devices and the main loop.
#[derive(Debug)]
pub struct StopState {
    reason: Mutex<Option<StopReason>>,
    stopping: AtomicBool,
    wake: EventFd,
}

impl StopState {
    /// A running VM.
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            reason: Mutex::new(None),
            stopping: AtomicBool::new(false),
            wake: EventFd::new(libc::EFD_NONBLOCK)?,
        })
    }

    /// Records `reason` unless another came first, and wakes the main loop.
    pub fn stop(&self, reason: StopReason) {
        let mut slot = self.reason.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            log::debug!("stop requested: {reason}");
            *slot = Some(reason);
        }
        self.stopping.store(true, Ordering::SeqCst);
        drop(slot);
        let _ = self.wake.write(1);
    }

    /// True once any stop was requested: vCPUs leave their run loops.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// The reason, once stopped.
    pub fn reason(&self) -> Option<StopReason> {
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Becomes readable when a stop is requested (for the event loop).
    pub fn wake_fd(&self) -> &EventFd {
        &self.wake
    }
}

impl StopHandle for StopState {
    fn request_stop(&self, request: StopRequest) {
        self.stop(StopReason::Guest(request));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_reason_wins_and_sets_the_exit_code() {
        let s = StopState::new().unwrap();
        assert!(!s.is_stopping());
        s.request_stop(StopRequest::TestExit(7));
        s.stop(StopReason::Timeout(1));
        assert!(s.is_stopping());
        assert_eq!(s.reason().unwrap().exit_code(), 7);
        assert_eq!(s.wake_fd().read().unwrap(), 2);
    }

    #[test]
    fn exit_codes() {
        assert_eq!(StopReason::Guest(StopRequest::PowerOff).exit_code(), 0);
        assert_eq!(StopReason::Guest(StopRequest::Reset("x")).exit_code(), 0);
        assert_eq!(StopReason::GuestCrash("x".into()).exit_code(), 3);
        assert_eq!(StopReason::Timeout(3).exit_code(), 124);
        assert_eq!(StopReason::VmmError("x".into()).exit_code(), 1);
    }
}
