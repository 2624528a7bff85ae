//! The virtio-pci modern transport (virtio 1.2 §4.1): a PCI function with the virtio vendor
//! capabilities, one 64-bit memory BAR holding the common configuration, ISR, device
//! configuration, notification and MSI-X regions, feature negotiation, queue set-up and device
//! activation with the function's DMA handle.

mod common_config;
mod interrupt;
mod ioevent;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use pci::{BarSpec, ConfigSpace, Identity, InterruptVectors, Msix, PciDevice};
use virtio_queue::{Queue, QueueT};
use vmm_sys_util::eventfd::EventFd;

pub use interrupt::{NO_VECTOR, PciInterrupt};
pub use ioevent::{IoEventRegistry, NOTIFY_WRITE_LEN};

use self::common_config::{CommonConfig, offset as cc, set_half};
use self::interrupt::STATUS_NEEDS_RESET;
use crate::virtio::device::{ActivateContext, QueueContext, VirtioDevice};
use pci::DmaMemory;

const VIRTIO_VENDOR: u16 = 0x1af4;
const VIRTIO_MODERN_DEVICE_BASE: u16 = 0x1040;
const VIRTIO_F_VERSION_1: u64 = 1 << 32;
const VIRTIO_F_ACCESS_PLATFORM: u64 = 1 << 33;
const VIRTIO_RING_F_EVENT_IDX: u64 = 1 << 29;

const STATUS_DRIVER_OK: u8 = 4;
const STATUS_FEATURES_OK: u8 = 8;

/// BAR 0 layout.
const BAR_SIZE: u64 = 0x8000;
const COMMON_AT: u64 = 0x0000;
const ISR_AT: u64 = 0x1000;
const DEVICE_AT: u64 = 0x2000;
const DEVICE_LEN: u64 = 0x1000;
const NOTIFY_AT: u64 = 0x3000;
const NOTIFY_MULTIPLIER: u32 = 4;
const MSIX_TABLE_AT: u64 = 0x4000;
const MSIX_PBA_AT: u64 = 0x6000;

const CAP_COMMON: u8 = 1;
const CAP_NOTIFY: u8 = 2;
const CAP_ISR: u8 = 3;
const CAP_DEVICE: u8 = 4;
const CAP_PCI_CFG: u8 = 5;

/// Makes the function's DMA handle for each activation.
pub type DmaFactory = Arc<dyn Fn() -> DmaMemory + Send + Sync>;

/// PCI class codes by virtio device type.
fn class_of(device_type: u32) -> u32 {
    match device_type {
        2 => 0x01_80_00, // mass storage, other
        3 => 0x07_80_00, // communication, other
        _ => 0x00_ff_00,
    }
}

fn virtio_cap(cfg_type: u8, offset: u64, length: u64, extra: &[u8]) -> Vec<u8> {
    let mut c = vec![0x09, 0, (16 + extra.len()) as u8, cfg_type, 0, 0, 0, 0];
    c.extend_from_slice(&(offset as u32).to_le_bytes());
    c.extend_from_slice(&(length as u32).to_le_bytes());
    c.extend_from_slice(extra);
    c
}

/// A virtio device on PCI.
pub struct VirtioPciDevice {
    config: ConfigSpace,
    device: Arc<Mutex<dyn VirtioDevice>>,
    queue_events: Vec<EventFd>,
    device_features: u64,
    common: CommonConfig,
    status: Arc<AtomicU8>,
    interrupt: Arc<PciInterrupt>,
    msix: Arc<Mutex<Msix>>,
    msix_cap: usize,
    pci_cfg_cap: usize,
    dma: DmaFactory,
    translated: bool,
    active: bool,
    ioevents: Option<Arc<dyn IoEventRegistry>>,
    /// Where BAR 0 decodes now (None: memory decode off); the ioeventfds sit there.
    bar0: Option<u64>,
}

