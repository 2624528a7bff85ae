//! The DMA handle (DESIGN.md principles 1 and 2).
//!
//! A device never touches guest memory directly for DMA. When it is attached to a bus it gets a
//! [`DmaMemory`]: vm-memory's `IommuMemory` over guest RAM, bound to the function's requester id
//! and to whatever translates for the bus. virtio-queue and the device models run on it
//! unchanged. A bus without a translator hands out the same type with translation off, which
//! accesses guest-physical memory by identity.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use iommu::{DmaGuard, DmaTranslate, RequesterId};
use vm_memory::iommu::{Error as IommuError, IotlbIterator, IovaRange};
use vm_memory::{GuestAddress, GuestMemoryMmap, Iommu, IommuMemory, Iotlb, Permissions};

/// What a device uses for DMA: I/O virtual memory as seen by one PCI function.
pub type DmaMemory = IommuMemory<GuestMemoryMmap, DeviceDma>;

/// Binds a translator to one requester id; implements vm-memory's [`Iommu`].
pub struct DeviceDma {
    rid: RequesterId,
    translator: Option<Arc<dyn DmaTranslate>>,
}

impl fmt::Debug for DeviceDma {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceDma")
            .field("rid", &self.rid)
            .field("translated", &self.translator.is_some())
            .finish()
    }
}

impl DeviceDma {
    /// The DMA memory of function `rid` on a bus whose DMA `translator` translates (`None`:
    /// identity).
    pub fn memory(
        guest: GuestMemoryMmap,
        rid: RequesterId,
        translator: Option<Arc<dyn DmaTranslate>>,
    ) -> DmaMemory {
        let translated = translator.is_some();
        IommuMemory::new(guest, DeviceDma { rid, translator }, translated, ())
    }

    /// The requester id this handle issues DMA as.
    pub fn requester_id(&self) -> RequesterId {
        self.rid
    }
}

/// The IOTLB view handed to vm-memory for one access: the translations of exactly the range
/// asked for, plus the fence guard that keeps the DMA "in flight" until the copy is done.
#[derive(Debug)]
pub struct DmaTranslation<'a> {
    iotlb: Iotlb,
    _inflight: DmaGuard<'a>,
}

impl Deref for DmaTranslation<'_> {
    type Target = Iotlb;

    fn deref(&self) -> &Iotlb {
        &self.iotlb
    }
}

fn cannot_resolve(iova: u64, length: usize, reason: String) -> IommuError {
    IommuError::CannotResolve {
        iova_range: IovaRange {
            base: GuestAddress(iova),
            length,
        },
        reason,
    }
}

impl Iommu for DeviceDma {
    type IotlbGuard<'a> = DmaTranslation<'a>;

    fn translate(
        &self,
        iova: GuestAddress,
        length: usize,
        access: Permissions,
    ) -> Result<IotlbIterator<DmaTranslation<'_>>, IommuError> {
        let Some(translator) = &self.translator else {
            return Err(IommuError::IommuMisconfigured {
                reason: "translation requested on an untranslated bus".into(),
            });
        };
        let start = iova.0;
        let end = u64::try_from(length)
            .ok()
            .and_then(|len| start.checked_add(len))
            .ok_or_else(|| cannot_resolve(start, length, "range wraps around".into()))?;

        let inflight = translator.dma_begin();
        let mut iotlb = Iotlb::new();
        let mut cursor = start;
        while cursor < end {
            let piece = translator
                .translate(self.rid, cursor, end - cursor, access)
                .map_err(|fault| cannot_resolve(start, length, fault.to_string()))?;
            let piece_end = piece.iova.checked_add(piece.len);
            // A translator that returns a range not containing the cursor would make us loop.
            if piece.len == 0 || piece.iova > cursor || piece_end.is_none_or(|e| e <= cursor) {
                return Err(IommuError::IommuMisconfigured {
                    reason: format!("translation {piece:x?} does not cover {cursor:#x}"),
                });
            }
            let piece_end = piece_end.unwrap_or(u64::MAX).min(end);
            let len = usize::try_from(piece_end - cursor)
                .map_err(|_| cannot_resolve(start, length, "piece too large".into()))?;
            let gpa = piece.gpa.wrapping_add(cursor - piece.iova);
            iotlb.set_mapping(GuestAddress(cursor), GuestAddress(gpa), len, piece.perms)?;
            cursor = piece_end;
        }

