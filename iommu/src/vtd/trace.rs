//! Trace events for kernel developers debugging their IOMMU driver: one line per thing the
//! unit saw or did.

use std::fmt;
use std::sync::Arc;

use super::fault::FaultReason;
use crate::RequesterId;

/// Receives every [`VtdEvent`]. Called with the unit's lock held: it must not call back into
/// the unit.
pub type Tracer = Arc<dyn Fn(&VtdEvent) + Send + Sync>;

/// Which cache an invalidation targets, and how widely.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InvalidationKind {
    /// Context cache, everything.
    ContextGlobal,
    /// Context cache, one domain.
    ContextDomain,
    /// Context cache, one device (source id with function mask).
    ContextDevice,
    /// IOTLB, everything.
    IotlbGlobal,
    /// IOTLB, one domain.
    IotlbDomain,
    /// IOTLB, pages of one domain.
    IotlbPage,
    /// Interrupt entry cache (no interrupt remapping: no-op).
    InterruptEntry,
    /// Device-TLB (no ATS: no-op).
    DeviceTlb,
}

impl fmt::Display for InvalidationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ContextGlobal => "context-global",
            Self::ContextDomain => "context-domain",
            Self::ContextDevice => "context-device",
            Self::IotlbGlobal => "iotlb-global",
            Self::IotlbDomain => "iotlb-domain",
            Self::IotlbPage => "iotlb-page",
            Self::InterruptEntry => "iec",
            Self::DeviceTlb => "device-tlb",
        })
    }
}

/// Something the VT-d unit saw or did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VtdEvent {
    /// A register read.
    RegisterRead {
        /// Offset in the register page.
        offset: u64,
        /// Register name ("unknown" if none).
        name: &'static str,
        /// Access size in bytes.
        size: usize,
        /// Value returned.
        value: u64,
    },
    /// A register write.
    RegisterWrite {
        /// Offset in the register page.
        offset: u64,
        /// Register name ("unknown" if none).
        name: &'static str,
        /// Access size in bytes.
        size: usize,
        /// Value written.
        value: u64,
    },
    /// A global command took effect (TE, SRTP, QIE, WBF).
    Command {
        /// Command name.
        name: &'static str,
        /// New state for level commands; true for one-shot ones.
        enable: bool,
    },
    /// An invalidation was performed.
    Invalidation {
        /// "register" or "queued".
        via: &'static str,
        /// What was invalidated.
        kind: InvalidationKind,
        /// Domain id, where the granularity has one.
        did: Option<u16>,
        /// Source id (context-device) or page address (IOTLB page).
        addr: Option<u64>,
        /// Address mask (IOTLB page) or function mask (context-device).
        mask: Option<u8>,
    },
    /// A queued descriptor was fetched.
    Descriptor {
        /// Its index in the queue.
        index: u64,
        /// Bits 63:0.
        lo: u64,
        /// Bits 127:64.
        hi: u64,
    },
    /// A DMA translation succeeded.
    Translation {
        /// Requester.
        rid: RequesterId,
        /// Domain id (None with translation off).
        did: Option<u16>,
        /// Address asked for.
        iova: u64,
        /// Its guest physical address.
        gpa: u64,
        /// Size of the translated page.
        size: u64,
        /// Found in the IOTLB.
        hit: bool,
    },
    /// A DMA was refused.
    Fault {
        /// Why.
        reason: FaultReason,
        /// Source id.
        sid: u16,
        /// Address.
        addr: u64,
        /// Read (true) or write.
        read: bool,
        /// What became of it: "recorded", "compressed", "overflow" or "suppressed (FPD)".
        outcome: &'static str,
    },
    /// An invalidation wait descriptor completed.
    WaitComplete {
        /// Status write (address, data), if requested.
        status: Option<(u64, u32)>,
        /// Whether a completion interrupt was requested.
        interrupt: bool,
    },
    /// A queued descriptor was refused (FSTS.IQE).
    QueueError {
        /// Index of the bad descriptor.
        index: u64,
        /// What was wrong.
        why: &'static str,
    },
}

impl fmt::Display for VtdEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RegisterRead {
                offset,
                name,
                size,
                value,
            } => write!(
                f,
                "vtd: read{} {name}@{offset:#05x} -> {value:#x}",
                size * 8
            ),
            Self::RegisterWrite {
                offset,
                name,
                size,
                value,
            } => write!(
                f,
                "vtd: write{} {name}@{offset:#05x} <- {value:#x}",
                size * 8
            ),
            Self::Command { name, enable } => write!(f, "vtd: gcmd {name} {}", u8::from(*enable)),
            Self::Invalidation {
                via,
                kind,
                did,
                addr,
                mask,
            } => {
                write!(f, "vtd: {via} invalidation {kind}")?;
                if let Some(did) = did {
                    write!(f, " did={did}")?;
                }
                if let Some(addr) = addr {
                    write!(f, " addr={addr:#x}")?;
                }
                if let Some(mask) = mask {
                    write!(f, " mask={mask}")?;
                }
                Ok(())
            }
            Self::Descriptor { index, lo, hi } => {
                write!(
                    f,
                    "vtd: qi desc[{index}] type={} {hi:016x}:{lo:016x}",
                    lo & 0xf
                )
            }
            Self::Translation {
                rid,
                did,
                iova,
                gpa,
                size,
                hit,
            } => {
                write!(f, "vtd: translate {rid}")?;
                match did {
                    Some(did) => write!(f, " did={did}")?,
                    None => write!(f, " (off)")?,
                }
                write!(
                    f,
                    " {iova:#x} -> {gpa:#x} size={size:#x} {}",
                    if *hit { "hit" } else { "miss" }
                )
            }
            Self::Fault {
                reason,
                sid,
                addr,
                read,
                outcome,
            } => write!(
                f,
                "vtd: fault {} sid={:02x}:{:02x}.{} addr={addr:#x} {reason} ({outcome})",
                if *read { "read" } else { "write" },
                sid >> 8,
                (sid >> 3) & 0x1f,
                sid & 7
            ),
            Self::WaitComplete { status, interrupt } => {
                write!(f, "vtd: wait complete")?;
                if let Some((addr, data)) = status {
                    write!(f, " status {data:#x} -> {addr:#x}")?;
                }
                if *interrupt {
                    write!(f, " interrupt")?;
                }
                Ok(())
            }
            Self::QueueError { index, why } => {
                write!(f, "vtd: invalidation queue error at desc[{index}]: {why}")
            }
        }
    }
}
