//! Device test support: a split virtqueue laid out by hand in guest memory (descriptors chained
//! in order, made available one chain at a time, the used ring read back), and an interrupt
//! handle that records what the device signalled.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::device::{VirtioInterrupt, VirtioInterruptType};

pub(crate) const NEXT: u16 = 1;
pub(crate) const WRITE: u16 = 2;

/// A ring of `size` entries at `base` (descriptors), `base + 0x1000` (avail), `base + 0x2000`
/// (used).
pub(crate) struct TestRing {
    pub(crate) guest: GuestMemoryMmap,
    base: u64,
    size: u16,
    next_desc: u16,
    avail_idx: u16,
}

impl TestRing {
    pub(crate) fn new(guest: &GuestMemoryMmap, base: u64, size: u16) -> Self {
        Self {
            guest: guest.clone(),
            base,
            size,
            next_desc: 0,
            avail_idx: 0,
        }
    }

    /// The device's view of this ring.
    pub(crate) fn queue(&self) -> Queue {
        let mut q = Queue::new(self.size).unwrap();
        q.set_size(self.size);
        q.set_desc_table_address(Some(self.base as u32), Some(0));
        q.set_avail_ring_address(Some((self.base + 0x1000) as u32), Some(0));
        q.set_used_ring_address(Some((self.base + 0x2000) as u32), Some(0));
        q.set_ready(true);
        q
    }

    /// Chains `descs` (addr, len, flags) and makes the chain available.
    pub(crate) fn submit(&mut self, descs: &[(u64, u32, u16)]) {
        let head = self.next_desc;
        for (i, (addr, len, flags)) in descs.iter().enumerate() {
            let index = (u64::from(head) + i as u64) % u64::from(self.size);
            let at = self.base + index * 16;
            let next = if i + 1 == descs.len() { 0 } else { NEXT };
            self.guest.write_obj(*addr, GuestAddress(at)).unwrap();
            self.guest.write_obj(*len, GuestAddress(at + 8)).unwrap();
            self.guest
                .write_obj(flags | next, GuestAddress(at + 12))
                .unwrap();
            let next_index = ((index + 1) % u64::from(self.size)) as u16;
            self.guest
                .write_obj(next_index, GuestAddress(at + 14))
                .unwrap();
        }
        self.next_desc = (self.next_desc + descs.len() as u16) % self.size;
        let slot = self.base + 0x1000 + 4 + 2 * u64::from(self.avail_idx % self.size);
        self.guest.write_obj(head, GuestAddress(slot)).unwrap();
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.guest
            .write_obj(self.avail_idx, GuestAddress(self.base + 0x1002))
            .unwrap();
    }

    /// Starts the next chain at descriptor `index` (after a test scribbled on the table).
    pub(crate) fn skip_to(&mut self, index: u16) {
        self.next_desc = index % self.size;
    }

    /// The used ring's index.
    pub(crate) fn used_idx(&self) -> u16 {
        self.guest
            .read_obj(GuestAddress(self.base + 0x2002))
            .unwrap()
    }

    /// Used element `n`: (id, len).
    pub(crate) fn used(&self, n: u16) -> (u32, u32) {
        let at = self.base + 0x2004 + 8 * u64::from(n % self.size);
        (
            self.guest.read_obj(GuestAddress(at)).unwrap(),
            self.guest.read_obj(GuestAddress(at + 4)).unwrap(),
        )
    }
}

/// Records every interrupt and whether the device asked for a reset.
#[derive(Debug, Default)]
pub(crate) struct FakeInterrupt {
    pub(crate) triggered: Mutex<Vec<VirtioInterruptType>>,
    pub(crate) needs_reset: AtomicBool,
}

impl VirtioInterrupt for FakeInterrupt {
    fn trigger(&self, int: VirtioInterruptType) {
        self.triggered.lock().unwrap().push(int);
    }
    fn set_needs_reset(&self) {
        self.needs_reset.store(true, Ordering::SeqCst);
    }
}
