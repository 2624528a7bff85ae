//! Unit tests of the VT-d model with hand-built tables in a `GuestMemoryMmap`.

mod faults;
mod fuzz;
mod invalidation;
mod notifier;
mod queue;
mod registers;
mod walk;

use std::sync::{Arc, Mutex};

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap, Permissions};

use super::{VtdConfig, VtdUnit};
use crate::{DmaFault, DmaTranslate, MsiSink, RequesterId, Translation};

pub(super) const MIB: u64 = 1 << 20;
pub(super) const GIB: u64 = 1 << 30;
/// Guest RAM size: 64 MiB (tables live in it; GPAs above it are fine as translation targets).
pub(super) const RAM: u64 = 64 * MIB;
pub(super) const ROOT: u64 = 0x10_0000;
pub(super) const R: u64 = 1;
pub(super) const W: u64 = 2;
pub(super) const RW: u64 = 3;

/// An MSI sink that records what it was asked to deliver.
#[derive(Debug, Default)]
pub(super) struct Msis(pub Mutex<Vec<(u64, u32)>>);

impl MsiSink for Msis {
    fn send_msi(&self, address: u64, data: u32) -> bool {
        self.0.lock().unwrap().push((address, data));
        true
    }
}

impl Msis {
    pub fn take(&self) -> Vec<(u64, u32)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// A unit, its guest memory and a page allocator for tables.
pub(super) struct Rig {
    pub unit: Arc<VtdUnit>,
    pub guest: GuestMemoryMmap,
    pub msis: Arc<Msis>,
    next_page: u64,
}

pub(super) fn rid(bus: u8, dev: u8, func: u8) -> RequesterId {
    RequesterId::new(0, bus, dev, func)
}

impl Rig {
    /// A unit with an empty root table at `ROOT` latched (SRTP) but translation off.
    pub fn new(config: VtdConfig) -> Self {
        let guest = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), RAM as usize)]).unwrap();
        let msis = Arc::new(Msis::default());
        let unit = VtdUnit::new(config, guest.clone(), msis.clone()).unwrap();
        let rig = Self {
            unit,
            guest,
            msis,
            next_page: ROOT + 0x1000,
        };
        rig.w64(0x20, ROOT);
        rig.w32(0x18, 1 << 30);
        rig
    }

    /// Like `new`, with translation enabled.
    pub fn enabled(config: VtdConfig) -> Self {
        let rig = Self::new(config);
        rig.w32(0x18, 1 << 31);
        rig
    }

    pub fn w32(&self, offset: u64, value: u32) {
        self.unit.mmio_write(offset, &value.to_le_bytes());
    }
    pub fn w64(&self, offset: u64, value: u64) {
        self.unit.mmio_write(offset, &value.to_le_bytes());
    }
    pub fn r32(&self, offset: u64) -> u32 {
        let mut b = [0u8; 4];
        self.unit.mmio_read(offset, &mut b);
        u32::from_le_bytes(b)
    }
    pub fn r64(&self, offset: u64) -> u64 {
        let mut b = [0u8; 8];
        self.unit.mmio_read(offset, &mut b);
        u64::from_le_bytes(b)
    }

    pub fn alloc(&mut self) -> u64 {
        let page = self.next_page;
        self.next_page += 0x1000;
        // Pages are fresh (zero) memory; clear anyway so tests can reuse rigs.
        self.guest
            .write_slice(&[0u8; 0x1000], GuestAddress(page))
            .unwrap();
        page
    }

    pub fn write_u64(&self, addr: u64, value: u64) {
        self.guest.write_obj(value, GuestAddress(addr)).unwrap();
    }
    pub fn read_u64(&self, addr: u64) -> u64 {
        self.guest.read_obj(GuestAddress(addr)).unwrap()
    }

    /// The context table of `bus`, creating it (root entry present) if needed.
    pub fn context_table(&mut self, bus: u8) -> u64 {
        let entry = self.read_u64(ROOT + u64::from(bus) * 16);
        if entry & 1 != 0 {
            return entry & !0xfff;
        }
        let table = self.alloc();
        self.write_u64(ROOT + u64::from(bus) * 16, table | 1);
        table
    }

    /// Writes a raw context entry for `rid`.
    pub fn set_context_raw(&mut self, rid: RequesterId, lo: u64, hi: u64) {
        let table = self.context_table(rid.bus);
        let at = table + u64::from(rid.devfn) * 16;
        self.write_u64(at, lo);
        self.write_u64(at + 8, hi);
    }

    /// A translated context for `rid` in domain `did` with `aw` (1: 3-level, 2: 4-level) and a
    /// new, empty top-level table, which is returned.
    pub fn translated(&mut self, rid: RequesterId, did: u16, aw: u64) -> u64 {
        let top = self.alloc();
        self.set_context_raw(rid, top | 1, aw | u64::from(did) << 8);
        top
    }

    /// A pass-through context for `rid`.
    pub fn pass_through(&mut self, rid: RequesterId, did: u16) {
        self.set_context_raw(rid, 0b10 << 2 | 1, 2 | u64::from(did) << 8);
    }

    /// Maps `iova` → `gpa` with a leaf of `size` (4 KiB, 2 MiB, 1 GiB) under `top`, `levels`
    /// deep; intermediate entries are R|W. Returns the leaf entry's address.
    pub fn map(&mut self, top: u64, levels: u8, iova: u64, gpa: u64, size: u64, perms: u64) -> u64 {
        let leaf_level = match size {
            0x1000 => 1,
            0x20_0000 => 2,
            0x4000_0000 => 3,
            _ => panic!("bad size"),
        };
        let mut table = top;
        let mut level = levels;
        loop {
            let shift = 12 + 9 * u64::from(level - 1);
            let at = table + ((iova >> shift) & 0x1ff) * 8;
            if level == leaf_level {
                let ps = if level > 1 { 1 << 7 } else { 0 };
                self.write_u64(at, gpa | perms | ps);
                return at;
            }
            let entry = self.read_u64(at);
            table = if entry & 3 != 0 {
                entry & !0xfff & ((1 << 52) - 1)
            } else {
                let next = self.alloc();
                self.write_u64(at, next | RW);
                next
            };
            level -= 1;
        }
    }

    pub fn translate(
        &self,
        rid: RequesterId,
        iova: u64,
        access: Permissions,
    ) -> Result<Translation, DmaFault> {
        self.unit.translate(rid, iova, 4, access)
    }

    /// The GPA `iova` reads from.
    pub fn gpa(&self, rid: RequesterId, iova: u64) -> u64 {
        let t = self.translate(rid, iova, Permissions::Read).unwrap();
        assert!(
            t.iova <= iova && iova < t.iova + t.len,
            "{t:x?} misses {iova:#x}"
        );
        t.gpa + (iova - t.iova)
    }

    /// Fault recording register `i`: (lo, hi).
    pub fn frcd(&self, i: u64) -> (u64, u64) {
        (self.r64(0x220 + 16 * i), self.r64(0x228 + 16 * i))
    }

    /// Turns on queued invalidation with a 256-entry queue at a fresh page run.
    pub fn enable_qi(&mut self) -> u64 {
        let base = self.alloc();
        for _ in 0..3 {
            self.alloc();
        }
        self.w32(0x88, 0);
        self.w64(0x90, base);
        // Like Linux: its cached command image (TE) plus QIE, never the one-shot SRTP.
        self.w32(0x18, (self.r32(0x1c) & 1 << 31) | 1 << 26);
        assert_ne!(self.r32(0x1c) & 1 << 26, 0);
        base
    }

    /// Appends descriptors at IQT and rings the doorbell with a 32-bit IQT write.
    pub fn submit(&self, base: u64, descriptors: &[(u64, u64)]) {
        let mut tail = self.r64(0x88);
        for &(lo, hi) in descriptors {
            self.write_u64(base + tail, lo);
            self.write_u64(base + tail + 8, hi);
            tail = (tail + 16) % (256 * 16);
        }
        self.w32(0x88, tail as u32);
    }
}

/// An invalidation wait descriptor with status write of `data` to `addr`.
pub(super) fn wait_sw(addr: u64, data: u32) -> (u64, u64) {
    (5 | 1 << 5 | u64::from(data) << 32, addr)
}

/// An IOTLB invalidation descriptor.
pub(super) fn iotlb_desc(granularity: u64, did: u16, addr: u64, am: u64) -> (u64, u64) {
    (2 | granularity << 4 | u64::from(did) << 16, addr | am)
}

/// A context-cache invalidation descriptor.
pub(super) fn context_desc(granularity: u64, did: u16, sid: u16, fm: u64) -> (u64, u64) {
    (
        1 | granularity << 4 | u64::from(did) << 16 | u64::from(sid) << 32 | fm << 48,
        0,
    )
}
