//! The legacy platform devices on the port I/O bus: the COM1 UART, the i8042 reset line, the CMOS
//! clock, the ACPI fixed-hardware block, the POST port and the test-exit port.
//!
//! Several of them end the guest's life (power-off, reset, the test-exit value); they tell the
//! VMM through a [`StopHandle`] and never touch vCPUs themselves.

mod acpi_pm;
mod cmos;
mod i8042;
mod post;
mod serial;
mod test_exit;

use std::fmt;

pub use acpi_pm::AcpiPmBlock;
pub use cmos::Cmos;
pub use i8042::ResetController;
pub use post::PostCode;
pub use serial::{EventFdTrigger, SerialPort};
pub use test_exit::TestExit;

/// Why the guest wants the VMM to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopRequest {
    /// ACPI power-off (S5).
    PowerOff,
    /// A reset request; the string says through which device.
    Reset(&'static str),
    /// The guest wrote this value to the test-exit port.
    TestExit(u8),
}

impl fmt::Display for StopRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopRequest::PowerOff => write!(f, "guest powered off (ACPI S5)"),
            StopRequest::Reset(via) => write!(f, "guest reset the machine ({via})"),
            StopRequest::TestExit(v) => write!(f, "guest wrote {v} to the test-exit port"),
        }
    }
}

/// How a device asks the VMM to stop the guest. The first request wins.
pub trait StopHandle: Send + Sync + fmt::Debug {
    /// Asks the VMM to stop the guest for `request`.
    fn request_stop(&self, request: StopRequest);
}
