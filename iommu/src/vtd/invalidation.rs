//! Invalidation: the cache operations, the register-based interface (CCMD, IVA/IOTLB) and the
//! queued interface (128-bit descriptors, processed synchronously in the IQT write).

use vm_memory::{Bytes, GuestAddress};

use super::config::MAMV;
use super::context;
use super::regs::*;
use super::state::{Effects, State};
use super::trace::{InvalidationKind, VtdEvent};
use super::walk;
use crate::RequesterId;

/// Most leaves announced for one page-selective invalidation in caching mode.
const MAX_ANNOUNCED_LEAVES: usize = 512;

/// An invalidation wait descriptor waiting for DMA in flight to drain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Wait {
    /// Byte offset of the descriptor in the queue (IQH while it waits).
    head: u64,
    status: Option<(u64, u32)>,
    interrupt: bool,
}

/// A decoded queued descriptor.
enum Descriptor {
    Context {
        kind: InvalidationKind,
        did: u16,
        sid: u16,
        fm: u8,
    },
    Iotlb {
        kind: InvalidationKind,
        did: u16,
        addr: u64,
        am: u8,
    },
    Ignored(InvalidationKind),
    Wait(Wait),
}

fn context_kind(granularity: u64) -> Option<InvalidationKind> {
    match granularity {
        1 => Some(InvalidationKind::ContextGlobal),
        2 => Some(InvalidationKind::ContextDomain),
        3 => Some(InvalidationKind::ContextDevice),
        _ => None,
    }
}

fn iotlb_kind(granularity: u64) -> Option<InvalidationKind> {
    match granularity {
        1 => Some(InvalidationKind::IotlbGlobal),
        2 => Some(InvalidationKind::IotlbDomain),
        3 => Some(InvalidationKind::IotlbPage),
        _ => None,
    }
}

/// Decodes a 128-bit descriptor; reserved bits are those QEMU's masks reserve.
fn decode(lo: u64, hi: u64, head: u64) -> Result<Descriptor, &'static str> {
    // Bits 11:9 extend the type field; no legacy-mode descriptor uses them.
    if lo & 0xe00 != 0 {
        return Err("unknown descriptor type");
    }
    match lo & 0xf {
        1 => {
            if lo & 0xFFFC_0000_0000_FFC0 != 0 || hi != 0 {
                return Err("reserved bits in context-cache descriptor");
            }
            let kind = context_kind((lo >> 4) & 3).ok_or("context-cache granularity 0")?;
            Ok(Descriptor::Context {
                kind,
                did: (lo >> 16) as u16,
                sid: (lo >> 32) as u16,
                fm: ((lo >> 48) & 3) as u8,
            })
        }
        2 => {
            if lo & 0xFFFF_FFFF_0000_F100 != 0 || hi & 0xf80 != 0 {
                return Err("reserved bits in IOTLB descriptor");
            }
            let kind = iotlb_kind((lo >> 4) & 3).ok_or("IOTLB granularity 0")?;
            let am = (hi & 0x3f) as u8;
            if kind == InvalidationKind::IotlbPage && am > MAMV {
                return Err("IOTLB address mask above MAMV");
            }
            Ok(Descriptor::Iotlb {
                kind,
                did: (lo >> 16) as u16,
                addr: hi & !0xfff,
                am,
            })
        }
        // No ATS (ECAP.DT = 0) and no interrupt remapping (ECAP.IR = 0): nothing cached.
        3 => Ok(Descriptor::Ignored(InvalidationKind::DeviceTlb)),
        4 => Ok(Descriptor::Ignored(InvalidationKind::InterruptEntry)),
        5 => {
            if lo & 0xFFFF_F180 != 0 || hi & 3 != 0 {
                return Err("reserved bits in invalidation wait descriptor");
            }
            let status = (lo & (1 << 5) != 0).then_some((hi & !3, (lo >> 32) as u32));
            Ok(Descriptor::Wait(Wait {
                head,
                status,
                interrupt: lo & (1 << 4) != 0,
            }))
        }
        _ => Err("unknown descriptor type"),
    }
}