        Iotlb::lookup(
            DmaTranslation {
                iotlb,
                _inflight: inflight,
            },
            iova,
            length,
            access,
        )
        .map_err(|fails| {
            cannot_resolve(
                start,
                length,
                format!("access not permitted: {:?}", fails.access_fails),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use iommu::{DmaFault, DmaFence, Translation};
    use vm_memory::{Bytes, GuestMemory};

    use super::*;

    /// Maps IOVA page n to GPA page (n + offset), 4 KiB at a time, read-only above `ro_from`.
    #[derive(Debug)]
    struct ShiftingTranslator {
        offset_pages: u64,
        ro_from: u64,
        fence: DmaFence,
        asked: Mutex<Vec<(RequesterId, u64)>>,
    }

    impl DmaTranslate for ShiftingTranslator {
        fn translate(
            &self,
            rid: RequesterId,
            iova: u64,
            _len: u64,
            access: Permissions,
        ) -> Result<Translation, DmaFault> {
            self.asked.lock().unwrap().push((rid, iova));
            let page = iova & !0xfff;
            let perms = if page >= self.ro_from {
                Permissions::Read
            } else {
                Permissions::ReadWrite
            };
            if !perms.allow(access) {
                return Err(DmaFault {
                    rid,
                    iova,
                    access: "write",
                    reason: "read-only".into(),
                });
            }
            Ok(Translation {
                iova: page,
                gpa: page + self.offset_pages * 0x1000,
                len: 0x1000,
                perms,
            })
        }

        fn dma_begin(&self) -> DmaGuard<'_> {
            self.fence.enter()
        }
    }

    fn guest() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap()
    }

    #[test]
    fn untranslated_bus_is_identity() {
        let g = guest();
        let dma = DeviceDma::memory(g.clone(), RequesterId::new(0, 0, 3, 0), None);
        dma.write_obj(0xdead_beef_u32, GuestAddress(0x2000))
            .unwrap();
        assert_eq!(
            g.read_obj::<u32>(GuestAddress(0x2000)).unwrap(),
            0xdead_beef
        );
    }

    #[test]
    fn translated_access_spanning_pages_lands_in_each_page_translation() {
        let g = guest();
        let translator = Arc::new(ShiftingTranslator {
            offset_pages: 16,
            ro_from: u64::MAX,
            fence: DmaFence::new(),
            asked: Mutex::new(Vec::new()),
        });
        let rid = RequesterId::new(0, 0, 4, 0);
        let dma = DeviceDma::memory(g.clone(), rid, Some(translator.clone()));
        let data: Vec<u8> = (0..0x1800u32).map(|i| i as u8).collect();
        dma.write_slice(&data, GuestAddress(0x1800)).unwrap();
        // IOVA 0x1800.. -> GPA 0x11800..: contiguous here because the shift is uniform.
        let mut back = vec![0u8; data.len()];
        g.read_slice(&mut back, GuestAddress(0x11800)).unwrap();
        assert_eq!(back, data);
        let asked = translator.asked.lock().unwrap();
        assert!(asked.iter().all(|(r, _)| *r == rid));
        assert_eq!(
            asked.iter().map(|(_, a)| *a).collect::<Vec<_>>(),
            vec![0x1800, 0x2000]
        );
    }

    #[test]
    fn refused_write_fails_and_writes_nothing() {
        let g = guest();
        let translator = Arc::new(ShiftingTranslator {
            offset_pages: 0,
            ro_from: 0x3000,
            fence: DmaFence::new(),
            asked: Mutex::new(Vec::new()),
        });
        let dma = DeviceDma::memory(g.clone(), RequesterId::new(0, 0, 5, 0), Some(translator));
        // The range crosses into the read-only page: the whole write must fail up front.
        assert!(
            dma.write_slice(&[0xaa; 0x20], GuestAddress(0x2ff0))
                .is_err()
        );
        assert_eq!(g.read_obj::<u8>(GuestAddress(0x2ff0)).unwrap(), 0);
        assert!(dma.read_obj::<u64>(GuestAddress(0x3000)).is_ok());
        assert!(!dma.check_range(GuestAddress(0x3000), 8, Permissions::Write));
    }

    #[test]
    fn wrapping_range_is_refused_without_panicking() {
        let g = guest();
        let translator = Arc::new(ShiftingTranslator {
            offset_pages: 0,
            ro_from: u64::MAX,
            fence: DmaFence::new(),
            asked: Mutex::new(Vec::new()),
        });
        let dma = DeviceDma::memory(g, RequesterId::new(0, 0, 5, 0), Some(translator));
        let mut buf = [0u8; 16];
        assert!(
            dma.read_slice(&mut buf, GuestAddress(u64::MAX - 4))
                .is_err()
        );
    }
}
