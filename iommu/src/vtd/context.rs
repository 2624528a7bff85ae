//! Root and legacy context entries (checklist §3.1, §3.2): from a source id to a domain.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::config::VtdConfig;
use super::fault::FaultReason;

/// How a present, valid context entry translates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ContextMode {
    /// TT=00: second-level tables rooted at `root`, `levels` deep, IOVAs below 2^`width`.
    Translated { root: u64, levels: u8, width: u8 },
    /// TT=10: identity.
    PassThrough,
}

/// A decoded context entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Context {
    pub did: u16,
    pub fpd: bool,
    pub mode: ContextMode,
}

/// A context lookup that failed: the reason, and whether the entry asked for fault processing
/// to be disabled (only known once the context entry was read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ContextFault {
    pub reason: FaultReason,
    pub fpd: bool,
}

fn fault(reason: FaultReason, fpd: bool) -> ContextFault {
    ContextFault { reason, fpd }
}

/// Bits at or above the host address width (bits 63:aw).
pub(crate) fn above_width(aw_bits: u8) -> u64 {
    u64::MAX.checked_shl(u32::from(aw_bits)).unwrap_or(0)
}

fn read_entry(guest: &GuestMemoryMmap, table: u64, index: u8) -> Option<(u64, u64)> {
    let addr = table.checked_add(u64::from(index) * 16)?;
    let lo = guest.read_obj::<u64>(GuestAddress(addr)).ok()?;
    let hi = guest
        .read_obj::<u64>(GuestAddress(addr.checked_add(8)?))
        .ok()?;
    Some((lo, hi))
}

/// The raw root entry for `bus` (lo, hi), for dumps.
pub(crate) fn root_entry(guest: &GuestMemoryMmap, root_table: u64, bus: u8) -> Option<(u64, u64)> {
    read_entry(guest, root_table, bus)
}

/// The raw context entry for `devfn` in context table `table`, for dumps.
pub(crate) fn context_entry(guest: &GuestMemoryMmap, table: u64, devfn: u8) -> Option<(u64, u64)> {
    read_entry(guest, table, devfn)
}

/// Context table pointer of a root entry, if present and valid.
pub(crate) fn root_pointer(lo: u64, hi: u64, aw_bits: u8) -> Result<u64, ContextFault> {
    if lo & 1 == 0 {
        return Err(fault(FaultReason::RootNotPresent, false));
    }
    if lo & (0xffe | above_width(aw_bits)) != 0 || hi != 0 {
        return Err(fault(FaultReason::RootReserved, false));
    }
    Ok(lo & !0xfff)
}

/// Decodes a legacy context entry.
pub(crate) fn decode_context(
    lo: u64,
    hi: u64,
    config: &VtdConfig,
) -> Result<Context, ContextFault> {
    let fpd = lo & 2 != 0;
    if lo & 1 == 0 {
        return Err(fault(FaultReason::ContextNotPresent, fpd));
    }
    // lo 11:4 reserved, SLPTPTR above the host address width; hi bit 71 (7) and 127:88.
    if lo & (0xff0 | above_width(config.aw_bits)) != 0 || hi & 0xFFFF_FFFF_FF00_0080 != 0 {
        return Err(fault(FaultReason::ContextReserved, fpd));
    }
    let did = ((hi >> 8) & 0xffff) as u16;
    let aw = (hi & 7) as u8;
    let mode = match (lo >> 2) & 3 {
        0b00 => {
            let levels = config
                .levels_for_aw(aw)
                .ok_or(fault(FaultReason::InvalidContext, fpd))?;
            let table_width = 30 + 9 * aw;
            ContextMode::Translated {
                root: lo & !0xfff,
                levels,
                width: table_width.min(config.aw_bits),
            }
        }
        0b10 if config.pass_through => ContextMode::PassThrough,
        // 01 needs device-TLB support (ECAP.DT = 0), 11 is reserved.
        _ => return Err(fault(FaultReason::InvalidContext, fpd)),
    };
    Ok(Context { did, fpd, mode })
}

/// Looks up the context of `bus`/`devfn` under the root table at `root_table`.
pub(crate) fn lookup(
    guest: &GuestMemoryMmap,
    config: &VtdConfig,
    root_table: u64,
    bus: u8,
    devfn: u8,
) -> Result<Context, ContextFault> {
    let (lo, hi) =
        read_entry(guest, root_table, bus).ok_or(fault(FaultReason::RootTableInvalid, false))?;
    let table = root_pointer(lo, hi, config.aw_bits)?;
    let (lo, hi) =
        read_entry(guest, table, devfn).ok_or(fault(FaultReason::ContextTableInvalid, false))?;
    decode_context(lo, hi, config)
}
