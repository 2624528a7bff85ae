//! The host bridge at 00:00.0. It only identifies the root complex (like q35's MCH); the
//! bridge's real work — which translator every function's DMA goes through — is the
//! `translator` argument of [`crate::PciBus::new`].

use crate::config::{ConfigSpace, Identity};
use crate::device::PciDevice;

/// The host bridge at 00:00.0: identity only (Intel, class "host bridge").
#[derive(Debug)]
pub struct HostBridge {
    config: ConfigSpace,
}

impl Default for HostBridge {
    fn default() -> Self {
        Self {
            config: ConfigSpace::new(Identity {
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
