//! The root bus (segment 0, bus 0) behind the host bridge: configuration access through
//! 0xCF8/0xCFC and ECAM, BAR allocation from the 32-bit window, MMIO dispatch to the function
//! whose programmed BAR holds an address (with memory decode on), and each function's DMA
//! handle from the bridge's translator.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use iommu::{DmaTranslate, RequesterId};
use resources::layout::{PCI_ECAM_SIZE, PCI_MMIO32_SIZE, PCI_MMIO32_START};
use vm_memory::GuestMemoryMmap;

use crate::Error;
use crate::device::PciDevice;
use crate::dma::{DeviceDma, DmaMemory};
use crate::host_bridge::HostBridge;

/// A function shared between the bus (vCPU threads) and the VMM.
pub type SharedDevice = Arc<Mutex<dyn PciDevice>>;

const CONFIG_ENABLE: u32 = 1 << 31;

/// The root bus.
pub struct PciBus {
    slots: BTreeMap<u8, SharedDevice>,
    config_address: Mutex<u32>,
    next_mmio: u64,
    guest: GuestMemoryMmap,
    translator: Option<Arc<dyn DmaTranslate>>,
}

impl std::fmt::Debug for PciBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PciBus")
            .field("slots", &self.slots.keys().collect::<Vec<_>>())
            .field("translated", &self.translator.is_some())
            .finish()
    }
}

/// Where each memory BAR of `d` decodes now (None: absent, or memory decode off).
fn decoded_bars(d: &dyn PciDevice) -> [Option<u64>; 6] {
    let config = d.config();
    let on = config.memory_enabled();
    std::array::from_fn(|i| {
        config
            .bar_spec(i)
            .and_then(|_| config.bar_address(i))
            .filter(|_| on)
    })
}

