//! The transport driven the way a driver drives it: capabilities, feature negotiation (accept
//! and refuse), queue set-up with hostile values, activation, interrupts by MSI-X and by
//! INTx/ISR, and reset.

use std::sync::atomic::AtomicBool;

use iommu::RequesterId;
use pci::{DeviceDma, MsiMessage};
use vm_memory::{GuestAddress, GuestMemoryMmap};

use super::*;
use crate::virtio::device::{ActivateError, VirtioInterrupt, VirtioInterruptType};

#[derive(Debug, Default)]
struct Vectors {
    fired: Mutex<Vec<u16>>,
    intx: Mutex<Vec<bool>>,
}

impl InterruptVectors for Vectors {
    fn update(&self, _index: u16, _msg: MsiMessage, _masked: bool) -> std::io::Result<()> {
        Ok(())
    }
    fn trigger(&self, index: u16) -> std::io::Result<()> {
        self.fired.lock().unwrap().push(index);
        Ok(())
    }
    fn set_intx(&self, asserted: bool) -> std::io::Result<()> {
        self.intx.lock().unwrap().push(asserted);
        Ok(())
    }
}

/// What the device saw at activation: queue count, acked features, the interrupt handle.
type Activation = Arc<Mutex<Option<(usize, u64, Arc<dyn VirtioInterrupt>)>>>;

#[derive(Debug)]
struct Dummy {
    events: Vec<EventFd>,
    activated: Activation,
    resets: Arc<AtomicBool>,
}

impl VirtioDevice for Dummy {
    fn device_type(&self) -> u32 {
        2
    }
    fn queue_max_sizes(&self) -> &[u16] {
        &[8, 8]
    }
    fn device_features(&self) -> u64 {
        1 << 9
    }
    fn queue_events(&self) -> &[EventFd] {
        &self.events
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        data.fill((offset as u8).wrapping_add(0x40));
    }
    fn write_config(&mut self, _offset: u64, _data: &[u8]) {}
    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError> {
        *self.activated.lock().unwrap() =
            Some((ctx.queues.len(), ctx.acked_features, ctx.interrupt));
        Ok(())
    }
    fn reset(&mut self) {
        self.resets.store(true, Ordering::SeqCst);
    }
}

struct Rig {
    dev: VirtioPciDevice,
    /// A clone of queue 1's notification eventfd.
    queue_event_1: EventFd,
    vectors: Arc<Vectors>,
    activated: Activation,
    resets: Arc<AtomicBool>,
}

fn rig(translated: bool) -> Rig {
    let guest = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
    let activated = Arc::new(Mutex::new(None));
    let resets = Arc::new(AtomicBool::new(false));
    let dummy = Dummy {
        events: vec![EventFd::new(0).unwrap(), EventFd::new(0).unwrap()],
        activated: activated.clone(),
        resets: resets.clone(),
    };
    let queue_event_1 = dummy.events[1].try_clone().unwrap();
    let vectors = Arc::new(Vectors::default());
    let dma: DmaFactory =
        Arc::new(move || DeviceDma::memory(guest.clone(), RequesterId::new(0, 0, 1, 0), None));
    let dev = VirtioPciDevice::new(
        Arc::new(Mutex::new(dummy)),
        vectors.clone(),
        dma,
        translated,
        17,
    )
    .unwrap();
    Rig {
        dev,
        queue_event_1,
        vectors,
        activated,
        resets,
    }
}