impl std::fmt::Debug for VirtioPciDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtioPciDevice")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl VirtioPciDevice {
    /// Wraps `device`. `vectors` delivers its interrupts, `dma` makes its DMA handle,
    /// `translated` says whether an IOMMU sits behind the bus (then the driver must accept
    /// VIRTIO_F_ACCESS_PLATFORM), `intx_line` is the GSI of its INTx pin.
    pub fn new(
        device: Arc<Mutex<dyn VirtioDevice>>,
        vectors: Arc<dyn InterruptVectors>,
        dma: DmaFactory,
        translated: bool,
        intx_line: u8,
    ) -> std::io::Result<Self> {
        let (device_type, max_sizes, device_features, queue_events) = {
            let d = lock(&device);
            let events = d
                .queue_events()
                .iter()
                .map(EventFd::try_clone)
                .collect::<std::io::Result<Vec<_>>>()?;
            (
                d.device_type(),
                d.queue_max_sizes().to_vec(),
                d.device_features(),
                events,
            )
        };
        let mut config = ConfigSpace::new(Identity {
            vendor: VIRTIO_VENDOR,
            device: VIRTIO_MODERN_DEVICE_BASE + device_type as u16,
            class: class_of(device_type),
            revision: 1,
            subsystem_vendor: VIRTIO_VENDOR,
            subsystem: 0x40,
        });
        config.set_interrupt(1, intx_line);
        config.add_bar(
            0,
            BarSpec {
                size: BAR_SIZE,
                is_64: true,
                prefetchable: false,
            },
        );
        let nq = max_sizes.len() as u64;
        let caps = [
            virtio_cap(CAP_COMMON, COMMON_AT, cc::END, &[]),
            virtio_cap(CAP_ISR, ISR_AT, 1, &[]),
            virtio_cap(CAP_DEVICE, DEVICE_AT, DEVICE_LEN, &[]),
            virtio_cap(
                CAP_NOTIFY,
                NOTIFY_AT,
                nq.max(1) * u64::from(NOTIFY_MULTIPLIER),
                &NOTIFY_MULTIPLIER.to_le_bytes(),
            ),
        ];
        for cap in &caps {
            config.add_capability(cap, &[]);
        }
        // VIRTIO_PCI_CAP_PCI_CFG: bar, offset, length and the data window are writable.
        let mut cfg_mask = vec![0u8; 20];
        for b in cfg_mask.iter_mut().skip(8) {
            *b = 0xff;
        }
        if let Some(m) = cfg_mask.get_mut(4) {
            *m = 0xff;
        }
        let pci_cfg_cap = config
            .add_capability(&virtio_cap(CAP_PCI_CFG, 0, 0, &[0; 4]), &cfg_mask)
            .unwrap_or(0);
        let msix = Msix::new(nq as u16 + 1, vectors.clone());
        let (body, mask) = msix.capability(0, MSIX_TABLE_AT as u32, MSIX_PBA_AT as u32);
        let msix_cap = config.add_capability(&body, &mask).unwrap_or(0);
        let msix = Arc::new(Mutex::new(msix));
        let status = Arc::new(AtomicU8::new(0));
        let interrupt = Arc::new(PciInterrupt {
            msix: msix.clone(),
            vectors,
            isr: AtomicU8::new(0),
            status: status.clone(),
            config_vector: Mutex::new(NO_VECTOR),
            config_generation: AtomicU8::new(0),
            queue_vectors: Mutex::new(Vec::new()),
        });
        Ok(Self {
            config,
            device,
            queue_events,
            device_features: device_features | VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM,
            common: CommonConfig::new(&max_sizes),
            status,
            interrupt,
            msix,
            msix_cap,
            pci_cfg_cap,
            dma,
            translated,
            active: false,
            ioevents: None,
            bar0: None,
        })
    }

    /// Lets the transport keep the queues' notification addresses registered as ioeventfds
    /// wherever the guest places BAR 0 (registered when memory decode turns on, moved with the
    /// BAR, removed when decode turns off). Without it every notification is a vCPU exit that
    /// reaches [`PciDevice::bar_write`].
    pub fn set_ioevent_registry(&mut self, registry: Arc<dyn IoEventRegistry>) {
        self.ioevents = Some(registry);
        if let Some(base) = self.bar0 {
            self.update_ioevents(None, Some(base));
        }
    }

    /// The guest address of queue `index`'s notification register when BAR 0 is at `base`.
    fn notify_address(base: u64, index: usize) -> Option<u64> {
        let off = u64::try_from(index)
            .ok()?
            .checked_mul(u64::from(NOTIFY_MULTIPLIER))?;
        base.checked_add(NOTIFY_AT)?.checked_add(off)
    }

    fn update_ioevents(&self, old: Option<u64>, new: Option<u64>) {
        let Some(registry) = &self.ioevents else {
            return;
        };
        for (index, fd) in self.queue_events.iter().enumerate() {
            if let Some(addr) = old.and_then(|b| Self::notify_address(b, index))
                && let Err(e) = registry.unregister(addr, NOTIFY_WRITE_LEN, fd)
            {
                log::warn!("virtio-pci: unregistering queue {index} notify at {addr:#x}: {e}");
            }
            if let Some(addr) = new.and_then(|b| Self::notify_address(b, index))
                && let Err(e) = registry.register(addr, NOTIFY_WRITE_LEN, fd)
            {
                // Not fatal: the write then exits to the VMM and reaches `notify`.
                log::warn!("virtio-pci: registering queue {index} notify at {addr:#x}: {e}");
            }
        }
    }

    fn status(&self) -> u8 {
        self.status.load(Ordering::SeqCst)
    }

    fn reset(&mut self) {
        if self.active {
            lock(&self.device).reset();
        }
        self.active = false;
        let sizes: Vec<u16> = self.common.queues.iter().map(|q| q.max_size).collect();
        self.common = CommonConfig::new(&sizes);
        self.status.store(0, Ordering::SeqCst);
        self.interrupt.read_isr();
        *lock(&self.interrupt.config_vector) = NO_VECTOR;
        self.interrupt.config_generation.store(0, Ordering::SeqCst);
        lock(&self.interrupt.queue_vectors).clear();
    }

    fn features_ok(&self) -> bool {
        let acked = self.common.driver_features;
        let ok = acked & !self.device_features == 0
            && acked & VIRTIO_F_VERSION_1 != 0
            && (!self.translated || acked & VIRTIO_F_ACCESS_PLATFORM != 0);
        if !ok {
            log::warn!(
                "virtio-pci {:?}: refusing features {acked:#x} (offered {:#x}, translated DMA: {})",
                self.device,
                self.device_features,
                self.translated
            );
        }
        ok
    }

    fn activate(&mut self) {
        let mem = (self.dma)();
        let event_idx = self.common.driver_features & VIRTIO_RING_F_EVENT_IDX != 0;
        let mut queues = Vec::new();
        for (index, qc) in self.common.queues.iter().enumerate() {
            if !qc.enabled {
                continue;
            }
            let Ok(mut queue) = Queue::new(qc.max_size) else {
                continue;
            };
            queue.set_size(qc.size);
            queue.set_desc_table_address(Some(qc.desc as u32), Some((qc.desc >> 32) as u32));
            queue.set_avail_ring_address(Some(qc.driver as u32), Some((qc.driver >> 32) as u32));
            queue.set_used_ring_address(Some(qc.device as u32), Some((qc.device >> 32) as u32));
            queue.set_event_idx(event_idx);
            queue.set_ready(true);
            if !queue.is_valid(&mem) {
                log::warn!(
                    "virtio-pci: queue {index} is not valid (size or ring addresses); device needs reset"
                );
                self.status.fetch_or(STATUS_NEEDS_RESET, Ordering::SeqCst);
                return;
            }
            queues.push(QueueContext {
                index: index as u16,
                queue,
            });
        }
        *lock(&self.interrupt.queue_vectors) =
            self.common.queues.iter().map(|q| q.msix_vector).collect();
        *lock(&self.interrupt.config_vector) = self.common.msix_config;
        let ctx = ActivateContext {
            mem,
            queues,
            interrupt: self.interrupt.clone(),
            acked_features: self.common.driver_features,
        };
        match lock(&self.device).activate(ctx) {
            Ok(()) => self.active = true,
            Err(e) => {
                log::warn!("virtio-pci: activation failed: {e}");
                self.status.fetch_or(STATUS_NEEDS_RESET, Ordering::SeqCst);
            }
        }
    }

    fn write_status(&mut self, value: u8) {
        if value == 0 {
            self.reset();
            return;
        }
        let old = self.status();
        let mut new = value;
        if new & STATUS_FEATURES_OK != 0 && old & STATUS_FEATURES_OK == 0 && !self.features_ok() {
            new &= !STATUS_FEATURES_OK;
        }
        // NEEDS_RESET is the device's to set; keep it.
        new |= old & STATUS_NEEDS_RESET;
        self.status.store(new, Ordering::SeqCst);
        if new & STATUS_DRIVER_OK != 0 && old & STATUS_DRIVER_OK == 0 && !self.active {
            if new & STATUS_FEATURES_OK == 0 {
                log::warn!("virtio-pci: DRIVER_OK without FEATURES_OK; not activating");
                return;
            }
            self.activate();
        }
    }

    fn vector_or_none(&self, v: u16) -> u16 {
        if v < lock(&self.msix).count() {
            v
        } else {
            NO_VECTOR
        }
    }

    fn common_read(&self, off: u64, data: &mut [u8]) {
        let c = &self.common;
        let q = c.selected().copied().unwrap_or_default();
        let value: u64 = match off {
            cc::DEVICE_FEATURE_SELECT => u64::from(c.device_feature_select),
            cc::DEVICE_FEATURE => match c.device_feature_select {
                0 => self.device_features & 0xffff_ffff,
                1 => self.device_features >> 32,
                _ => 0,
            },
            cc::DRIVER_FEATURE_SELECT => u64::from(c.driver_feature_select),
            cc::DRIVER_FEATURE => match c.driver_feature_select {
                0 => c.driver_features & 0xffff_ffff,
                1 => c.driver_features >> 32,
                _ => 0,
            },
            cc::MSIX_CONFIG => u64::from(c.msix_config),
            cc::NUM_QUEUES => c.queues.len() as u64,
            cc::DEVICE_STATUS => u64::from(self.status()),
            cc::CONFIG_GENERATION => {
                u64::from(self.interrupt.config_generation.load(Ordering::SeqCst))
            }
            cc::QUEUE_SELECT => u64::from(c.queue_select),
            cc::QUEUE_SIZE => u64::from(if c.selected().is_some() { q.size } else { 0 }),
            cc::QUEUE_MSIX_VECTOR => u64::from(if c.selected().is_some() {
                q.msix_vector
            } else {
                NO_VECTOR
            }),
            cc::QUEUE_ENABLE => u64::from(q.enabled),
            cc::QUEUE_NOTIFY_OFF => u64::from(c.queue_select),
            cc::QUEUE_DESC => q.desc,
            0x24 => q.desc >> 32,
            cc::QUEUE_DRIVER => q.driver,
            0x2c => q.driver >> 32,
            cc::QUEUE_DEVICE => q.device,
            0x34 => q.device >> 32,
            _ => 0,
        };
        let bytes = value.to_le_bytes();
        for (i, b) in data.iter_mut().enumerate() {
            *b = bytes.get(i).copied().unwrap_or(0);
        }
    }

    fn common_write(&mut self, off: u64, data: &[u8]) {
        let mut b = [0u8; 8];
        for (dst, src) in b.iter_mut().zip(data) {
            *dst = *src;
        }
        let v64 = u64::from_le_bytes(b);
        let v32 = v64 as u32;
        let v16 = v64 as u16;
        let can_configure_queues = self.status() & STATUS_DRIVER_OK == 0;
        match (off, data.len()) {
            (cc::DEVICE_FEATURE_SELECT, 4) => self.common.device_feature_select = v32,
            (cc::DRIVER_FEATURE_SELECT, 4) => self.common.driver_feature_select = v32,
            (cc::DRIVER_FEATURE, 4) if self.status() & STATUS_FEATURES_OK == 0 => {
                match self.common.driver_feature_select {
                    0 => {
                        self.common.driver_features = set_half(self.common.driver_features, 0, v32)
                    }
                    1 => {
                        self.common.driver_features = set_half(self.common.driver_features, 4, v32)
                    }
                    _ => {}
                }
            }
            (cc::MSIX_CONFIG, 2) => {
                let v = self.vector_or_none(v16);
                self.common.msix_config = v;
                *lock(&self.interrupt.config_vector) = v;
            }
            (cc::DEVICE_STATUS, 1) => self.write_status(v64 as u8),
            (cc::QUEUE_SELECT, 2) => self.common.queue_select = v16,
            (cc::QUEUE_SIZE, 2) if can_configure_queues => {
                if let Some(q) = self.common.selected_mut() {
                    if v16.is_power_of_two() && v16 <= q.max_size {
                        q.size = v16;
                    } else {
                        log::debug!("virtio-pci: refused queue size {v16} (max {})", q.max_size);
                    }
                }
            }
            (cc::QUEUE_MSIX_VECTOR, 2) => {
                let v = self.vector_or_none(v16);
                let sel = usize::from(self.common.queue_select);
                if let Some(q) = self.common.selected_mut() {
                    q.msix_vector = v;
                }
                if let Some(slot) = lock(&self.interrupt.queue_vectors).get_mut(sel) {
                    *slot = v;
                }
            }
            (cc::QUEUE_ENABLE, 2) if can_configure_queues => {
                if let Some(q) = self.common.selected_mut() {
                    q.enabled = v16 == 1;
                }
            }
            (cc::QUEUE_DESC..cc::END, 4 | 8) if can_configure_queues => {
                let field = (off - cc::QUEUE_DESC) / 8 * 8 + cc::QUEUE_DESC;
                let half = (off - cc::QUEUE_DESC) % 8;
                let Some(q) = self.common.selected_mut() else {
                    return;
                };
                let slot = match field {
                    cc::QUEUE_DESC => &mut q.desc,
                    cc::QUEUE_DRIVER => &mut q.driver,
                    _ => &mut q.device,
                };
                *slot = match (data.len(), half) {
                    (8, 0) => v64,
                    (4, h) => set_half(*slot, h, v32),
                    _ => *slot,
                };
            }
            _ => log::debug!(
                "virtio-pci: ignored {}-byte common config write at {off:#x}",
                data.len()
            ),
        }
    }

    fn notify(&self, off: u64) {
        let queue = off / u64::from(NOTIFY_MULTIPLIER);
        if let Some(evt) = self.queue_events.get(queue as usize)
            && let Err(e) = evt.write(1)
        {
            log::warn!("virtio-pci: queue {queue} notification failed: {e}");
        }
    }

    fn bar_access(&mut self, offset: u64, read: Option<&mut [u8]>, write: Option<&[u8]>) {
        let len = read
            .as_ref()
            .map_or_else(|| write.map_or(0, <[u8]>::len), |r| r.len()) as u64;
        let inside = |at: u64, size: u64| {
            offset >= at
                && offset
                    .checked_add(len)
                    .is_some_and(|end| end <= at.saturating_add(size))
        };
        match (read, write) {
            (Some(data), _) => {
                data.fill(0);
                if inside(COMMON_AT, cc::END) {
                    self.common_read(offset - COMMON_AT, data);
                } else if inside(ISR_AT, 1) {
                    if let Some(b) = data.first_mut() {
                        *b = self.interrupt.read_isr();
                    }
                } else if inside(DEVICE_AT, DEVICE_LEN) {
                    lock(&self.device).read_config(offset - DEVICE_AT, data);
                } else if inside(MSIX_TABLE_AT, lock(&self.msix).table_size()) {
                    lock(&self.msix).table_read(offset - MSIX_TABLE_AT, data);
                } else if inside(MSIX_PBA_AT, lock(&self.msix).pba_size()) {
                    lock(&self.msix).pba_read(offset - MSIX_PBA_AT, data);
                }
            }
            (None, Some(data)) => {
                if inside(COMMON_AT, cc::END) {
                    self.common_write(offset - COMMON_AT, data);
                } else if inside(DEVICE_AT, DEVICE_LEN) {
                    lock(&self.device).write_config(offset - DEVICE_AT, data);
                } else if inside(NOTIFY_AT, 0x1000) {
                    self.notify(offset - NOTIFY_AT);
                } else if inside(MSIX_TABLE_AT, lock(&self.msix).table_size()) {
                    lock(&self.msix).table_write(offset - MSIX_TABLE_AT, data);
                }
            }
            (None, None) => {}
        }
    }

    /// VIRTIO_PCI_CAP_PCI_CFG: an access to the data window reaches the BAR at the offset the
    /// driver put in the capability.
    fn pci_cfg_window(
        &mut self,
        offset: usize,
        read: Option<&mut [u8]>,
        write: Option<&[u8]>,
    ) -> bool {
        let window = self.pci_cfg_cap + 16;
        if self.pci_cfg_cap == 0 || offset < window || offset >= window + 4 {
            return false;
        }
        let bar = self.config.read_u16(self.pci_cfg_cap + 4) as u8;
        let at = u64::from(self.config.read_u32(self.pci_cfg_cap + 8));
        let length = self.config.read_u32(self.pci_cfg_cap + 12) as usize;
        if bar != 0 || !matches!(length, 1 | 2 | 4) {
            return true;
        }
        match (read, write) {
            (Some(data), _) => {
                let mut buf = vec![0u8; length];
                self.bar_access(at, Some(&mut buf), None);
                for (d, s) in data.iter_mut().zip(buf) {
                    *d = s;
                }
            }
            (None, Some(data)) => {
                let buf: Vec<u8> = data.iter().copied().take(length).collect();
                self.bar_access(at, None, Some(&buf));
            }
            _ => {}
        }
        true
    }
}

