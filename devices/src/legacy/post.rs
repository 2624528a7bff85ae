//! Port 0x80, the POST diagnostic port. Linux writes to it as an I/O delay; we keep the last
//! code for diagnostics and otherwise ignore it.

use vm_device::MutDevicePio;
use vm_device::bus::{PioAddress, PioAddressOffset};

/// The POST code register.
#[derive(Debug, Default)]
pub struct PostCode {
    last: u8,
}

impl PostCode {
    /// The last value written.
    pub fn last(&self) -> u8 {
        self.last
    }
}

impl MutDevicePio for PostCode {
    fn pio_read(&mut self, _base: PioAddress, _offset: PioAddressOffset, data: &mut [u8]) {
        data.fill(self.last);
    }

    fn pio_write(&mut self, _base: PioAddress, _offset: PioAddressOffset, data: &[u8]) {
        if let Some(&code) = data.first() {
            self.last = code;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_code() {
        let mut post = PostCode::default();
        post.pio_write(PioAddress(0x80), 0, &[0x42]);
        let mut b = [0u8];
        post.pio_read(PioAddress(0x80), 0, &mut b);
        assert_eq!((b[0], post.last()), (0x42, 0x42));
    }
}
