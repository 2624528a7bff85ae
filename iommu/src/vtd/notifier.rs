//! Mapping notifications (DESIGN.md principles 5 and 6): what mirrors of guest IOVA mappings
//! are told, and the per-requester records that make UNMAPs exact.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use vm_memory::Permissions;

use super::context::{Context, ContextMode};
use super::walk::Leaf;
use crate::RequesterId;

/// Most ranges remembered per requester; beyond it the lowest one is unmapped (announced as
/// UNMAP) to make room, so observers never keep a mapping we forgot.
pub(crate) const RANGES_PER_RID: usize = 4096;

/// A change in what a device's DMA can reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MappingEvent {
    /// `[iova, iova + size)` of `rid` (domain `did`) now maps to `[gpa, gpa + size)`.
    Map {
        /// The device.
        rid: RequesterId,
        /// Its domain id.
        did: u16,
        /// First I/O virtual address.
        iova: u64,
        /// Guest physical address of `iova`.
        gpa: u64,
        /// Bytes mapped.
        size: u64,
        /// Accesses allowed.
        perms: Permissions,
    },
    /// A range announced by `Map` is no longer valid.
    Unmap {
        /// The device.
        rid: RequesterId,
        /// Its domain id.
        did: u16,
        /// First I/O virtual address.
        iova: u64,
        /// Bytes unmapped.
        size: u64,
    },
    /// The whole address space of `rid` is going away (context gone or changed, root table
    /// replaced, translation disabled): every mapping announced for it is invalid. Sent before
    /// the invalidation that caused it completes.
    AddressSpaceGone {
        /// The device.
        rid: RequesterId,
        /// Its (former) domain id.
        did: u16,
    },
}

/// Something that mirrors guest IOVA mappings. Called without the unit's lock held, from the
/// thread that caused the change (a vCPU or a device thread).
pub trait MappingObserver: Send + Sync + fmt::Debug {
    /// One event, in order.
    fn on_event(&self, event: &MappingEvent);
}

/// Identifies a subscription, for [`super::VtdUnit::unsubscribe`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObserverId(pub(crate) u64);

#[derive(Debug)]
struct Space {
    rid: RequesterId,
    did: u16,
    mode: ContextMode,
    /// iova → (size, gpa).
    ranges: BTreeMap<u64, (u64, u64)>,
}

/// What has been announced, per source id.
#[derive(Debug, Default)]
pub(crate) struct Announced {
    spaces: HashMap<u16, Space>,
}

impl Announced {
    pub(crate) fn clear(&mut self) {
        self.spaces.clear();
    }

    /// A context was resolved for `rid`: start (or restart) its record. A pass-through space
    /// is announced as one identity mapping of the whole `width`.
    pub(crate) fn note_context(
        &mut self,
        rid: RequesterId,
        context: &Context,
        width: u8,
        out: &mut Vec<MappingEvent>,
    ) {
        let sid = rid.source_id();
        if let Some(space) = self.spaces.get(&sid) {
            if space.did == context.did && space.mode == context.mode {
                return;
            }
            out.push(MappingEvent::AddressSpaceGone {
                rid: space.rid,
                did: space.did,
            });
        }
        let mut space = Space {
            rid,
            did: context.did,
            mode: context.mode,
            ranges: BTreeMap::new(),
        };
        if context.mode == ContextMode::PassThrough {
            let size = 1u64.checked_shl(u32::from(width)).unwrap_or(u64::MAX);
            space.ranges.insert(0, (size, 0));
            out.push(MappingEvent::Map {
                rid,
                did: context.did,
                iova: 0,
                gpa: 0,
                size,
                perms: Permissions::ReadWrite,
            });
        }
        self.spaces.insert(sid, space);
    }

