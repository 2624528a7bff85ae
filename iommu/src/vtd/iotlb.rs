//! The IOTLB (leaf translations tagged by domain id) and the context cache (source id →
//! decoded context). Both are bounded and flushed wholesale when full, like QEMU's.

use std::collections::HashMap;

use super::context::Context;
use super::walk::Leaf;

/// Most IOTLB entries kept.
pub(crate) const IOTLB_CAPACITY: usize = 1024;
/// Most context-cache entries kept.
pub(crate) const CONTEXT_CAPACITY: usize = 4096;

/// Page-size shifts of the leaves we cache: 4 KiB, 2 MiB, 1 GiB.
const SHIFTS: [u32; 3] = [12, 21, 30];

/// Successful leaf translations. Nothing not-present or faulting is ever stored.
#[derive(Debug, Default)]
pub(crate) struct Iotlb {
    /// (domain id, page-size shift, iova >> shift) → leaf.
    entries: HashMap<(u16, u32, u64), Leaf>,
}

impl Iotlb {
    pub(crate) fn lookup(&self, did: u16, iova: u64) -> Option<Leaf> {
        SHIFTS
            .iter()
            .find_map(|&shift| self.entries.get(&(did, shift, iova >> shift)).copied())
    }

    pub(crate) fn insert(&mut self, did: u16, leaf: Leaf) {
        if self.entries.len() >= IOTLB_CAPACITY {
            self.entries.clear();
        }
        let shift = leaf.size.trailing_zeros();
        self.entries.insert((did, shift, leaf.iova >> shift), leaf);
    }

    pub(crate) fn remove(&mut self, did: u16, leaf: &Leaf) {
        let shift = leaf.size.trailing_zeros();
        self.entries.remove(&(did, shift, leaf.iova >> shift));
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    pub(crate) fn invalidate_domain(&mut self, did: u16) {
        self.entries.retain(|&(d, _, _), _| d != did);
    }

    /// Drops the entries of `did` that overlap `[start, end)`.
    pub(crate) fn invalidate_range(&mut self, did: u16, start: u64, end: u64) {
        self.entries.retain(|&(d, _, _), leaf| {
            d != did || leaf.iova >= end || leaf.iova.saturating_add(leaf.size) <= start
        });
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Decoded context entries by source id.
#[derive(Debug, Default)]
pub(crate) struct ContextCache {
    entries: HashMap<u16, Context>,
}

impl ContextCache {
    pub(crate) fn get(&self, sid: u16) -> Option<Context> {
        self.entries.get(&sid).copied()
    }

    pub(crate) fn insert(&mut self, sid: u16, context: Context) {
        if self.entries.len() >= CONTEXT_CAPACITY {
            self.entries.clear();
        }
        self.entries.insert(sid, context);
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    pub(crate) fn invalidate_domain(&mut self, did: u16) {
        self.entries.retain(|_, c| c.did != did);
    }

    /// Drops the entries whose source id matches `sid` outside the function bits masked by
    /// `fm` (0: none, 1: bit 2, 2: bits 2:1, 3: bits 2:0).
    pub(crate) fn invalidate_device(&mut self, sid: u16, fm: u8) {
        let mask = sid_mask(fm);
        self.entries.retain(|&s, _| s & mask != sid & mask);
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The source-id bits compared under function mask `fm`.
pub(crate) fn sid_mask(fm: u8) -> u16 {
    match fm & 3 {
        0 => 0xffff,
        1 => 0xfffb,
        2 => 0xfff9,
        _ => 0xfff8,
    }
}