impl PciDevice for VirtioPciDevice {
    fn config(&self) -> &ConfigSpace {
        &self.config
    }

    fn config_read(&mut self, offset: usize, data: &mut [u8]) {
        if !self.pci_cfg_window(offset, Some(&mut *data), None) {
            self.config.read(offset, data);
        }
    }

    fn config_write(&mut self, offset: usize, data: &[u8]) {
        if self.pci_cfg_window(offset, None, Some(data)) {
            return;
        }
        self.config.write(offset, data);
        let control = self.msix_cap + 2;
        if self.msix_cap != 0
            && offset < control.saturating_add(2)
            && offset.saturating_add(data.len()) > control
        {
            let c = self.config.read_u16(control);
            lock(&self.msix).set_control(c);
        }
    }

    fn bar_read(&mut self, bar: usize, offset: u64, data: &mut [u8]) {
        if bar == 0 {
            self.bar_access(offset, Some(data), None);
        } else {
            data.fill(0xff);
        }
    }

    fn bar_write(&mut self, bar: usize, offset: u64, data: &[u8]) {
        if bar == 0 {
            self.bar_access(offset, None, Some(data));
        }
    }

    fn bar_relocated(&mut self, bar: usize, old: Option<u64>, new: Option<u64>) {
        if bar == 0 {
            self.bar0 = new;
            self.update_ioevents(old, new);
        }
    }
}

#[cfg(test)]
mod tests;