impl Rig {
    fn w(&mut self, off: u64, v: u64, len: usize) {
        self.dev.bar_write(0, off, &v.to_le_bytes()[..len]);
    }
    fn r(&mut self, off: u64, len: usize) -> u64 {
        let mut b = [0u8; 8];
        self.dev.bar_read(0, off, &mut b[..len]);
        u64::from_le_bytes(b)
    }
    fn status(&mut self) -> u8 {
        self.r(cc::DEVICE_STATUS, 1) as u8
    }
    fn negotiate(&mut self, features: u64) -> bool {
        self.w(cc::DEVICE_STATUS, 3, 1);
        self.w(cc::DRIVER_FEATURE_SELECT, 0, 4);
        self.w(cc::DRIVER_FEATURE, features & 0xffff_ffff, 4);
        self.w(cc::DRIVER_FEATURE_SELECT, 1, 4);
        self.w(cc::DRIVER_FEATURE, features >> 32, 4);
        self.w(cc::DEVICE_STATUS, 3 | 8, 1);
        self.status() & 8 != 0
    }
    fn setup_queue(&mut self, q: u16, base: u64) {
        self.w(cc::QUEUE_SELECT, u64::from(q), 2);
        self.w(cc::QUEUE_DESC, base, 8);
        self.w(cc::QUEUE_DRIVER, base + 0x100, 4);
        self.w(cc::QUEUE_DRIVER + 4, 0, 4);
        self.w(cc::QUEUE_DEVICE, base + 0x200, 8);
        self.w(cc::QUEUE_ENABLE, 1, 2);
    }
}

#[test]
fn identity_and_capabilities() {
    let r = rig(false);
    let c = r.dev.config();
    assert_eq!(c.read_u32(0), 0x1042_1af4);
    assert_eq!(c.read_u32(8) >> 8, 0x01_80_00);
    let mut kinds = Vec::new();
    let mut at = usize::from(c.read_u16(0x34) as u8);
    while at != 0 {
        let id = c.read_u16(at) as u8;
        kinds.push(if id == 0x09 {
            c.read_u32(at) >> 24
        } else {
            0x100 | u32::from(id)
        });
        at = usize::from((c.read_u16(at) >> 8) as u8);
    }
    assert_eq!(
        kinds,
        vec![1, 3, 4, 2, 5, 0x111],
        "common, isr, device, notify, pci cfg, MSI-X"
    );
}

#[test]
fn features_version_1_is_required_and_unknown_bits_refused() {
    let mut r = rig(false);
    assert_eq!(r.r(cc::DEVICE_FEATURE, 4), 1 << 9);
    r.w(cc::DEVICE_FEATURE_SELECT, 1, 4);
    assert_eq!(
        r.r(cc::DEVICE_FEATURE, 4),
        0b11,
        "VERSION_1 and ACCESS_PLATFORM"
    );
    assert!(!r.negotiate(1 << 9), "without VERSION_1");
    r.w(cc::DEVICE_STATUS, 0, 1);
    assert!(
        !r.negotiate(VIRTIO_F_VERSION_1 | (1 << 3)),
        "a bit never offered"
    );
    r.w(cc::DEVICE_STATUS, 0, 1);
    assert!(r.negotiate(VIRTIO_F_VERSION_1 | (1 << 9)));
}

#[test]
fn a_translated_bus_requires_access_platform() {
    let mut r = rig(true);
    assert!(!r.negotiate(VIRTIO_F_VERSION_1));
    r.w(cc::DEVICE_STATUS, 0, 1);
    assert!(r.negotiate(VIRTIO_F_VERSION_1 | VIRTIO_F_ACCESS_PLATFORM));
}

#[test]
fn queue_sizes_are_validated_and_selection_out_of_range_is_harmless() {
    let mut r = rig(false);
    r.w(cc::QUEUE_SELECT, 0, 2);
    for bad in [0u64, 3, 16, 65535] {
        r.w(cc::QUEUE_SIZE, bad, 2);
        assert_eq!(r.r(cc::QUEUE_SIZE, 2), 8, "size {bad} refused");
    }
    r.w(cc::QUEUE_SIZE, 4, 2);
    assert_eq!(r.r(cc::QUEUE_SIZE, 2), 4);
    r.w(cc::QUEUE_SELECT, 500, 2);
    assert_eq!(r.r(cc::QUEUE_SIZE, 2), 0);
    r.w(cc::QUEUE_ENABLE, 1, 2);
    r.w(cc::QUEUE_DESC, 0x1234, 8);
    assert_eq!(r.r(cc::NUM_QUEUES, 2), 2);
    r.w(cc::QUEUE_MSIX_VECTOR, 40, 2);
    assert_eq!(r.r(cc::QUEUE_MSIX_VECTOR, 2), u64::from(NO_VECTOR));
    // Odd sizes and offsets anywhere in the BAR.
    for off in 0..0x80u64 {
        for len in [1usize, 2, 3, 4, 8] {
            r.r(off, len);
            r.w(off, 0xffff_ffff_ffff_ffff, len);
        }
    }
}

