//! The user's terminal and output files: where console bytes go, and raw mode for interactive
//! use (restored on every way out).

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use vmm_sys_util::terminal::Terminal;

use crate::cli::Output;

/// Opens the destination of a console: an unbuffered handle on stdout (so prompts without a
/// newline appear at once), a truncated file, or a sink.
pub fn open_output(out: &Output, flag: &str) -> anyhow::Result<Box<dyn Write + Send>> {
    Ok(match out {
        Output::Stdio => {
            let fd = io::stdout().as_fd().try_clone_to_owned()?;
            Box::new(File::from(fd))
        }
        Output::File(path) => Box::new(
            File::create(path)
                .map_err(|e| anyhow::anyhow!("{flag} file={}: {e}", path.display()))?,
        ),
        Output::Off => Box::new(io::sink()),
    })
}

static RAW_MODE: AtomicBool = AtomicBool::new(false);

/// True if stdin is a terminal.
pub fn stdin_is_tty() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(io::stdin().as_raw_fd()) == 1 }
}

/// Puts the terminal in raw mode so keys reach the guest as typed (Ctrl-C included).
pub fn enter_raw_mode() {
    if io::stdin().lock().set_raw_mode().is_ok() {
        RAW_MODE.store(true, Ordering::SeqCst);
    }
}

/// Restores the terminal if we changed it. Safe to call more than once.
pub fn restore() {
    if RAW_MODE.swap(false, Ordering::SeqCst) {
        let _ = io::stdin().lock().set_canon_mode();
    }
}
