//! The translation path: TE, context, interrupt window, width, IOTLB, walk, faults.

use resources::layout::{MSI_WINDOW_SIZE, MSI_WINDOW_START};
use vm_memory::Permissions;

use super::context::{self, Context, ContextMode};
use super::fault::FaultReason;
use super::state::{Effects, State};
use super::trace::VtdEvent;
use super::walk::{self, Leaf, WalkError};
use crate::{DmaFault, RequesterId, Translation};

const WINDOW_END: u64 = MSI_WINDOW_START + MSI_WINDOW_SIZE;

fn in_window(iova: u64) -> bool {
    (MSI_WINDOW_START..WINDOW_END).contains(&iova)
}

/// `[iova, iova + len)` → `gpa`, trimmed so it neither wraps nor reaches into the interrupt
/// window. `at`, the address asked for, is inside the range and outside the window.
fn clipped(at: u64, iova: u64, gpa: u64, len: u64, perms: Permissions) -> Translation {
    let mut start = iova;
    let mut end = iova.saturating_add(len.max(1));
    if at < MSI_WINDOW_START {
        end = end.min(MSI_WINDOW_START);
    } else {
        start = start.max(WINDOW_END);
    }
    Translation {
        iova: start,
        gpa: gpa.wrapping_add(start.wrapping_sub(iova)),
        len: end.saturating_sub(start).max(1),
        perms,
    }
}

fn leaf_perms(leaf: &Leaf) -> Permissions {
    match (leaf.read, leaf.write) {
        (true, true) => Permissions::ReadWrite,
        (true, false) => Permissions::Read,
        (false, true) => Permissions::Write,
        (false, false) => Permissions::No,
    }
}

/// Why `access` is not allowed by `leaf`, if it is not.
fn denied(leaf: &Leaf, access: Permissions) -> Option<FaultReason> {
    let wants_write = matches!(access, Permissions::Write | Permissions::ReadWrite);
    let wants_read = matches!(access, Permissions::Read | Permissions::ReadWrite);
    if wants_write && !leaf.write {
        Some(FaultReason::WriteNotSet)
    } else if wants_read && !leaf.read {
        Some(FaultReason::ReadNotSet)
    } else {
        None
    }
}

fn access_name(access: Permissions) -> &'static str {
    match access {
        Permissions::Write | Permissions::ReadWrite => "write",
        _ => "read",
    }
}

impl State {
    /// The context of `rid`, from the cache or the tables (announcing a new address space).
    pub(crate) fn context_for(
        &mut self,
        rid: RequesterId,
        fx: &mut Effects,
    ) -> Result<Context, context::ContextFault> {
        let sid = rid.source_id();
        if let Some(context) = self.contexts.get(sid) {
            self.stats.context_hits += 1;
            return Ok(context);
        }
        self.stats.context_misses += 1;
        let context = context::lookup(
            &self.guest,
            &self.config,
            self.regs.root_table,
            rid.bus,
            rid.devfn,
        )?;
        self.contexts.insert(sid, context);
        if self.observed {
            self.announced
                .note_context(rid, &context, self.config.aw_bits, &mut fx.events);
        }
        Ok(context)
    }

    fn refuse(
        &mut self,
        rid: RequesterId,
        iova: u64,
        access: Permissions,
        reason: FaultReason,
        fpd: bool,
        fx: &mut Effects,
    ) -> DmaFault {
        let read = access_name(access) == "read";
        self.record_fault(rid.source_id(), iova, reason, read, fpd, fx);
        DmaFault {
            rid,
            iova,
            access: access_name(access),
            reason: reason.to_string(),
        }
    }

    fn count_domain(&mut self, did: u16) {
        *self.stats.translations_per_domain.entry(did).or_insert(0) += 1;
    }