#[test]
fn driver_ok_activates_with_the_enabled_queues_and_interrupts_follow_msix_or_intx() {
    let mut r = rig(false);
    assert!(r.negotiate(VIRTIO_F_VERSION_1));
    r.setup_queue(0, 0x1000);
    r.w(cc::QUEUE_MSIX_VECTOR, 1, 2);
    r.w(cc::DEVICE_STATUS, 3 | 8 | 4, 1);
    let (queues, acked, interrupt) = r.activated.lock().unwrap().clone().unwrap();
    assert_eq!((queues, acked), (1, VIRTIO_F_VERSION_1));
    // MSI-X disabled: ISR bit + INTx, cleared by reading the ISR.
    interrupt.trigger(VirtioInterruptType::Queue(0));
    assert_eq!(*r.vectors.intx.lock().unwrap(), vec![true]);
    assert_eq!(r.r(ISR_AT, 1), 1);
    assert_eq!(r.r(ISR_AT, 1), 0);
    assert_eq!(*r.vectors.intx.lock().unwrap(), vec![true, false]);
    // MSI-X enabled, vector 1 unmasked: the queue fires vector 1.
    let control = r.dev.msix_cap + 2;
    r.dev.config_write(control, &0x8000u16.to_le_bytes());
    r.dev
        .bar_write(0, MSIX_TABLE_AT + 16 + 12, &0u32.to_le_bytes());
    interrupt.trigger(VirtioInterruptType::Queue(0));
    assert_eq!(*r.vectors.fired.lock().unwrap(), vec![1]);
    // needs_reset sets the status bit and raises the config interrupt (no vector chosen:
    // nothing fires) after moving config_generation.
    assert_eq!(r.r(cc::CONFIG_GENERATION, 1), 0);
    interrupt.set_needs_reset();
    assert_ne!(r.status() & STATUS_NEEDS_RESET, 0);
    assert_eq!(r.r(cc::CONFIG_GENERATION, 1), 1);
    assert_eq!(*r.vectors.fired.lock().unwrap(), vec![1]);
    r.w(cc::MSIX_CONFIG, 2, 2);
    r.dev
        .bar_write(0, MSIX_TABLE_AT + 2 * 16 + 12, &0u32.to_le_bytes());
    interrupt.trigger(VirtioInterruptType::Config);
    assert_eq!(
        *r.vectors.fired.lock().unwrap(),
        vec![1, 2],
        "config -> msix_config"
    );
    assert_eq!(r.r(cc::CONFIG_GENERATION, 1), 2);
    r.w(cc::DEVICE_STATUS, 0, 1);
    assert_eq!(r.status(), 0);
    assert!(r.resets.load(Ordering::SeqCst));
    r.w(cc::QUEUE_SELECT, 0, 2);
    assert_eq!(r.r(cc::QUEUE_ENABLE, 2), 0);
    assert_eq!(r.r(cc::QUEUE_MSIX_VECTOR, 2), u64::from(NO_VECTOR));
    assert_eq!(r.r(cc::CONFIG_GENERATION, 1), 0);
}

#[test]
fn driver_ok_without_features_ok_or_with_a_bad_ring_does_not_activate() {
    let mut r = rig(false);
    r.w(cc::DEVICE_STATUS, 1 | 2 | 4, 1);
    assert!(r.activated.lock().unwrap().is_none());
    r.w(cc::DEVICE_STATUS, 0, 1);
    assert!(r.negotiate(VIRTIO_F_VERSION_1));
    r.setup_queue(0, 0xfff_0000); // rings outside guest memory
    r.w(cc::DEVICE_STATUS, 3 | 8 | 4, 1);
    assert!(r.activated.lock().unwrap().is_none());
    assert_ne!(r.status() & STATUS_NEEDS_RESET, 0);
}

