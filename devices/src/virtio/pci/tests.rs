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
        data.fill(offset as u8 + 0x40);
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
    // needs_reset sets the status bit; writing 0 resets device and transport.
    interrupt.set_needs_reset();
    assert_ne!(r.status() & STATUS_NEEDS_RESET, 0);
    r.w(cc::DEVICE_STATUS, 0, 1);
    assert_eq!(r.status(), 0);
    assert!(r.resets.load(Ordering::SeqCst));
    r.w(cc::QUEUE_SELECT, 0, 2);
    assert_eq!(r.r(cc::QUEUE_ENABLE, 2), 0);
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
