//! The test-exit port: the value a guest writes becomes iovmm's exit status, unchanged (unlike
//! QEMU's isa-debug-exit, which exits with `(value << 1) | 1`). CI guests use it to report
//! pass/fail without a shutdown path.

use std::sync::Arc;

use vm_device::MutDevicePio;
use vm_device::bus::{PioAddress, PioAddressOffset};

use super::{StopHandle, StopRequest};

/// The test-exit port.
#[derive(Debug)]
pub struct TestExit {
    stop: Arc<dyn StopHandle>,
}

impl TestExit {
    /// A port that reports the written status to `stop`.
    pub fn new(stop: Arc<dyn StopHandle>) -> Self {
        Self { stop }
    }
}

impl MutDevicePio for TestExit {
    fn pio_read(&mut self, _base: PioAddress, _offset: PioAddressOffset, data: &mut [u8]) {
        data.fill(0);
    }

    fn pio_write(&mut self, _base: PioAddress, _offset: PioAddressOffset, data: &[u8]) {
        let mut bytes = [0u8; 4];
        for (dst, src) in bytes.iter_mut().zip(data) {
            *dst = *src;
        }
        let value = u32::from_le_bytes(bytes);
        // Exit statuses are 8 bits; a wider value would be silently truncated by the OS.
        let status = u8::try_from(value).unwrap_or_else(|_| {
            log::warn!("test-exit: value {value:#x} does not fit an exit status; using 255");
            u8::MAX
        });
        self.stop.request_stop(StopRequest::TestExit(status));
    }
}

#[cfg(test)]
mod tests {
    use super::super::i8042::tests::Recorder;
    use super::*;

    #[test]
    fn written_byte_is_the_status_exactly() {
        let rec = Arc::new(Recorder::default());
        let mut dev = TestExit::new(rec.clone());
        dev.pio_write(PioAddress(0xf4), 0, &[0]);
        dev.pio_write(PioAddress(0xf4), 0, &[3]);
        dev.pio_write(PioAddress(0xf4), 0, &[0x2a, 0, 0, 0]);
        dev.pio_write(PioAddress(0xf4), 0, &[0x00, 0x01]);
        assert_eq!(
            *rec.0.lock().unwrap(),
            vec![
                StopRequest::TestExit(0),
                StopRequest::TestExit(3),
                StopRequest::TestExit(42),
                StopRequest::TestExit(255)
            ]
        );
    }
}
