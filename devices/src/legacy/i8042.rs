//! The i8042 keyboard controller, reduced to what a VM needs: its CPU reset line (command 0xfe
//! on port 0x64), which is how Linux reboots when ACPI reset is unavailable.

use std::sync::Arc;

use vm_device::MutDevicePio;
use vm_device::bus::{PioAddress, PioAddressOffset};

use super::{StopHandle, StopRequest};

/// The controller's "pulse reset line" command.
const CMD_RESET_CPU: u8 = 0xfe;

/// Ports 0x60 (data) and 0x64 (status/command), registered as one range of 5 ports.
#[derive(Debug)]
pub struct ResetController {
    stop: Arc<dyn StopHandle>,
}

impl ResetController {
    /// A controller that reports resets to `stop`.
    pub fn new(stop: Arc<dyn StopHandle>) -> Self {
        Self { stop }
    }
}

impl MutDevicePio for ResetController {
    fn pio_read(&mut self, _base: PioAddress, _offset: PioAddressOffset, data: &mut [u8]) {
        // Status 0: output buffer empty (no keyboard data), input buffer empty (ready for a
        // command) — Linux's reboot path waits for the latter before writing 0xfe.
        data.fill(0);
    }

    fn pio_write(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &[u8]) {
        if offset == 4 && data.first() == Some(&CMD_RESET_CPU) {
            self.stop
                .request_stop(StopRequest::Reset("i8042 reset line"));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Debug, Default)]
    pub(crate) struct Recorder(pub Mutex<Vec<StopRequest>>);

    impl StopHandle for Recorder {
        fn request_stop(&self, request: StopRequest) {
            self.0.lock().unwrap().push(request);
        }
    }

    #[test]
    fn command_fe_on_the_command_port_resets() {
        let rec = Arc::new(Recorder::default());
        let mut kbd = ResetController::new(rec.clone());
        kbd.pio_write(PioAddress(0x60), 0, &[CMD_RESET_CPU]);
        assert!(rec.0.lock().unwrap().is_empty(), "data port must not reset");
        kbd.pio_write(PioAddress(0x60), 4, &[0xd1]);
        assert!(rec.0.lock().unwrap().is_empty());
        kbd.pio_write(PioAddress(0x60), 4, &[CMD_RESET_CPU]);
        assert_eq!(
            *rec.0.lock().unwrap(),
            vec![StopRequest::Reset("i8042 reset line")]
        );
    }

    #[test]
    fn status_reads_ready() {
        let mut kbd = ResetController::new(Arc::new(Recorder::default()));
        let mut status = [0xffu8];
        kbd.pio_read(PioAddress(0x60), 4, &mut status);
        assert_eq!(status[0] & 0x3, 0);
    }
}