    /// Translates one access (see [`crate::DmaTranslate::translate`]).
    pub(crate) fn translate(
        &mut self,
        rid: RequesterId,
        iova: u64,
        len: u64,
        access: Permissions,
        fx: &mut Effects,
    ) -> Result<Translation, DmaFault> {
        if !self.regs.translation_enabled() {
            if in_window(iova) {
                // An interrupt request, not memory; nothing to record with translation off.
                return Err(DmaFault {
                    rid,
                    iova,
                    access: access_name(access),
                    reason: "DMA to the interrupt address range".into(),
                });
            }
            self.stats.untranslated += 1;
            let t = clipped(iova, iova, iova, len, Permissions::ReadWrite);
            self.trace(|| VtdEvent::Translation {
                rid,
                did: None,
                iova,
                gpa: iova,
                size: t.len,
                hit: true,
            });
            return Ok(t);
        }
        let context = match self.context_for(rid, fx) {
            Ok(context) => context,
            Err(f) => return Err(self.refuse(rid, iova, access, f.reason, f.fpd, fx)),
        };
        let did = context.did;
        if in_window(iova) {
            let reason = FaultReason::InterruptAddress;
            return Err(self.refuse(rid, iova, access, reason, context.fpd, fx));
        }
        let (root, levels, width) = match context.mode {
            ContextMode::PassThrough => {
                self.count_domain(did);
                let t = clipped(iova, iova, iova, len, Permissions::ReadWrite);
                self.trace(|| VtdEvent::Translation {
                    rid,
                    did: Some(did),
                    iova,
                    gpa: iova,
                    size: t.len,
                    hit: true,
                });
                return Ok(t);
            }
            ContextMode::Translated {
                root,
                levels,
                width,
            } => (root, levels, width),
        };
        if iova.checked_shr(u32::from(width)).unwrap_or(0) != 0 {
            let reason = FaultReason::BeyondMgaw;
            return Err(self.refuse(rid, iova, access, reason, context.fpd, fx));
        }
        if let Some(leaf) = self.iotlb.lookup(did, iova) {
            if denied(&leaf, access).is_none() {
                self.stats.iotlb_hits += 1;
                if self.observed {
                    // Another device of the domain may have filled it: announce it to this one.
                    self.announced.note_leaf(rid, &leaf, &mut fx.events);
                }
                self.count_domain(did);
                return Ok(self.translated(rid, did, iova, &leaf, true));
            }
            // Permissions may have grown without an invalidation (allowed with CM=0): walk.
            self.iotlb.remove(did, &leaf);
        }
        self.stats.iotlb_misses += 1;
        let leaf = match walk::walk(&self.guest, root, levels, self.config.aw_bits, iova) {
            Ok(leaf) => leaf,
            Err(error) => {
                let reason = match error {
                    WalkError::NotPresent { .. } => {
                        if access_name(access) == "write" {
                            FaultReason::WriteNotSet
                        } else {
                            FaultReason::ReadNotSet
                        }
                    }
                    WalkError::Reserved => FaultReason::PteReserved,
                    WalkError::Unreadable => FaultReason::NextTableInvalid,
                };
                return Err(self.refuse(rid, iova, access, reason, context.fpd, fx));
            }
        };
        if let Some(reason) = denied(&leaf, access) {
            return Err(self.refuse(rid, iova, access, reason, context.fpd, fx));
        }
        // Only successful translations are cached (CM=0 guests never invalidate on map).
        self.iotlb.insert(did, leaf);
        if self.observed {
            self.announced.note_leaf(rid, &leaf, &mut fx.events);
        }
        self.count_domain(did);
        Ok(self.translated(rid, did, iova, &leaf, false))
    }

    fn translated(
        &self,
        rid: RequesterId,
        did: u16,
        iova: u64,
        leaf: &Leaf,
        hit: bool,
    ) -> Translation {
        let gpa = leaf.gpa.wrapping_add(iova - leaf.iova);
        self.trace(|| VtdEvent::Translation {
            rid,
            did: Some(did),
            iova,
            gpa,
            size: leaf.size,
            hit,
        });
        clipped(iova, leaf.iova, leaf.gpa, leaf.size, leaf_perms(leaf))
    }
}
