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
    /// Memory BAR `bar` now decodes at `new` instead of `old` (None: not decoded, because memory
    /// decode is off). Called by the bus after a configuration write that moved a BAR or
    /// switched memory decode, so that a function can follow with what it registered outside
    /// the bus (the virtio transport's notification ioeventfds).
    fn bar_relocated(&mut self, _bar: usize, _old: Option<u64>, _new: Option<u64>) {}
}
