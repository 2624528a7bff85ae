//! Counters: what the unit did, for tests, state dumps and driver debugging.

use std::collections::BTreeMap;

use super::trace::InvalidationKind;

/// A snapshot of the unit's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VtdStats {
    /// Successful translations per domain id (translated and pass-through contexts).
    pub translations_per_domain: BTreeMap<u16, u64>,
    /// Accesses passed through untranslated because translation was off.
    pub untranslated: u64,
    /// IOTLB hits.
    pub iotlb_hits: u64,
    /// IOTLB misses (page walks).
    pub iotlb_misses: u64,
    /// Context-cache hits.
    pub context_hits: u64,
    /// Context-cache misses (root/context table reads).
    pub context_misses: u64,
    /// Faults written to a fault recording register.
    pub faults_recorded: u64,
    /// Faults dropped (compression or overflow).
    pub faults_dropped: u64,
    /// Faults not reported because the context entry had FPD set.
    pub faults_suppressed: u64,
    /// Invalidations performed, by kind.
    pub invalidations: BTreeMap<InvalidationKind, u64>,
    /// Invalidation wait descriptors completed.
    pub waits: u64,
    /// Invalidation queue errors (FSTS.IQE).
    pub queue_errors: u64,
}
