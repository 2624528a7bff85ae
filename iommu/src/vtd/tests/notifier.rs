//! Mapping notifications: MAP / UNMAP / AddressSpaceGone sequences.

use super::*;
use crate::{MappingEvent, MappingObserver};

#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<MappingEvent>>);

impl MappingObserver for Recorder {
    fn on_event(&self, event: &MappingEvent) {
        self.0.lock().unwrap().push(*event);
    }
}

impl Recorder {
    fn take(&self) -> Vec<MappingEvent> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn observed(config: VtdConfig) -> (Rig, Arc<Recorder>) {
    let rig = Rig::enabled(config);
    let recorder = Arc::new(Recorder::default());
    rig.unit.subscribe(recorder.clone());
    (rig, recorder)
}

#[test]
fn map_on_fill_unmap_on_invalidation_gone_on_context_removal() {
    let (mut rig, events) = observed(VtdConfig::default());
    let dev = rid(0, 3, 0);
    let top = rig.translated(dev, 4, 1);
    rig.map(top, 3, 0x5000, 0x9000, 0x1000, R);
    rig.map(top, 3, 0x20_0000, 0x40_0000, 0x20_0000, RW);
    rig.gpa(dev, 0x5008);
    rig.gpa(dev, 0x5010); // hit: nothing new
    rig.gpa(dev, 0x30_0000);
    assert_eq!(
        events.take(),
        vec![
            MappingEvent::Map {
                rid: dev,
                did: 4,
                iova: 0x5000,
                gpa: 0x9000,
                size: 0x1000,
                perms: Permissions::Read
            },
            MappingEvent::Map {
                rid: dev,
                did: 4,
                iova: 0x20_0000,
                gpa: 0x40_0000,
                size: 0x20_0000,
                perms: Permissions::ReadWrite
            },
        ]
    );
    // PSI of one page unmaps exactly it; another domain's PSI unmaps nothing.
    rig.w64(0xf0, 0x5000);
    rig.w64(0xf8, 1 << 63 | 3 << 60 | 9 << 32);
    assert!(events.take().is_empty());
    rig.w64(0xf8, 1 << 63 | 3 << 60 | 4 << 32);
    assert_eq!(
        events.take(),
        vec![MappingEvent::Unmap {
            rid: dev,
            did: 4,
            iova: 0x5000,
            size: 0x1000
        }]
    );
    // DSI unmaps the rest.
    rig.w64(0xf8, 1 << 63 | 2 << 60 | 4 << 32);
    assert_eq!(
        events.take(),
        vec![MappingEvent::Unmap {
            rid: dev,
            did: 4,
            iova: 0x20_0000,
            size: 0x20_0000
        }]
    );
    // A context invalidation that finds the context unchanged says nothing ...
    rig.gpa(dev, 0x5000);
    events.take();
    rig.w64(0x28, 1 << 63 | 1 << 61);
    assert!(events.take().is_empty());
    // ... one that finds it gone ends the address space.
    rig.set_context_raw(dev, 0, 0);
    rig.w64(0x28, 1 << 63 | 3 << 61 | u64::from(dev.source_id()) << 16);
    assert_eq!(
        events.take(),
        vec![MappingEvent::AddressSpaceGone { rid: dev, did: 4 }]
    );
}

#[test]
fn pass_through_space_is_one_identity_map_and_srtp_ends_it() {
    let (mut rig, events) = observed(VtdConfig::default());
    let dev = rid(0, 3, 0);
    rig.pass_through(dev, 6);
    rig.translate(dev, 0x1000, Permissions::Write).unwrap();
    rig.translate(dev, 0x2000, Permissions::Write).unwrap();
    assert_eq!(
        events.take(),
        vec![MappingEvent::Map {
            rid: dev,
            did: 6,
            iova: 0,
            gpa: 0,
            size: 1 << 39,
            perms: Permissions::ReadWrite
        }]
    );
    // IOTLB invalidations do not touch pass-through spaces.
    rig.w64(0xf8, 1 << 63 | 1 << 60);
    assert!(events.take().is_empty());
    rig.w32(0x18, 1 << 31 | 1 << 30);
    assert_eq!(
        events.take(),
        vec![MappingEvent::AddressSpaceGone { rid: dev, did: 6 }]
    );
}

#[test]
fn te_off_ends_every_space_and_a_changed_context_is_gone_then_new() {
    let (mut rig, events) = observed(VtdConfig::default());
    let a = rid(0, 3, 0);
    let b = rid(0, 4, 0);
    let ta = rig.translated(a, 1, 1);
    rig.map(ta, 3, 0x1000, 0x2000, 0x1000, RW);
    rig.pass_through(b, 2);
    rig.gpa(a, 0x1000);
    rig.gpa(b, 0x1000);
    events.take();
    // a moves to domain 3 (same tables): gone, and re-announced on its next DMA.
    rig.set_context_raw(a, ta | 1, 1 | 3 << 8);
    rig.w64(0x28, 1 << 63 | 2 << 61 | 1);
    assert_eq!(
        events.take(),
        vec![MappingEvent::AddressSpaceGone { rid: a, did: 1 }]
    );
    rig.gpa(a, 0x1000);
    assert_eq!(
        events.take(),
        vec![MappingEvent::Map {
            rid: a,
            did: 3,
            iova: 0x1000,
            gpa: 0x2000,
            size: 0x1000,
            perms: Permissions::ReadWrite
        }]
    );
    rig.w32(0x18, 0);
    let mut gone = events.take();
    gone.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(
        gone,
        vec![
            MappingEvent::AddressSpaceGone { rid: a, did: 3 },
            MappingEvent::AddressSpaceGone { rid: b, did: 2 },
        ]
    );
}

#[test]
fn caching_mode_page_invalidation_announces_new_mappings() {
    let (mut rig, events) = observed(VtdConfig {
        caching_mode: true,
        ..VtdConfig::default()
    });
    let base = rig.enable_qi();
    let status = rig.alloc();
    let dev = rid(0, 3, 0);
    // Linux with CM=1: write the context, context-cache device invalidation (DID 0), DSI.
    let top = rig.translated(dev, 5, 1);
    rig.submit(
        base,
        &[
            context_desc(3, 0, dev.source_id(), 0),
            iotlb_desc(2, 5, 0, 0),
            wait_sw(status, 1),
        ],
    );
    assert!(events.take().is_empty());
    // Map two pages, then PSI: both are announced without any DMA.
    rig.map(top, 3, 0x10_0000, 0x50_0000, 0x1000, RW);
    rig.map(top, 3, 0x10_1000, 0x60_0000, 0x1000, R);
    rig.submit(base, &[iotlb_desc(3, 5, 0x10_0000, 1), wait_sw(status, 2)]);
    assert_eq!(
        events.take(),
        vec![
            MappingEvent::Map {
                rid: dev,
                did: 5,
                iova: 0x10_0000,
                gpa: 0x50_0000,
                size: 0x1000,
                perms: Permissions::ReadWrite
            },
            MappingEvent::Map {
                rid: dev,
                did: 5,
                iova: 0x10_1000,
                gpa: 0x60_0000,
                size: 0x1000,
                perms: Permissions::Read
            },
        ]
    );
    // Unmap one (clear the PTE) and PSI it: UNMAP, no new MAP.
    let leaf = rig.map(top, 3, 0x10_1000, 0x60_0000, 0x1000, R);
    rig.write_u64(leaf, 0);
    rig.submit(base, &[iotlb_desc(3, 5, 0x10_1000, 0), wait_sw(status, 3)]);
    assert_eq!(
        events.take(),
        vec![MappingEvent::Unmap {
            rid: dev,
            did: 5,
            iova: 0x10_1000,
            size: 0x1000
        }]
    );
    // The DMA itself hits the IOTLB... no: the PSI dropped it; the walk finds the same
    // mapping already announced, so nothing new.
    rig.gpa(dev, 0x10_0000);
    assert!(events.take().is_empty());
}

#[test]
fn unsubscribed_observers_hear_nothing() {
    let mut rig = Rig::enabled(VtdConfig::default());
    let recorder = Arc::new(Recorder::default());
    let id = rig.unit.subscribe(recorder.clone());
    assert!(rig.unit.unsubscribe(id));
    assert!(!rig.unit.unsubscribe(id));
    let dev = rid(0, 3, 0);
    rig.pass_through(dev, 1);
    rig.gpa(dev, 0);
    assert!(recorder.take().is_empty());
}

#[test]
fn each_device_of_a_shared_domain_hears_its_maps_even_from_iotlb_hits() {
    let mut rig = Rig::enabled(VtdConfig::default());
    let a = rid(0, 3, 0);
    let b = rid(0, 4, 0);
    let top = rig.translated(a, 5, 1);
    rig.set_context_raw(b, top | 1, 1 | 5 << 8);
    rig.map(top, 3, 0x7000, 0x9000, 0x1000, RW);
    // Translated (and cached) before anyone subscribed.
    rig.gpa(a, 0x7000);
    let events = Arc::new(Recorder::default());
    rig.unit.subscribe(events.clone());
    rig.gpa(a, 0x7000);
    rig.gpa(b, 0x7000);
    let map = |rid| MappingEvent::Map {
        rid,
        did: 5,
        iova: 0x7000,
        gpa: 0x9000,
        size: 0x1000,
        perms: Permissions::ReadWrite,
    };
    assert_eq!(events.take(), vec![map(a), map(b)]);
    assert_eq!(rig.unit.stats().iotlb_hits, 1, "b hit the entry a filled");
    // One DSI unmaps it for both.
    rig.w64(0xf8, 1 << 63 | 2 << 60 | 5 << 32);
    let mut unmaps = events.take();
    unmaps.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(
        unmaps,
        vec![
            MappingEvent::Unmap {
                rid: a,
                did: 5,
                iova: 0x7000,
                size: 0x1000
            },
            MappingEvent::Unmap {
                rid: b,
                did: 5,
                iova: 0x7000,
                size: 0x1000
            },
        ]
    );
}

#[test]
fn records_are_bounded_per_device_by_unmapping_the_lowest() {
    let (mut rig, events) = observed(VtdConfig::default());
    let dev = rid(0, 3, 0);
    let top = rig.translated(dev, 1, 1);
    let limit = crate::vtd::notifier::RANGES_PER_RID as u64;
    for page in 0..=limit {
        rig.map(top, 3, page << 12, page << 12, 0x1000, RW);
        rig.gpa(dev, page << 12);
    }
    let all = events.take();
    let unmaps: Vec<_> = all
        .iter()
        .filter(|e| matches!(e, MappingEvent::Unmap { .. }))
        .collect();
    assert_eq!(all.len() as u64, limit + 2);
    assert_eq!(
        unmaps,
        vec![&MappingEvent::Unmap {
            rid: dev,
            did: 1,
            iova: 0,
            size: 0x1000
        }]
    );
}
