//! What the bus needs from a PCI function.

use crate::config::ConfigSpace;

/// A function on the bus. Offsets and sizes come from the guest: implementations must treat
/// them as hostile (no panics, out-of-range reads all-ones or zero, writes dropped).
pub trait PciDevice: Send {
    /// The function's configuration space (for BAR decoding by the bus).
    fn config(&self) -> &ConfigSpace;
    /// A configuration read.
    fn config_read(&mut self, offset: usize, data: &mut [u8]) {
        self.config().read(offset, data);
    }
    /// A configuration write.
    fn config_write(&mut self, offset: usize, data: &[u8]);
    /// A read of BAR `bar` at `offset` (the bus found the BAR that decodes the address).
    fn bar_read(&mut self, bar: usize, offset: u64, data: &mut [u8]);
    /// A write of BAR `bar` at `offset`.
    fn bar_write(&mut self, bar: usize, offset: u64, data: &[u8]);
}

/// The host bridge at 00:00.0: identity only (Intel, class "host bridge").
#[derive(Debug)]
pub struct HostBridge {
    config: ConfigSpace,
}

impl Default for HostBridge {
    fn default() -> Self {
        Self {
            config: ConfigSpace::new(crate::config::Identity {
                vendor: 0x8086,
                device: 0x29c0,
                class: 0x06_00_00,
                ..Default::default()
            }),
        }
    }
}

impl PciDevice for HostBridge {
    fn config(&self) -> &ConfigSpace {
        &self.config
    }
    fn config_write(&mut self, offset: usize, data: &[u8]) {
        self.config.write(offset, data);
    }
    fn bar_read(&mut self, _bar: usize, _offset: u64, data: &mut [u8]) {
        data.fill(0xff);
    }
    fn bar_write(&mut self, _bar: usize, _offset: u64, _data: &[u8]) {}
}
