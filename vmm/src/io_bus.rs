//! The port I/O and MMIO buses the vCPUs dispatch their exits to (vm-device's `IoManager`).
//! Accesses nobody claims read all-ones and are dropped, as on real hardware; each such address
//! is logged once at debug level.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use vm_device::bus::{MmioAddress, MmioRange, PioAddress, PioRange};
use vm_device::device_manager::{IoManager, MmioManager, PioManager};
use vm_device::{DeviceMmio, DevicePio};

/// Both buses, frozen once the VM is built (vCPUs only read them).
#[derive(Default)]
pub struct IoBus {
    manager: IoManager,
    unclaimed: Mutex<HashSet<(bool, u64)>>,
}

impl std::fmt::Debug for IoBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoBus").finish_non_exhaustive()
    }
}

impl IoBus {
    /// Empty buses.
    pub fn new() -> Self {
        Self::default()
    }

    /// Claims ports `base..base + len` for `device`.
    pub fn add_pio(
        &mut self,
        base: u16,
        len: u16,
        device: Arc<dyn DevicePio + Send + Sync>,
    ) -> anyhow::Result<()> {
        let range = PioRange::new(PioAddress(base), len)
            .map_err(|e| anyhow::anyhow!("port range {base:#x}+{len:#x}: {e:?}"))?;
        self.manager
            .register_pio(range, device)
            .map_err(|e| anyhow::anyhow!("port range {base:#x}+{len:#x} is taken: {e:?}"))
    }

    /// Claims `base..base + len` of the physical address space for `device`.
    pub fn add_mmio(
        &mut self,
        base: u64,
        len: u64,
        device: Arc<dyn DeviceMmio + Send + Sync>,
    ) -> anyhow::Result<()> {
        let range = MmioRange::new(MmioAddress(base), len)
            .map_err(|e| anyhow::anyhow!("MMIO range {base:#x}+{len:#x}: {e:?}"))?;
        self.manager
            .register_mmio(range, device)
            .map_err(|e| anyhow::anyhow!("MMIO range {base:#x}+{len:#x} is taken: {e:?}"))
    }

    fn note_unclaimed(&self, pio: bool, addr: u64, write: bool, len: usize) {
        let mut seen = self
            .unclaimed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Bounded: a guest scanning the address space must not grow this forever.
        if seen.len() < 4096 && seen.insert((pio, addr)) {
            let what = if pio { "port" } else { "MMIO address" };
            let dir = if write { "write to" } else { "read from" };
            log::debug!("unclaimed {len}-byte {dir} {what} {addr:#x}");
        }
    }

    /// A vCPU read a port.
    pub fn pio_read(&self, port: u16, data: &mut [u8]) {
        if self.manager.pio_read(PioAddress(port), data).is_err() {
            data.fill(0xff);
            self.note_unclaimed(true, u64::from(port), false, data.len());
        }
    }

    /// A vCPU wrote a port.
    pub fn pio_write(&self, port: u16, data: &[u8]) {
        if self.manager.pio_write(PioAddress(port), data).is_err() {
            self.note_unclaimed(true, u64::from(port), true, data.len());
        }
    }

    /// A vCPU read MMIO.
    pub fn mmio_read(&self, addr: u64, data: &mut [u8]) {
        if self.manager.mmio_read(MmioAddress(addr), data).is_err() {
            data.fill(0xff);
            self.note_unclaimed(false, addr, false, data.len());
        }
    }

    /// A vCPU wrote MMIO.
    pub fn mmio_write(&self, addr: u64, data: &[u8]) {
        if self.manager.mmio_write(MmioAddress(addr), data).is_err() {
            self.note_unclaimed(false, addr, true, data.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use vm_device::MutDevicePio;
    use vm_device::bus::PioAddressOffset;

    use super::*;

    #[derive(Default)]
    struct Latch(Vec<(u16, Vec<u8>)>);

    impl MutDevicePio for Latch {
        fn pio_read(&mut self, _b: PioAddress, offset: PioAddressOffset, data: &mut [u8]) {
            data.fill(offset as u8);
        }
        fn pio_write(&mut self, _b: PioAddress, offset: PioAddressOffset, data: &[u8]) {
            self.0.push((offset, data.to_vec()));
        }
    }

    #[test]
    fn claimed_ports_reach_the_device_with_offsets() {
        let mut bus = IoBus::new();
        let dev = Arc::new(Mutex::new(Latch::default()));
        bus.add_pio(0x600, 0x10, dev.clone()).unwrap();
        bus.pio_write(0x604, &[1, 2]);
        let mut b = [0u8; 2];
        bus.pio_read(0x60c, &mut b);
        assert_eq!(b, [0xc, 0xc]);
        assert_eq!(dev.lock().unwrap().0, vec![(4, vec![1, 2])]);
    }

    #[test]
    fn unclaimed_reads_are_all_ones() {
        let bus = IoBus::new();
        let mut b = [0u8; 4];
        bus.pio_read(0x2f8, &mut b);
        assert_eq!(b, [0xff; 4]);
        bus.mmio_read(0xdead_0000, &mut b);
        assert_eq!(b, [0xff; 4]);
        bus.mmio_write(0xdead_0000, &b);
    }

    #[test]
    fn overlapping_claims_are_refused() {
        let mut bus = IoBus::new();
        bus.add_pio(0x70, 2, Arc::new(Mutex::new(Latch::default())))
            .unwrap();
        assert!(
            bus.add_pio(0x71, 2, Arc::new(Mutex::new(Latch::default())))
                .is_err()
        );
    }
}
