//! virtio-rng on a hand-built split ring: buffers filled with the used length reported exactly,
//! readable buffers and unreachable addresses refused, broken chains asking for a reset, nothing
//! served after reset.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use iommu::RequesterId;
use pci::DeviceDma;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::*;
use crate::virtio::device::QueueContext;
use crate::virtio::test_ring::{FakeInterrupt, NEXT, TestRing, WRITE};

const DESC: u64 = 0x1000;
const BUF: u64 = 0x10000;
const QSIZE: u16 = 16;

fn rig() -> (GuestMemoryMmap, Rng, TestRing, Arc<FakeInterrupt>) {
    let guest = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
    let ring = TestRing::new(&guest, DESC, QSIZE);
    let interrupt = Arc::new(FakeInterrupt::default());
    let mut rng = Rng::new().unwrap();
    rng.activate(ActivateContext {
        mem: DeviceDma::memory(guest.clone(), RequesterId::new(0, 0, 2, 0), None),
        queues: vec![QueueContext {
            index: 0,
            queue: ring.queue(),
        }],
        interrupt: interrupt.clone(),
        acked_features: 0,
    })
    .unwrap();
    (guest, rng, ring, interrupt)
}

fn is_filled_with(guest: &GuestMemoryMmap, addr: u64, len: usize, byte: u8) -> bool {
    let mut buf = vec![0u8; len];
    guest.read_slice(&mut buf, GuestAddress(addr)).unwrap();
    buf.iter().all(|&b| b == byte)
}

#[test]
fn writable_buffers_are_filled_and_the_used_length_is_exact() {
    let (guest, mut rng, mut ring, interrupt) = rig();
    ring.submit(&[(BUF, 100, WRITE), (BUF + 0x1000, 4096, WRITE)]);
    rng.process_queue();
    assert_eq!(ring.used_idx(), 1);
    assert_eq!(ring.used(0), (0, 4196));
    // 100 (resp. 4096) random bytes all zero: probability 2^-800.
    assert!(!is_filled_with(&guest, BUF, 100, 0));
    assert!(!is_filled_with(&guest, BUF + 0x1000, 4096, 0));
    assert!(
        is_filled_with(&guest, BUF + 100, 0x1000 - 100, 0),
        "no overrun"
    );
    assert_eq!(
        *interrupt.triggered.lock().unwrap(),
        vec![VirtioInterruptType::Queue(0)]
    );
}

#[test]
fn readable_buffers_and_unreachable_addresses_complete_empty() {
    let (guest, mut rng, mut ring, interrupt) = rig();
    guest.write_slice(&[0x5a; 64], GuestAddress(BUF)).unwrap();
    ring.submit(&[(BUF, 32, WRITE), (BUF + 32, 32, 0)]);
    ring.submit(&[(0x7000_0000, 64, WRITE)]);
    rng.process_queue();
    assert_eq!(ring.used_idx(), 2);
    assert_eq!(ring.used(0), (0, 0));
    assert_eq!(ring.used(1), (2, 0));
    assert!(is_filled_with(&guest, BUF, 64, 0x5a), "nothing written");
    assert!(!interrupt.needs_reset.load(Ordering::SeqCst));
}

#[test]
fn a_descriptor_loop_asks_for_a_reset_and_reset_stops_service() {
    let (guest, mut rng, mut ring, interrupt) = rig();
    ring.submit(&[(BUF, 16, WRITE)]);
    guest
        .write_obj(NEXT | WRITE, GuestAddress(DESC + 12))
        .unwrap();
    guest.write_obj(0u16, GuestAddress(DESC + 14)).unwrap();
    rng.process_queue();
    assert!(interrupt.needs_reset.load(Ordering::SeqCst));
    assert_eq!(ring.used_idx(), 0);

    // After a reset (and before a new activation) nothing is served.
    rng.reset();
    ring.skip_to(4);
    ring.submit(&[(BUF + 0x1000, 16, WRITE)]);
    rng.process_queue();
    assert_eq!(ring.used_idx(), 0);
    assert!(is_filled_with(&guest, BUF + 0x1000, 16, 0));
}