impl State {
    /// Invalidates context-cache entries (and ends the announced address spaces whose context
    /// is gone or changed).
    pub(crate) fn invalidate_context(
        &mut self,
        via: &'static str,
        kind: InvalidationKind,
        did: u16,
        sid: u16,
        fm: u8,
        fx: &mut Effects,
    ) {
        self.count_invalidation(kind);
        let device = kind == InvalidationKind::ContextDevice;
        self.trace(|| VtdEvent::Invalidation {
            via,
            kind,
            did: (kind == InvalidationKind::ContextDomain).then_some(did),
            addr: device.then_some(u64::from(sid)),
            mask: device.then_some(fm),
        });
        let mask = super::iotlb::sid_mask(fm);
        let in_scope = |s: u16, d: u16| match kind {
            InvalidationKind::ContextDomain => d == did,
            InvalidationKind::ContextDevice => s & mask == sid & mask,
            _ => true,
        };
        match kind {
            InvalidationKind::ContextDomain => self.contexts.invalidate_domain(did),
            InvalidationKind::ContextDevice => self.contexts.invalidate_device(sid, fm),
            _ => self.contexts.clear(),
        }
        if !self.observed || !self.regs.translation_enabled() {
            return;
        }
        let records = self.announced.records();
        let mut changed = Vec::new();
        for (s, d, mode) in records {
            if !in_scope(s, d) {
                continue;
            }
            let now = context::lookup(
                &self.guest,
                &self.config,
                self.regs.root_table,
                (s >> 8) as u8,
                s as u8,
            );
            if !matches!(now, Ok(c) if c.did == d && c.mode == mode) {
                changed.push(s);
            }
        }
        self.announced
            .end_spaces(|s, _| changed.contains(&s), &mut fx.events);
        // A device-selective invalidation announces a new context (caching mode sends one for
        // every context it creates): start its record so later page invalidations map into it.
        if device && fm == 0 {
            let rid = RequesterId {
                segment: 0,
                bus: (sid >> 8) as u8,
                devfn: sid as u8,
            };
            if let Ok(c) = context::lookup(
                &self.guest,
                &self.config,
                self.regs.root_table,
                rid.bus,
                rid.devfn,
            ) {
                self.announced
                    .note_context(rid, &c, self.config.aw_bits, &mut fx.events);
            }
        }
    }

    /// Invalidates IOTLB entries and unmaps what was announced for them; in caching mode a
    /// page-selective invalidation also announces the range's present leaves.
    pub(crate) fn invalidate_iotlb(
        &mut self,
        via: &'static str,
        kind: InvalidationKind,
        did: u16,
        addr: u64,
        am: u8,
        fx: &mut Effects,
    ) {
        self.count_invalidation(kind);
        let page = kind == InvalidationKind::IotlbPage;
        self.trace(|| VtdEvent::Invalidation {
            via,
            kind,
            did: (kind != InvalidationKind::IotlbGlobal).then_some(did),
            addr: page.then_some(addr),
            mask: page.then_some(am),
        });
        match kind {
            InvalidationKind::IotlbDomain => {
                self.iotlb.invalidate_domain(did);
                self.announced.unmap(Some(did), 0, u64::MAX, &mut fx.events);
            }
            InvalidationKind::IotlbPage => {
                let size = 0x1000u64.checked_shl(u32::from(am)).unwrap_or(0);
                let start = addr & !size.wrapping_sub(1);
                let end = start.saturating_add(size);
                self.iotlb.invalidate_range(did, start, end);
                self.announced.unmap(Some(did), start, end, &mut fx.events);
                if self.config.caching_mode && self.observed {
                    self.announce_range(did, start, end, fx);
                }
            }
            _ => {
                self.iotlb.clear();
                self.announced.unmap(None, 0, u64::MAX, &mut fx.events);
            }
        }
    }

    fn announce_range(&mut self, did: u16, start: u64, end: u64, fx: &mut Effects) {
        for (rid, root, levels, width) in self.announced.translated_spaces(did) {
            let limit = 1u64.checked_shl(u32::from(width)).unwrap_or(u64::MAX);
            let leaves = walk::present_leaves(
                &self.guest,
                root,
                levels,
                self.config.aw_bits,
                start,
                end.min(limit),
                MAX_ANNOUNCED_LEAVES,
            );
            for leaf in leaves {
                self.announced.note_leaf(rid, &leaf, &mut fx.events);
            }
        }
    }

    /// CCMD written with ICC set: invalidate now; ICC clears after the drain.
    pub(crate) fn register_context_invalidation(&mut self, fx: &mut Effects) {
        let ccmd = self.regs.ccmd;
        let caig = match context_kind((ccmd >> 61) & 3) {
            Some(kind) => {
                let did = ccmd as u16;
                let sid = (ccmd >> 16) as u16;
                let fm = ((ccmd >> 32) & 3) as u8;
                self.invalidate_context("register", kind, did, sid, fm, fx);
                (ccmd >> 61) & 3
            }
            None => {
                log::warn!("vtd: CCMD invalidation with granularity 0 ignored");
                0
            }
        };
        self.regs.ccmd = (ccmd & !(3 << CCMD_CAIG_SHIFT)) | caig << CCMD_CAIG_SHIFT;
        fx.drain = true;
        fx.complete_ccmd = true;
    }

    /// IOTLB register written with IVT set: invalidate now; IVT clears after the drain.
    pub(crate) fn register_iotlb_invalidation(&mut self, fx: &mut Effects) {
        let command = self.regs.iotlb;
        let did = (command >> 32) as u16;
        let iva = self.regs.iva;
        let (addr, am) = (iva & !0xfff, (iva & 0x3f) as u8);
        let iaig = match iotlb_kind((command >> 60) & 3) {
            // Too large a mask: do a domain-selective invalidation and say so in IAIG.
            Some(InvalidationKind::IotlbPage) if am > MAMV => {
                self.invalidate_iotlb("register", InvalidationKind::IotlbDomain, did, 0, 0, fx);
                2
            }
            Some(kind) => {
                self.invalidate_iotlb("register", kind, did, addr, am, fx);
                (command >> 60) & 3
            }
            None => {
                log::warn!("vtd: IOTLB invalidation with granularity 0 ignored");
                0
            }
        };
        self.regs.iotlb = (command & !(3 << IOTLB_IAIG_SHIFT)) | iaig << IOTLB_IAIG_SHIFT;
        fx.drain = true;
        fx.complete_iotlb = true;
    }