fn lock(d: &SharedDevice) -> std::sync::MutexGuard<'_, dyn PciDevice + 'static> {
    d.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PciBus {
    /// A bus with the host bridge at slot 0. Every function's DMA goes through `translator`
    /// (None: guest-physical addresses by identity).
    pub fn new(guest: GuestMemoryMmap, translator: Option<Arc<dyn DmaTranslate>>) -> Self {
        let mut slots: BTreeMap<u8, SharedDevice> = BTreeMap::new();
        slots.insert(0, Arc::new(Mutex::new(HostBridge::default())));
        Self {
            slots,
            config_address: Mutex::new(0),
            next_mmio: PCI_MMIO32_START,
            guest,
            translator,
        }
    }

    /// The next free slot, or an error when all 32 are taken.
    pub fn free_slot(&self) -> Result<u8, Error> {
        (1..32u8)
            .find(|s| !self.slots.contains_key(s))
            .ok_or(Error::BusFull)
    }

    /// The DMA handle of the function at `slot`.
    pub fn dma_memory(&self, slot: u8) -> DmaMemory {
        DeviceDma::memory(
            self.guest.clone(),
            RequesterId::new(0, 0, slot, 0),
            self.translator.clone(),
        )
    }

    /// Whether DMA on this bus is translated.
    pub fn translated(&self) -> bool {
        self.translator.is_some()
    }

    /// Attaches `device` at `slot`, allocating and programming its BARs (all below 4 GiB so
    /// identity-mapped test guests reach them). Returns the BAR addresses by index.
    pub fn attach(&mut self, slot: u8, device: SharedDevice) -> Result<Vec<(usize, u64)>, Error> {
        if slot == 0 || slot >= 32 || self.slots.contains_key(&slot) {
            return Err(Error::SlotTaken(slot));
        }
        let mut placed = Vec::new();
        {
            let mut d = lock(&device);
            let specs: Vec<(usize, u64)> = (0..6)
                .filter_map(|i| d.config().bar_spec(i).map(|s| (i, s.size)))
                .collect();
            for (index, size) in specs {
                let addr = self.next_mmio.div_ceil(size) * size;
                let end = addr.checked_add(size).ok_or(Error::OutOfMmio)?;
                if end > PCI_MMIO32_START + PCI_MMIO32_SIZE {
                    return Err(Error::OutOfMmio);
                }
                self.next_mmio = end;
                // Program it as firmware would: write the address through config space.
                let lo = (addr as u32).to_le_bytes();
                let hi = ((addr >> 32) as u32).to_le_bytes();
                d.config_write(0x10 + 4 * index, &lo);
                if d.config().bar_spec(index).is_some_and(|s| s.is_64) {
                    d.config_write(0x14 + 4 * index, &hi);
                }
                placed.push((index, addr));
            }
        }
        self.slots.insert(slot, device);
        Ok(placed)
    }

    fn function(&self, bus: u8, dev: u8, func: u8) -> Option<&SharedDevice> {
        if bus != 0 || func != 0 {
            return None;
        }
        self.slots.get(&dev)
    }

    fn config_access(
        &self,
        bus: u8,
        dev: u8,
        func: u8,
        reg: usize,
        data: &mut [u8],
        write: Option<&[u8]>,
    ) {
        // Configuration accesses are 1, 2 or 4 bytes, naturally aligned (PCI Local Bus 3.0
        // §3.2.2.3.2; an ECAM access must not cross a dword): anything else reads all-ones and
        // writes nothing.
        let len = write.map_or(data.len(), <[u8]>::len);
        let well_formed = matches!(len, 1 | 2 | 4) && reg.is_multiple_of(len);
        let function = self.function(bus, dev, func).filter(|_| well_formed);
        match (function, write) {
            (Some(d), Some(w)) => {
                let mut d = lock(d);
                let before = decoded_bars(&*d);
                d.config_write(reg, w);
                let after = decoded_bars(&*d);
                for (bar, (old, new)) in before.into_iter().zip(after).enumerate() {
                    if old != new {
                        log::debug!("PCI {dev:02x}.{func}: BAR{bar} {old:x?} -> {new:x?}");
                        d.bar_relocated(bar, old, new);
                    }
                }
            }
            (Some(d), None) => lock(d).config_read(reg, data),
            (None, None) => data.fill(0xff),
            (None, Some(_)) => {}
        }
    }

    /// A port access in 0xCF8..0xCFF (`port` is the offset from 0xCF8).
    pub fn config_io_read(&self, port: u16, data: &mut [u8]) {
        let address = *self
            .config_address
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match port {
            0 if data.len() == 4 => data.copy_from_slice(&address.to_le_bytes()),
            4..=7 if address & CONFIG_ENABLE != 0 => {
                let (bus, dev, func) = (
                    (address >> 16) as u8,
                    ((address >> 11) & 0x1f) as u8,
                    ((address >> 8) & 7) as u8,
                );
                let reg = (address & 0xfc) as usize + usize::from(port - 4);
                self.config_access(bus, dev, func, reg, data, None);
            }
            _ => data.fill(0xff),
        }
    }

    /// A port write in 0xCF8..0xCFF.
    pub fn config_io_write(&self, port: u16, data: &[u8]) {
        let mut address = self
            .config_address
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match port {
            0 if data.len() == 4 => {
                *address = u32::from_le_bytes(data.try_into().unwrap_or_default()) & 0x80ff_fffc;
            }
            4..=7 if *address & CONFIG_ENABLE != 0 => {
                let a = *address;
                drop(address);
                let (bus, dev, func) = (
                    (a >> 16) as u8,
                    ((a >> 11) & 0x1f) as u8,
                    ((a >> 8) & 7) as u8,
                );
                let reg = (a & 0xfc) as usize + usize::from(port - 4);
                self.config_access(bus, dev, func, reg, &mut [], Some(data));
            }
            _ => {}
        }
    }

    fn ecam_decode(offset: u64) -> Option<(u8, u8, u8, usize)> {
        (offset < PCI_ECAM_SIZE).then_some((
            (offset >> 20) as u8,
            ((offset >> 15) & 0x1f) as u8,
            ((offset >> 12) & 7) as u8,
            (offset & 0xfff) as usize,
        ))
    }

    /// An ECAM read at `offset` from the window's base.
    pub fn ecam_read(&self, offset: u64, data: &mut [u8]) {
        match Self::ecam_decode(offset) {
            Some((b, d, f, reg)) => self.config_access(b, d, f, reg, data, None),
            None => data.fill(0xff),
        }
    }

    /// An ECAM write.
    pub fn ecam_write(&self, offset: u64, data: &[u8]) {
        if let Some((b, d, f, reg)) = Self::ecam_decode(offset) {
            self.config_access(b, d, f, reg, &mut [], Some(data));
        }
    }

    /// Finds the function and BAR whose programmed range holds `addr` (memory decode on) and
    /// runs `f` on it. False when nobody decodes it.
    fn with_bar(
        &self,
        addr: u64,
        len: usize,
        f: impl FnOnce(&mut dyn PciDevice, usize, u64),
    ) -> bool {
        for device in self.slots.values() {
            let mut d = lock(device);
            if !d.config().memory_enabled() {
                continue;
            }
            let hit = (0..6).find_map(|i| {
                let spec = d.config().bar_spec(i)?;
                let base = d.config().bar_address(i)?;
                let offset = addr.checked_sub(base)?;
                (offset.checked_add(len as u64)? <= spec.size).then_some((i, offset))
            });
            if let Some((bar, offset)) = hit {
                f(&mut *d, bar, offset);
                return true;
            }
        }
        false
    }

    /// An MMIO read in a PCI window; false when no BAR decodes it.
    pub fn mmio_read(&self, addr: u64, data: &mut [u8]) -> bool {
        self.with_bar(addr, data.len(), |d, bar, offset| {
            d.bar_read(bar, offset, data)
        })
    }

    /// An MMIO write in a PCI window; false when no BAR decodes it.
    pub fn mmio_write(&self, addr: u64, data: &[u8]) -> bool {
        self.with_bar(addr, data.len(), |d, bar, offset| {
            d.bar_write(bar, offset, data)
        })
    }
}

#[cfg(test)]
mod tests {
    use vm_memory::GuestAddress;

    use super::*;
    use crate::config::{BarSpec, ConfigSpace, Identity};

    #[derive(Debug)]
    struct Fake {
        config: ConfigSpace,
        last: Option<(usize, u64, Vec<u8>)>,
        relocations: Vec<(usize, Option<u64>, Option<u64>)>,
    }

    impl PciDevice for Fake {
        fn config(&self) -> &ConfigSpace {
            &self.config
        }
        fn config_write(&mut self, offset: usize, data: &[u8]) {
            self.config.write(offset, data);
        }
        fn bar_read(&mut self, bar: usize, offset: u64, data: &mut [u8]) {
            data.fill(bar as u8 + offset as u8);
        }
        fn bar_write(&mut self, bar: usize, offset: u64, data: &[u8]) {
            self.last = Some((bar, offset, data.to_vec()));
        }
        fn bar_relocated(&mut self, bar: usize, old: Option<u64>, new: Option<u64>) {
            self.relocations.push((bar, old, new));
        }
    }

    fn fake(size: u64) -> Arc<Mutex<Fake>> {
        let mut config = ConfigSpace::new(Identity {
            vendor: 0x1af4,
            device: 0x1042,
            ..Default::default()
        });
        config.add_bar(
            0,
            BarSpec {
                size,
                is_64: true,
                prefetchable: false,
            },
        );
        Arc::new(Mutex::new(Fake {
            config,
            last: None,
            relocations: Vec::new(),
        }))
    }

    fn bus() -> PciBus {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        PciBus::new(mem, None)
    }

    #[test]
    fn cf8_and_ecam_see_the_same_functions_and_absent_ones_read_all_ones() {
        let mut b = bus();
        b.attach(3, fake(0x4000)).unwrap();
        b.config_io_write(0, &(CONFIG_ENABLE | (3 << 11)).to_le_bytes());
        let mut d = [0u8; 4];
        b.config_io_read(4, &mut d);
        assert_eq!(u32::from_le_bytes(d), 0x1042_1af4);
        let mut w = [0u8; 2];
        b.config_io_read(6, &mut w);
        assert_eq!(u16::from_le_bytes(w), 0x1042, "byte lane 2");
        b.ecam_read(3 << 15, &mut d);
        assert_eq!(u32::from_le_bytes(d), 0x1042_1af4);
        b.ecam_read(4 << 15, &mut d);
        assert_eq!(d, [0xff; 4], "absent slot");
        b.ecam_read((1 << 20) | (3 << 15), &mut d);
        assert_eq!(d, [0xff; 4], "bus 1 does not exist");
        b.config_io_write(0, &(3u32 << 11).to_le_bytes());
        b.config_io_read(4, &mut d);
        assert_eq!(d, [0xff; 4], "enable bit clear");
        b.ecam_read(0, &mut d);
        assert_eq!(u32::from_le_bytes(d), 0x29c0_8086, "host bridge");
    }

    #[test]
    fn bars_are_aligned_disjoint_and_decoded_only_with_memory_on() {
        let mut b = bus();
        let a = b.attach(1, fake(0x4000)).unwrap();
        let c = b.attach(2, fake(0x10000)).unwrap();
        let (x, y) = (a[0].1, c[0].1);
        assert_eq!(x % 0x4000, 0);
        assert_eq!(y % 0x10000, 0);
        assert!(x + 0x4000 <= y);
        let mut d = [0u8; 4];
        assert!(!b.mmio_read(x + 8, &mut d), "memory decode starts off");
        b.ecam_write(1 << 15 | 4, &2u16.to_le_bytes());
        assert!(b.mmio_read(x + 8, &mut d));
        assert_eq!(d, [8; 4]);
        assert!(
            !b.mmio_read(x + 0x3ffe, &mut d),
            "an access running past the BAR"
        );
        // The guest moves the BAR: the bus follows.
        b.ecam_write(1 << 15 | 0x10, &0xd000_0000u32.to_le_bytes());
        assert!(!b.mmio_write(x, &[1]));
        assert!(b.mmio_write(0xd000_0010, &[1]));
        assert_eq!(b.attach(1, fake(0x1000)).unwrap_err(), Error::SlotTaken(1));
    }

    #[test]
    fn the_window_runs_out_with_an_error() {
        let mut b = bus();
        assert!(b.attach(1, fake(1 << 28)).is_ok());
        assert!(b.attach(2, fake(1 << 28)).is_ok());
        assert_eq!(b.attach(3, fake(1 << 28)).unwrap_err(), Error::OutOfMmio);
    }

    #[test]
    fn config_data_port_writes_land_at_their_byte_lane() {
        let mut b = bus();
        b.attach(2, fake(0x1000)).unwrap();
        // Command register (0x04) through 0xCFC, then the interrupt line (0x3c) through lane 0
        // and a 2-byte write at lane 2 of the 0x3c dword (min_gnt/max_lat: read-only).
        b.config_io_write(0, &(CONFIG_ENABLE | (2 << 11) | 0x04).to_le_bytes());
        b.config_io_write(4, &2u16.to_le_bytes());
        b.config_io_write(0, &(CONFIG_ENABLE | (2 << 11) | 0x3c).to_le_bytes());
        b.config_io_write(4, &[0x0b]);
        b.config_io_write(6, &0xffffu16.to_le_bytes());
        let mut d = [0u8; 4];
        b.ecam_read(2 << 15 | 0x04, &mut d);
        assert_eq!(d[0] & 2, 2, "memory decode set through 0xCFC");
        b.ecam_read(2 << 15 | 0x3c, &mut d);
        assert_eq!(d[0], 0x0b, "interrupt line written through lane 0");
        assert_eq!([d[2], d[3]], [0, 0], "read-only bytes at lane 2/3 kept");
        let mut one = [0u8; 1];
        b.config_io_read(7, &mut one);
        assert_eq!(one[0], d[3], "a byte read at 0xCFF is register byte 3");
        // A non-dword access to 0xCF8 does not change the address register.
        b.config_io_write(0, &[0u8; 2]);
        b.config_io_read(4, &mut one);
        assert_eq!(one[0], 0x0b);
        b.ecam_read(2 << 15 | 0x3d, &mut one);
        assert_eq!(one[0], d[1], "ECAM byte read at an odd register");
        let mut two = [0u8; 2];
        b.ecam_read(2 << 15 | 0x3d, &mut two);
        assert_eq!(two, [0xff; 2], "a misaligned word reads all-ones");
        b.config_io_read(5, &mut two);
        assert_eq!(two, [0xff; 2], "the same through 0xCFD");
        b.ecam_write(2 << 15 | 0x3b, &0u16.to_le_bytes());
        b.ecam_read(2 << 15 | 0x3c, &mut one);
        assert_eq!(one[0], 0x0b, "a misaligned write is dropped");
    }

    #[test]
    fn bar_moves_and_decode_changes_are_reported_to_the_function() {
        let mut b = bus();
        let f = fake(0x4000);
        let placed = b.attach(1, f.clone()).unwrap();
        let base = placed[0].1;
        assert!(
            f.lock().unwrap().relocations.is_empty(),
            "decode off at attach"
        );
        b.ecam_write(1 << 15 | 4, &2u16.to_le_bytes());
        b.ecam_write(1 << 15 | 0x10, &0xd000_0000u32.to_le_bytes());
        b.ecam_write(1 << 15 | 4, &0u16.to_le_bytes());
        assert_eq!(
            f.lock().unwrap().relocations,
            vec![
                (0, None, Some(base)),
                (0, Some(base), Some(0xd000_0000)),
                (0, Some(0xd000_0000), None),
            ]
        );
        // Sizing while decode is off is not reported.
        b.ecam_write(1 << 15 | 0x10, &u32::MAX.to_le_bytes());
        assert_eq!(f.lock().unwrap().relocations.len(), 3);
    }

    #[test]
    fn hostile_accesses_anywhere_never_panic() {
        let mut b = bus();
        let f = fake(0x4000);
        b.attach(1, f.clone()).unwrap();
        b.ecam_write(1 << 15 | 4, &2u16.to_le_bytes());
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let r = next();
            let len = [0usize, 1, 2, 3, 4, 5, 8, 16][(r & 7) as usize];
            let mut buf = vec![0u8; len];
            let value = next().to_le_bytes();
            let w: Vec<u8> = value.iter().copied().cycle().take(len).collect();
            let port = ((r >> 3) & 0xf) as u16;
            let ecam = (r >> 8) % (PCI_ECAM_SIZE + 0x2000);
            let mmio = PCI_MMIO32_START
                .wrapping_add((r >> 20) & 0xf_ffff)
                .wrapping_sub(0x100);
            match (r >> 60) & 7 {
                0 => b.config_io_write(port, &w),
                1 => b.config_io_read(port, &mut buf),
                2 => b.ecam_write(ecam, &w),
                3 => b.ecam_read(ecam, &mut buf),
                4 => {
                    b.mmio_write(mmio, &w);
                }
                5 => {
                    b.mmio_read(mmio, &mut buf);
                }
                6 => b.ecam_write((1 << 15) | (ecam & 0xfff), &w),
                _ => {
                    b.mmio_read(u64::MAX - (r & 7), &mut buf);
                }
            }
        }
        // Still answering: the host bridge reads as before.
        let mut d = [0u8; 4];
        b.ecam_read(0, &mut d);
        assert_eq!(u32::from_le_bytes(d), 0x29c0_8086);
    }
}