#[test]
fn notify_writes_the_queue_eventfd_and_device_config_is_forwarded() {
    let mut r = rig(false);
    r.w(NOTIFY_AT + 4, 1, 2);
    assert_eq!(r.dev.queue_events[1].read().unwrap(), 1);
    assert_eq!(r.r(DEVICE_AT + 2, 1), 0x42);
}

#[derive(Debug, Default)]
struct Registry {
    /// (register?, address, len) in call order.
    calls: Mutex<Vec<(bool, u64, u32)>>,
}

impl IoEventRegistry for Registry {
    fn register(&self, addr: u64, len: u32, _fd: &EventFd) -> std::io::Result<()> {
        self.calls.lock().unwrap().push((true, addr, len));
        Ok(())
    }
    fn unregister(&self, addr: u64, len: u32, _fd: &EventFd) -> std::io::Result<()> {
        self.calls.lock().unwrap().push((false, addr, len));
        Ok(())
    }
}

#[test]
fn notify_ioeventfds_follow_memory_decode_and_bar_moves_on_the_bus() {
    let mut r = rig(false);
    let registry = Arc::new(Registry::default());
    r.dev.set_ioevent_registry(registry.clone());
    let guest = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
    let mut bus = pci::PciBus::new(guest, None);
    let placed = bus.attach(1, Arc::new(Mutex::new(r.dev))).unwrap();
    let base = placed[0].1;
    assert!(registry.calls.lock().unwrap().is_empty(), "decode off");
    let ecam = |reg: u64| (1u64 << 15) | reg;
    bus.ecam_write(ecam(4), &2u16.to_le_bytes());
    let notify = |b: u64, q: u64| b + NOTIFY_AT + 4 * q;
    assert_eq!(
        *registry.calls.lock().unwrap(),
        vec![(true, notify(base, 0), 2), (true, notify(base, 1), 2)]
    );
    registry.calls.lock().unwrap().clear();
    // The guest moves the 64-bit BAR (low dword only, decode left on).
    bus.ecam_write(ecam(0x10), &0xd000_0000u32.to_le_bytes());
    let moved = 0xd000_0000 | (base & !0xffff_ffff);
    assert_eq!(
        *registry.calls.lock().unwrap(),
        vec![
            (false, notify(base, 0), 2),
            (true, notify(moved, 0), 2),
            (false, notify(base, 1), 2),
            (true, notify(moved, 1), 2),
        ]
    );
    registry.calls.lock().unwrap().clear();
    bus.ecam_write(ecam(4), &0u16.to_le_bytes());
    assert_eq!(
        *registry.calls.lock().unwrap(),
        vec![(false, notify(moved, 0), 2), (false, notify(moved, 1), 2)]
    );
    // A notify write that reaches the transport (no ioeventfd) still signals the queue.
    bus.ecam_write(ecam(4), &2u16.to_le_bytes());
    assert!(bus.mmio_write(notify(moved, 1), &1u16.to_le_bytes()));
    assert_eq!(r.queue_event_1.read().unwrap(), 1);
}