    /// IQT written: check it and, if there is work and nobody is doing it, take the job.
    pub(crate) fn queue_tail_written(&mut self, fx: &mut Effects) {
        if !self.regs.qi_enabled() {
            return;
        }
        if self.regs.iqt / 16 >= self.regs.queue_len {
            let index = self.regs.iqt / 16;
            self.queue_error(index, "tail beyond the end of the queue", fx);
            return;
        }
        self.claim_queue(fx);
    }

    /// Makes this caller the queue runner if there is work and no runner.
    pub(crate) fn claim_queue(&mut self, fx: &mut Effects) {
        if self.regs.qi_enabled()
            && self.regs.fsts & FSTS_IQE == 0
            && self.regs.iqh != self.regs.iqt
            && !self.queue_running
        {
            self.queue_running = true;
            fx.run_queue = true;
        }
    }

    /// Processes descriptors from IQH until the queue is empty (returns None, giving up the
    /// runner role), an error stops it (likewise), or a wait descriptor needs a drain.
    pub(crate) fn process_queue(&mut self, fx: &mut Effects) -> Option<Wait> {
        let queue_bytes = self.regs.queue_len.saturating_mul(16);
        // The tail cannot move while we hold the lock: at most one pass over the queue.
        for _ in 0..=self.regs.queue_len {
            let head = self.regs.iqh;
            if !self.regs.qi_enabled()
                || self.regs.fsts & FSTS_IQE != 0
                || head == self.regs.iqt
                || self.regs.iqt >= queue_bytes
            {
                break;
            }
            let index = head / 16;
            let Some((lo, hi)) = self.read_descriptor(head) else {
                self.queue_error(index, "descriptor not in guest memory", fx);
                break;
            };
            self.trace(|| VtdEvent::Descriptor { index, lo, hi });
            match decode(lo, hi, head) {
                Err(why) => {
                    // IQH stays at the bad descriptor; fetching stops until IQE is cleared.
                    self.queue_error(index, why, fx);
                    break;
                }
                Ok(Descriptor::Wait(wait)) => return Some(wait),
                Ok(Descriptor::Context { kind, did, sid, fm }) => {
                    self.invalidate_context("queued", kind, did, sid, fm, fx)
                }
                Ok(Descriptor::Iotlb {
                    kind,
                    did,
                    addr,
                    am,
                }) => self.invalidate_iotlb("queued", kind, did, addr, am, fx),
                Ok(Descriptor::Ignored(kind)) => {
                    self.count_invalidation(kind);
                    self.trace(|| VtdEvent::Invalidation {
                        via: "queued",
                        kind,
                        did: None,
                        addr: None,
                        mask: None,
                    });
                }
            }
            self.regs.iqh = (head + 16) % queue_bytes.max(16);
        }
        self.queue_running = false;
        None
    }

    fn read_descriptor(&self, head: u64) -> Option<(u64, u64)> {
        let addr = self.regs.queue_base.checked_add(head)?;
        let lo = self.guest.read_obj::<u64>(GuestAddress(addr)).ok()?;
        let hi = self
            .guest
            .read_obj::<u64>(GuestAddress(addr.checked_add(8)?))
            .ok()?;
        Some((lo, hi))
    }

    /// Completes a wait descriptor after the drain: status write, completion interrupt, and
    /// IQH moves past it. Returns false if the queue changed under us (reset, disable).
    pub(crate) fn complete_wait(&mut self, wait: Wait, fx: &mut Effects) -> bool {
        if !self.regs.qi_enabled() || self.regs.iqh != wait.head {
            self.queue_running = false;
            return false;
        }
        if let Some((addr, data)) = wait.status
            && self.guest.write_obj(data, GuestAddress(addr)).is_err()
        {
            log::warn!("vtd: invalidation wait status address {addr:#x} is not memory");
        }
        if wait.interrupt && self.regs.ics & ICS_IWC == 0 {
            self.regs.ics |= ICS_IWC;
            self.regs.iectl |= CTL_IP;
            if self.regs.iectl & CTL_IM == 0 {
                fx.msis.push(self.regs.completion_msi());
                self.regs.iectl &= !CTL_IP;
            }
        }
        self.stats.waits += 1;
        self.trace(|| VtdEvent::WaitComplete {
            status: wait.status,
            interrupt: wait.interrupt,
        });
        let queue_bytes = self.regs.queue_len.saturating_mul(16).max(16);
        self.regs.iqh = (wait.head + 16) % queue_bytes;
        true
    }
}
