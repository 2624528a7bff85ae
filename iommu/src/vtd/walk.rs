//! The second-level page-table walker (checklist §3.4): 3 or 4 levels, 4 KiB / 2 MiB / 1 GiB
//! leaves, permissions ANDed down the walk.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::context::above_width;

const R: u64 = 1 << 0;
const W: u64 = 1 << 1;
const PS: u64 = 1 << 7;
/// Snoop: reserved without ECAP.SC.
const SNP: u64 = 1 << 11;
/// Transient mapping: reserved without ECAP.DT.
const TM: u64 = 1 << 62;
/// Bits 63 and 61:52 are ignored by hardware.
const ADDRESS_BITS: u64 = (1 << 52) - 1;

/// A leaf translation: `[iova, iova + size)` → `[gpa, gpa + size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Leaf {
    pub iova: u64,
    pub gpa: u64,
    pub size: u64,
    pub read: bool,
    pub write: bool,
}

/// Why a walk stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WalkError {
    /// An entry with neither R nor W, at `level`, covering `span` bytes from `base`.
    NotPresent { base: u64, span: u64 },
    /// Reserved bits set.
    Reserved,
    /// A table address that is not guest memory.
    Unreadable,
}

/// Bytes covered by one entry at `level` (1 = 4 KiB).
pub(crate) fn span(level: u8) -> u64 {
    1u64 << (12 + 9 * u32::from(level.saturating_sub(1)).min(5))
}

/// Reserved bits of an entry at `level`, given whether it is a large-page leaf.
fn reserved(level: u8, large: bool, aw_bits: u8) -> u64 {
    let common = SNP | TM | (ADDRESS_BITS & above_width(aw_bits));
    match (level, large) {
        // PS is reserved at level 4 (no 512 GiB pages).
        (4, _) => common | PS,
        // The address of a large page is aligned to its size.
        (2, true) => common | 0x1f_f000,
        (3, true) => common | 0x3fff_f000,
        _ => common,
    }
}

/// Walks the `levels`-deep tables at `root` for `iova` (already checked against the width).
pub(crate) fn walk(
    guest: &GuestMemoryMmap,
    root: u64,
    levels: u8,
    aw_bits: u8,
    iova: u64,
) -> Result<Leaf, WalkError> {
    let mut table = root;
    let (mut read, mut write) = (true, true);
    let mut level = levels;
    while level >= 1 {
        let shift = 12 + 9 * u32::from(level - 1);
        let index = (iova >> shift) & 0x1ff;
        let entry_addr = table.checked_add(index * 8).ok_or(WalkError::Unreadable)?;
        let entry = guest
            .read_obj::<u64>(GuestAddress(entry_addr))
            .map_err(|_| WalkError::Unreadable)?;
        let base = iova & !(span(level) - 1);
        if entry & (R | W) == 0 {
            return Err(WalkError::NotPresent {
                base,
                span: span(level),
            });
        }
        // Level 1 has no PS bit (bit 7 is ignored there); levels 2 and 3 may be leaves.
        let large = (level == 2 || level == 3) && entry & PS != 0;
        if entry & reserved(level, large, aw_bits) != 0 {
            return Err(WalkError::Reserved);
        }
        read &= entry & R != 0;
        write &= entry & W != 0;
        let address = entry & ADDRESS_BITS & !0xfff;
        if level == 1 || large {
            return Ok(Leaf {
                iova: base,
                gpa: address,
                size: span(level),
                read,
                write,
            });
        }
        table = address;
        level -= 1;
    }
    // levels == 0 cannot come from a decoded context; treat it as a broken table.
    Err(WalkError::Unreadable)
}

/// Every present leaf in `[start, end)`, at most `limit` of them (CM=1 map announcements).
/// Faulting parts are skipped: announcements never fault.
pub(crate) fn present_leaves(
    guest: &GuestMemoryMmap,
    root: u64,
    levels: u8,
    aw_bits: u8,
    start: u64,
    end: u64,
    limit: usize,
) -> Vec<Leaf> {
    let mut leaves = Vec::new();
    let mut cursor = start;
    let mut steps = 0usize;
    while cursor < end && leaves.len() < limit && steps < limit.saturating_mul(4) {
        steps += 1;
        let next = match walk(guest, root, levels, aw_bits, cursor) {
            Ok(leaf) => {
                let next = leaf.iova.checked_add(leaf.size);
                leaves.push(leaf);
                next
            }
            Err(WalkError::NotPresent { base, span }) => base.checked_add(span),
            Err(_) => (cursor & !0xfff).checked_add(0x1000),
        };
        match next {
            Some(n) if n > cursor => cursor = n,
            _ => break,
        }
    }
    leaves
}
