//! [`VtdUnit`]: the shared handle vCPU threads (MMIO) and device threads (DMA) use. One lock
//! guards the state; it is never held while draining DMA, notifying observers or sending MSIs.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use vm_memory::{GuestMemoryMmap, Permissions};

use super::config::{PAGE, VtdConfig};
use super::context;
use super::notifier::{MappingEvent, MappingObserver, ObserverId};
use super::regs;
use super::state::{Effects, State};
use super::stats::VtdStats;
use super::trace::{Tracer, VtdEvent};
use crate::{DmaFault, DmaFence, DmaGuard, DmaTranslate, Error, MsiSink, RequesterId, Translation};

/// An emulated VT-d remapping unit (one DRHD).
pub struct VtdUnit {
    config: VtdConfig,
    state: Mutex<State>,
    fence: DmaFence,
    msi: Arc<dyn MsiSink>,
    observers: RwLock<Vec<(ObserverId, Arc<dyn MappingObserver>)>>,
    next_observer: AtomicU64,
}

impl fmt::Debug for VtdUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VtdUnit")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl VtdUnit {
    /// A unit in its power-on state translating DMA into `guest`, raising its interrupts
    /// (fault events, invalidation completion) through `msi`.
    pub fn new(
        config: VtdConfig,
        guest: GuestMemoryMmap,
        msi: Arc<dyn MsiSink>,
    ) -> Result<Arc<Self>, Error> {
        config.validate()?;
        Ok(Arc::new(Self {
            config,
            state: Mutex::new(State::new(config, guest)),
            fence: DmaFence::new(),
            msi,
            observers: RwLock::new(Vec::new()),
            next_observer: AtomicU64::new(1),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every state change is completed before a panic could unwind through it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The configuration.
    pub fn config(&self) -> VtdConfig {
        self.config
    }

    /// The Capability register value.
    pub fn cap(&self) -> u64 {
        self.config.cap()
    }

    /// The Extended Capability register value.
    pub fn ecap(&self) -> u64 {
        self.config.ecap()
    }

    /// A read of `data.len()` bytes (4 or 8, naturally aligned) at `offset` in the register
    /// page. Other sizes, misaligned or out-of-page accesses read as zeros.
    pub fn mmio_read(&self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        let size = data.len();
        if !(size == 4 || size == 8) || !offset.is_multiple_of(size as u64) || offset >= PAGE {
            log::debug!("vtd: ignored {size}-byte read at {offset:#x}");
            return;
        }
        let state = self.lock();
        let low = u64::from(state.read_dword(offset, &self.config));
        let value = if size == 8 {
            low | u64::from(state.read_dword(offset + 4, &self.config)) << 32
        } else {
            low
        };
        state.trace(|| VtdEvent::RegisterRead {
            offset,
            name: regs::name(offset, self.config.fault_records),
            size,
            value,
        });
        drop(state);
        for (byte, value) in data.iter_mut().zip(value.to_le_bytes()) {
            *byte = value;
        }
    }

    /// A write of `data` (4 or 8 bytes, naturally aligned) at `offset` in the register page.
    /// Everything the write commands has happened when this returns (Linux polls status
    /// registers with a panic timeout), including queued invalidations up to IQT.
    pub fn mmio_write(&self, offset: u64, data: &[u8]) {
        let size = data.len();
        if !(size == 4 || size == 8) || !offset.is_multiple_of(size as u64) || offset >= PAGE {
            log::debug!("vtd: ignored {size}-byte write at {offset:#x}");
            return;
        }
        let mut bytes = [0u8; 8];
        for (byte, value) in bytes.iter_mut().zip(data) {
            *byte = *value;
        }
        let value = u64::from_le_bytes(bytes);
        let mut fx = Effects::default();
        self.lock().write(offset, size, value, &mut fx);
        self.finish(fx);
    }

    /// Carries out what an operation left for after the lock: notifications, then the drain
    /// and the completions that wait for it, then interrupts, then the invalidation queue.
    fn finish(&self, fx: Effects) {
        self.notify(&fx.events);
        if fx.drain {
            self.fence.drain();
        }
        if fx.complete_ccmd || fx.complete_iotlb {
            let mut state = self.lock();
            if fx.complete_ccmd {
                state.regs.ccmd &= !regs::CCMD_ICC;
            }
            if fx.complete_iotlb {
                state.regs.iotlb &= !regs::IOTLB_IVT;
            }
        }
        self.send(&fx.msis);
        if fx.run_queue {
            self.run_queue();
        }
    }

    fn notify(&self, events: &[MappingEvent]) {
        if events.is_empty() {
            return;
        }
        let observers = self
            .observers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for event in events {
            for (_, observer) in &observers {
                observer.on_event(event);
            }
        }
    }

    fn send(&self, msis: &[(u64, u32)]) {
        for &(address, data) in msis {
            if !self.msi.send_msi(address, data) {
                log::warn!("vtd: interrupt {data:#x} to {address:#x} not delivered");
            }
        }
    }

    /// Runs the invalidation queue until it is empty, draining DMA before every wait
    /// descriptor completes (principle 4). The lock is released around each drain.
    fn run_queue(&self) {
        loop {
            let mut fx = Effects::default();
            let wait = self.lock().process_queue(&mut fx);
            self.notify(&fx.events);
            self.send(&fx.msis);
            let Some(wait) = wait else {
                return;
            };
            // A DMA in flight may need the lock to translate its next page: drain without it.
            self.fence.drain();
            let mut fx = Effects::default();
            let completed = self.lock().complete_wait(wait, &mut fx);
            self.send(&fx.msis);
            if !completed {
                return;
            }
        }
    }

    /// Back to the power-on state (system reset). Observers are told every address space is
    /// gone; the tracer and subscriptions stay.
    pub fn reset(&self) {
        let mut fx = Effects::default();
        self.lock().reset(&mut fx);
        fx.drain = true;
        self.finish(fx);
    }

    /// Sets (or with `None` removes) the tracer. It is called with the unit's lock held and
    /// must not call back into the unit.
    pub fn set_tracer(&self, tracer: Option<Tracer>) {
        self.lock().tracer = tracer;
    }

    /// Subscribes `observer` to mapping events from now on. Address spaces already in use are
    /// announced again as devices next translate (the context cache is dropped for that).
    pub fn subscribe(&self, observer: Arc<dyn MappingObserver>) -> ObserverId {
        let id = ObserverId(self.next_observer.fetch_add(1, Ordering::Relaxed));
        let mut state = self.lock();
        let mut observers = self
            .observers
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        observers.push((id, observer));
        if !state.observed {
            // Records are built as contexts and translations are looked up: make them be.
            state.observed = true;
            state.contexts.clear();
            state.iotlb.clear();
        }
        id
    }

    /// Ends a subscription. Returns false if `id` was not subscribed.
    pub fn unsubscribe(&self, id: ObserverId) -> bool {
        let mut state = self.lock();
        let mut observers = self
            .observers
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let before = observers.len();
        observers.retain(|(i, _)| *i != id);
        if observers.is_empty() {
            state.observed = false;
            state.announced.clear();
        }
        observers.len() != before
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> VtdStats {
        self.lock().stats.clone()
    }

    /// The registers and every present root and context entry, for a state-dump command.
    pub fn dump_state(&self) -> String {
        let state = self.lock();
        let mut out = String::new();
        let r = &state.regs;
        let _ = writeln!(
            out,
            "VT-d: cap {:#018x} ecap {:#018x} gsts {:#010x} rtaddr {:#x} (active {:#x})",
            self.cap(),
            self.ecap(),
            r.gsts,
            r.rtaddr,
            r.root_table
        );
        let _ = writeln!(
            out,
            "  fsts {:#x} fectl {:#x} fe msi {:#x}/{:#x} ccmd {:#x} iotlb {:#x}",
            state.fsts(),
            r.fectl,
            r.fault_msi().0,
            r.fault_msi().1,
            r.ccmd,
            r.iotlb
        );
        let _ = writeln!(
            out,
            "  iqa {:#x} iqh {:#x} iqt {:#x} ics {:#x} iectl {:#x} ie msi {:#x}/{:#x}",
            r.iqa,
            r.iqh,
            r.iqt,
            r.ics,
            r.iectl,
            r.completion_msi().0,
            r.completion_msi().1
        );
        for (i, record) in state.faults.records.iter().enumerate() {
            if record.pending() {
                let _ = writeln!(out, "  frcd[{i}] {:#018x}:{:#018x}", record.hi, record.lo);
            }
        }
        let _ = writeln!(
            out,
            "  iotlb entries {} context cache entries {}",
            state.iotlb.len(),
            state.contexts.len()
        );
        for bus in 0..=255u8 {
            let Some((lo, hi)) = context::root_entry(&state.guest, r.root_table, bus) else {
                let _ = writeln!(out, "  root table at {:#x} unreadable", r.root_table);
                break;
            };
            if lo & 1 == 0 {
                continue;
            }
            let _ = writeln!(out, "  root[{bus:02x}] {hi:#018x}:{lo:#018x}");
            for devfn in 0..=255u8 {
                let Some((clo, chi)) = context::context_entry(&state.guest, lo & !0xfff, devfn)
                else {
                    let _ = writeln!(out, "    context table unreadable");
                    break;
                };
                if clo & 1 == 0 {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "    {bus:02x}:{:02x}.{} did={} tt={} aw={} fpd={} slptptr={:#x}",
                    devfn >> 3,
                    devfn & 7,
                    (chi >> 8) & 0xffff,
                    (clo >> 2) & 3,
                    chi & 7,
                    (clo >> 1) & 1,
                    clo & !0xfff
                );
            }
        }
        out
    }
}

impl DmaTranslate for VtdUnit {
    fn translate(
        &self,
        rid: RequesterId,
        iova: u64,
        len: u64,
        access: Permissions,
    ) -> Result<Translation, DmaFault> {
        let mut fx = Effects::default();
        let result = self.lock().translate(rid, iova, len, access, &mut fx);
        self.notify(&fx.events);
        self.send(&fx.msis);
        result
    }

    fn dma_begin(&self) -> DmaGuard<'_> {
        self.fence.enter()
    }
}