#[test]
fn read_only_fields_ignore_writes_and_queues_lock_after_driver_ok() {
    let mut r = rig(false);
    r.w(cc::NUM_QUEUES, 9, 2);
    r.w(cc::DEVICE_FEATURE, 0, 4);
    r.w(cc::CONFIG_GENERATION, 7, 1);
    r.w(cc::QUEUE_SELECT, 1, 2);
    r.w(cc::QUEUE_NOTIFY_OFF, 5, 2);
    r.w(ISR_AT, 3, 1);
    assert_eq!(r.r(cc::NUM_QUEUES, 2), 2);
    assert_eq!(r.r(cc::DEVICE_FEATURE, 4), 1 << 9);
    assert_eq!(r.r(cc::CONFIG_GENERATION, 1), 0);
    assert_eq!(
        r.r(cc::QUEUE_NOTIFY_OFF, 2),
        1,
        "queue 1 notifies at offset 1 * 4"
    );
    assert_eq!(r.r(ISR_AT, 1), 0);
    // A 2-byte write to a 4-byte field is refused whole.
    r.w(cc::DRIVER_FEATURE, 0xffff, 2);
    assert_eq!(r.r(cc::DRIVER_FEATURE, 4), 0);
    // After DRIVER_OK the queue's size and addresses are frozen.
    assert!(r.negotiate(VIRTIO_F_VERSION_1));
    r.setup_queue(0, 0x1000);
    r.w(cc::DEVICE_STATUS, 3 | 8 | 4, 1);
    r.w(cc::QUEUE_SELECT, 0, 2);
    r.w(cc::QUEUE_SIZE, 2, 2);
    r.w(cc::QUEUE_DESC, 0x8000, 8);
    assert_eq!(r.r(cc::QUEUE_SIZE, 2), 8);
    assert_eq!(r.r(cc::QUEUE_DESC, 8), 0x1000);
    // FEATURES_OK set: the driver can no longer change its features.
    r.w(cc::DRIVER_FEATURE_SELECT, 0, 4);
    r.w(cc::DRIVER_FEATURE, 1 << 9, 4);
    assert_eq!(r.r(cc::DRIVER_FEATURE, 4), 0);
}

#[test]
fn the_pci_cfg_window_reaches_the_bar() {
    let mut r = rig(false);
    let cap = r.dev.pci_cfg_cap;
    assert_ne!(cap, 0);
    r.dev.config_write(cap + 4, &[0]);
    r.dev
        .config_write(cap + 8, &(cc::NUM_QUEUES as u32).to_le_bytes());
    r.dev.config_write(cap + 12, &2u32.to_le_bytes());
    let mut d = [0u8; 2];
    r.dev.config_read(cap + 16, &mut d);
    assert_eq!(u16::from_le_bytes(d), 2, "num_queues through the window");
    // Writes go through too: device_status = ACKNOWLEDGE.
    r.dev
        .config_write(cap + 8, &(cc::DEVICE_STATUS as u32).to_le_bytes());
    r.dev.config_write(cap + 12, &1u32.to_le_bytes());
    r.dev.config_write(cap + 16, &[1]);
    assert_eq!(r.status(), 1);
    // A bad BAR or length in the capability: the window does nothing.
    r.dev.config_write(cap + 4, &[3]);
    r.dev.config_write(cap + 16, &[0]);
    assert_eq!(r.status(), 1);
    // Offsets far outside the BAR are harmless.
    r.dev.config_write(cap + 4, &[0]);
    r.dev.config_write(cap + 8, &u32::MAX.to_le_bytes());
    r.dev.config_write(cap + 12, &4u32.to_le_bytes());
    r.dev.config_read(cap + 16, &mut d);
    r.dev.config_write(cap + 16, &[0xff; 4]);
}

#[test]
fn hostile_bar_and_config_accesses_never_panic() {
    let mut r = rig(true);
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..50_000 {
        let x = next();
        let len = [0usize, 1, 2, 3, 4, 5, 8, 16][(x & 7) as usize];
        let value: Vec<u8> = next()
            .to_le_bytes()
            .iter()
            .copied()
            .cycle()
            .take(len)
            .collect();
        let mut buf = vec![0u8; len];
        // Mostly inside the BAR (and the config space), sometimes far beyond.
        let bar_off = if x & (1 << 10) == 0 {
            (x >> 11) % BAR_SIZE
        } else {
            x >> 11
        };
        let cfg_off = ((x >> 40) % 0x1100) as usize;
        match (x >> 61) & 3 {
            0 => r.dev.bar_write((x >> 4 & 7) as usize, bar_off, &value),
            1 => r.dev.bar_read((x >> 4 & 7) as usize, bar_off, &mut buf),
            2 => r.dev.config_write(cfg_off, &value),
            _ => r.dev.config_read(cfg_off, &mut buf),
        }
    }
    // Still a virtio device that answers and resets.
    r.w(cc::DEVICE_STATUS, 0, 1);
    assert_eq!(r.status(), 0);
    assert_eq!(r.dev.config().read_u32(0), 0x1042_1af4);
}