    /// A leaf translation became known for `rid`.
    pub(crate) fn note_leaf(&mut self, rid: RequesterId, leaf: &Leaf, out: &mut Vec<MappingEvent>) {
        let Some(space) = self.spaces.get_mut(&rid.source_id()) else {
            return;
        };
        let end = leaf.iova.saturating_add(leaf.size);
        let overlapping: Vec<u64> = space
            .ranges
            .range(..end)
            .filter(|(iova, (size, _))| iova.saturating_add(*size) > leaf.iova)
            .map(|(iova, _)| *iova)
            .collect();
        if overlapping.len() == 1 && space.ranges.get(&leaf.iova) == Some(&(leaf.size, leaf.gpa)) {
            return;
        }
        for iova in overlapping {
            if let Some((size, _)) = space.ranges.remove(&iova) {
                out.push(MappingEvent::Unmap {
                    rid: space.rid,
                    did: space.did,
                    iova,
                    size,
                });
            }
        }
        if space.ranges.len() >= RANGES_PER_RID
            && let Some((iova, (size, _))) = space.ranges.pop_first()
        {
            out.push(MappingEvent::Unmap {
                rid: space.rid,
                did: space.did,
                iova,
                size,
            });
        }
        space.ranges.insert(leaf.iova, (leaf.size, leaf.gpa));
        let perms = match (leaf.read, leaf.write) {
            (true, true) => Permissions::ReadWrite,
            (true, false) => Permissions::Read,
            (false, true) => Permissions::Write,
            (false, false) => Permissions::No,
        };
        out.push(MappingEvent::Map {
            rid: space.rid,
            did: space.did,
            iova: leaf.iova,
            gpa: leaf.gpa,
            size: leaf.size,
            perms,
        });
    }

    /// Unmaps the announced translated ranges of domain `did` (all domains if `None`) that
    /// overlap `[start, end)`.
    pub(crate) fn unmap(
        &mut self,
        did: Option<u16>,
        start: u64,
        end: u64,
        out: &mut Vec<MappingEvent>,
    ) {
        for space in self.spaces.values_mut() {
            if did.is_some_and(|d| d != space.did) || space.mode == ContextMode::PassThrough {
                continue;
            }
            let doomed: Vec<u64> = space
                .ranges
                .range(..end)
                .filter(|(iova, (size, _))| iova.saturating_add(*size) > start)
                .map(|(iova, _)| *iova)
                .collect();
            for iova in doomed {
                if let Some((size, _)) = space.ranges.remove(&iova) {
                    out.push(MappingEvent::Unmap {
                        rid: space.rid,
                        did: space.did,
                        iova,
                        size,
                    });
                }
            }
        }
    }

    /// Ends the records for which `gone(sid, did)` says so, announcing AddressSpaceGone.
    pub(crate) fn end_spaces(
        &mut self,
        mut gone: impl FnMut(u16, u16) -> bool,
        out: &mut Vec<MappingEvent>,
    ) {
        let mut ended: Vec<u16> = self
            .spaces
            .iter()
            .filter(|(sid, space)| gone(**sid, space.did))
            .map(|(sid, _)| *sid)
            .collect();
        ended.sort_unstable();
        for sid in ended {
            if let Some(space) = self.spaces.remove(&sid) {
                out.push(MappingEvent::AddressSpaceGone {
                    rid: space.rid,
                    did: space.did,
                });
            }
        }
    }

    /// The translated spaces of domain `did`: (rid, root, levels, width).
    pub(crate) fn translated_spaces(&self, did: u16) -> Vec<(RequesterId, u64, u8, u8)> {
        let mut found: Vec<_> = self
            .spaces
            .values()
            .filter(|s| s.did == did)
            .filter_map(|s| match s.mode {
                ContextMode::Translated {
                    root,
                    levels,
                    width,
                } => Some((s.rid, root, levels, width)),
                ContextMode::PassThrough => None,
            })
            .collect();
        found.sort_unstable_by_key(|s| s.0);
        found
    }

    /// Source ids with a record and their recorded context.
    pub(crate) fn records(&self) -> Vec<(u16, u16, ContextMode)> {
        self.spaces
            .iter()
            .map(|(sid, s)| (*sid, s.did, s.mode))
            .collect()
    }
}
