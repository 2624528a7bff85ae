//! The unit's mutable state, behind one lock, and the side effects an operation leaves for
//! after the lock is released (notifications, drains, interrupts).

use vm_memory::GuestMemoryMmap;

use super::config::VtdConfig;
use super::fault::{FaultReason, FaultRecord, FaultRecords, Recorded};
use super::iotlb::{ContextCache, Iotlb};
use super::notifier::{Announced, MappingEvent};
use super::regs::{self, Registers};
use super::stats::VtdStats;
use super::trace::{InvalidationKind, Tracer, VtdEvent};

/// What an operation asks the unit to do once the state lock is released.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// Mapping events, in order, delivered before anything below.
    pub events: Vec<MappingEvent>,
    /// Wait for every DMA in flight (principle 4).
    pub drain: bool,
    /// After the drain: clear CCMD.ICC / IOTLB.IVT (register-based invalidation completes).
    pub complete_ccmd: bool,
    pub complete_iotlb: bool,
    /// Interrupts to send: (address, data).
    pub msis: Vec<(u64, u32)>,
    /// The invalidation queue has work and this caller must run it.
    pub run_queue: bool,
}

/// Everything behind the unit's lock.
pub(crate) struct State {
    pub config: VtdConfig,
    pub guest: GuestMemoryMmap,
    pub regs: Registers,
    pub faults: FaultRecords,
    pub iotlb: Iotlb,
    pub contexts: ContextCache,
    pub announced: Announced,
    /// Whether anyone listens for mapping events (records are kept only then).
    pub observed: bool,
    pub stats: VtdStats,
    pub tracer: Option<Tracer>,
    /// A thread is processing the invalidation queue (it re-reads IQT until head == tail).
    pub queue_running: bool,
}

impl State {
    pub(crate) fn new(config: VtdConfig, guest: GuestMemoryMmap) -> Self {
        Self {
            config,
            guest,
            regs: Registers::reset(),
            faults: FaultRecords::new(config.fault_records),
            iotlb: Iotlb::default(),
            contexts: ContextCache::default(),
            announced: Announced::default(),
            observed: false,
            stats: VtdStats::default(),
            tracer: None,
            queue_running: false,
        }
    }

    /// Emits a trace event; `make` runs only when a tracer is set.
    pub(crate) fn trace(&self, make: impl FnOnce() -> VtdEvent) {
        if let Some(tracer) = &self.tracer {
            tracer(&make());
        }
    }

    pub(crate) fn count_invalidation(&mut self, kind: InvalidationKind) {
        *self.stats.invalidations.entry(kind).or_insert(0) += 1;
    }

    /// FSTS as software reads it: stored bits, PPF from the records, FRI.
    pub(crate) fn fsts(&self) -> u32 {
        let ppf = if self.faults.any_pending() {
            regs::FSTS_PPF
        } else {
            0
        };
        let fri = self.faults.first_pending().unwrap_or(0) as u32 & 0xff;
        self.regs.fsts | ppf | fri << 8
    }

    /// Whether a fault condition is already pending, in which case no new fault event is sent.
    fn fault_condition_pending(&self) -> bool {
        self.fsts()
            & (regs::FSTS_PFO | regs::FSTS_PPF | regs::FSTS_IQE | regs::FSTS_ICE | regs::FSTS_ITE)
            != 0
    }

    /// Raises the fault event: pending, and sent now unless masked.
    pub(crate) fn fault_event(&mut self, fx: &mut Effects) {
        self.regs.fectl |= regs::CTL_IP;
        if self.regs.fectl & regs::CTL_IM == 0 {
            fx.msis.push(self.regs.fault_msi());
            self.regs.fectl &= !regs::CTL_IP;
        }
    }

    /// Clears FECTL.IP once software has cleared every fault condition.
    pub(crate) fn settle_fault_pending(&mut self) {
        if !self.fault_condition_pending() {
            self.regs.fectl &= !regs::CTL_IP;
        }
    }

    /// Records a translation fault (unless suppressed by FPD) and raises the fault event.
    pub(crate) fn record_fault(
        &mut self,
        sid: u16,
        addr: u64,
        reason: FaultReason,
        read: bool,
        fpd: bool,
        fx: &mut Effects,
    ) {
        if fpd && reason.qualified() {
            self.stats.faults_suppressed += 1;
            self.trace(|| VtdEvent::Fault {
                reason,
                sid,
                addr,
                read,
                outcome: "suppressed (FPD)",
            });
            return;
        }
        let was_pending = self.fault_condition_pending();
        let overflowed = self.regs.fsts & regs::FSTS_PFO != 0;
        let outcome = self
            .faults
            .record(overflowed, FaultRecord::new(sid, addr, reason, read));
        let label = match outcome {
            Recorded::At(_) => {
                self.stats.faults_recorded += 1;
                "recorded"
            }
            Recorded::Compressed => {
                self.stats.faults_dropped += 1;
                "compressed"
            }
            Recorded::Overflow => {
                self.stats.faults_dropped += 1;
                self.regs.fsts |= regs::FSTS_PFO;
                "overflow"
            }
        };
        log::debug!("vtd: fault sid {sid:#06x} addr {addr:#x} {reason} ({label})");
        self.trace(|| VtdEvent::Fault {
            reason,
            sid,
            addr,
            read,
            outcome: label,
        });
        if !was_pending && outcome != Recorded::Compressed {
            self.fault_event(fx);
        }
    }

    /// Sets an invalidation-queue error status bit and raises the fault event.
    pub(crate) fn queue_error(&mut self, index: u64, why: &'static str, fx: &mut Effects) {
        log::warn!("vtd: invalidation queue error at descriptor {index}: {why}");
        self.stats.queue_errors += 1;
        self.trace(|| VtdEvent::QueueError { index, why });
        let was_pending = self.fault_condition_pending();
        self.regs.fsts |= regs::FSTS_IQE;
        if !was_pending {
            self.fault_event(fx);
        }
    }

    /// Drops every cached translation and context.
    pub(crate) fn flush_caches(&mut self) {
        self.iotlb.clear();
        self.contexts.clear();
    }

    /// Ends every announced address space (root table replaced, translation off).
    pub(crate) fn end_all_spaces(&mut self, fx: &mut Effects) {
        self.announced.end_spaces(|_, _| true, &mut fx.events);
    }

    /// Power-on state, keeping the configuration, guest memory, tracer and subscriptions.
    pub(crate) fn reset(&mut self, fx: &mut Effects) {
        self.end_all_spaces(fx);
        self.regs = Registers::reset();
        self.faults.clear();
        self.flush_caches();
        // `queue_running` stays: a thread processing the queue notices QIES=0 and stops.
    }
}
