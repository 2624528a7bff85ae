//! Each invalidation granularity drops exactly what it should: a remapped page is seen only
//! after the invalidation that covers it (stale-IOTLB checks).

use super::*;

/// Two domains (1: device a, 2: device b), each mapping IOVA pages 0..4 to distinct GPAs.
struct Two {
    rig: Rig,
    a: RequesterId,
    b: RequesterId,
    leaves: Vec<(u64, u64)>, // (domain-1 leaf addr, domain-2 leaf addr) per page
}

fn two_domains() -> Two {
    let mut rig = Rig::enabled(VtdConfig::default());
    let a = rid(0, 3, 0);
    let b = rid(0, 4, 0);
    let ta = rig.translated(a, 1, 1);
    let tb = rig.translated(b, 2, 1);
    let mut leaves = Vec::new();
    for page in 0..4u64 {
        let la = rig.map(ta, 3, page * 0x1000, 0x100_0000 + page * 0x1000, 0x1000, RW);
        let lb = rig.map(tb, 3, page * 0x1000, 0x200_0000 + page * 0x1000, 0x1000, RW);
        leaves.push((la, lb));
    }
    // Fill the IOTLB.
    for page in 0..4u64 {
        assert_eq!(rig.gpa(a, page * 0x1000), 0x100_0000 + page * 0x1000);
        assert_eq!(rig.gpa(b, page * 0x1000), 0x200_0000 + page * 0x1000);
    }
    Two { rig, a, b, leaves }
}

impl Two {
    /// Remaps every page of both domains to a new GPA (+0x80_0000) behind the IOTLB's back.
    fn remap_all(&self) {
        for (page, (la, lb)) in self.leaves.iter().enumerate() {
            let page = page as u64 * 0x1000;
            self.rig.write_u64(*la, (0x180_0000 + page) | RW);
            self.rig.write_u64(*lb, (0x280_0000 + page) | RW);
        }
    }

    /// Which pages of (a, b) are seen remapped.
    fn fresh(&self) -> (Vec<bool>, Vec<bool>) {
        let a = (0..4u64)
            .map(|p| self.rig.gpa(self.a, p * 0x1000) == 0x180_0000 + p * 0x1000)
            .collect();
        let b = (0..4u64)
            .map(|p| self.rig.gpa(self.b, p * 0x1000) == 0x280_0000 + p * 0x1000)
            .collect();
        (a, b)
    }
}

const NONE: [bool; 4] = [false; 4];
const ALL: [bool; 4] = [true; 4];

#[test]
fn stale_until_invalidated() {
    let t = two_domains();
    t.remap_all();
    assert_eq!(t.fresh(), (NONE.to_vec(), NONE.to_vec()));
}

#[test]
fn register_global_iotlb_invalidation_drops_everything() {
    let t = two_domains();
    t.remap_all();
    t.rig.w64(0xf8, 1 << 63 | 1 << 60);
    assert_eq!(t.fresh(), (ALL.to_vec(), ALL.to_vec()));
}

#[test]
fn register_domain_invalidation_drops_one_domain() {
    let t = two_domains();
    t.remap_all();
    t.rig.w64(0xf8, 1 << 63 | 2 << 60 | 2 << 32);
    assert_eq!(t.fresh(), (NONE.to_vec(), ALL.to_vec()));
}

#[test]
fn register_page_invalidation_with_address_mask() {
    let t = two_domains();
    t.remap_all();
    // Pages 2 and 3 of domain 1 (AM = 1: two pages from 0x2000).
    t.rig.w64(0xf0, 0x2000 | 1);
    t.rig.w64(0xf8, 1 << 63 | 3 << 60 | 1 << 32);
    assert_eq!(t.fresh(), (vec![false, false, true, true], NONE.to_vec()));
    // AM = 0 on page 0 of domain 2; IH (bit 6) changes nothing for leaves.
    t.rig.w64(0xf0, 1 << 6);
    t.rig.w64(0xf8, 1 << 63 | 3 << 60 | 2 << 32);
    assert_eq!(t.fresh().1, vec![true, false, false, false]);
}

#[test]
fn queued_iotlb_invalidations() {
    let mut t = two_domains();
    let base = t.rig.enable_qi();
    let status = t.rig.alloc();
    t.remap_all();
    t.rig
        .submit(base, &[iotlb_desc(3, 1, 0x0, 1), wait_sw(status, 2)]);
    assert_eq!(t.rig.read_u64(status) as u32, 2);
    assert_eq!(t.fresh(), (vec![true, true, false, false], NONE.to_vec()));
    t.rig
        .submit(base, &[iotlb_desc(2, 2, 0, 0), wait_sw(status, 3)]);
    assert_eq!(t.fresh(), (vec![true, true, false, false], ALL.to_vec()));
    t.rig
        .submit(base, &[iotlb_desc(1, 0, 0, 0), wait_sw(status, 4)]);
    assert_eq!(t.fresh(), (ALL.to_vec(), ALL.to_vec()));
    assert_eq!(t.rig.read_u64(status) as u32, 4);
}

#[test]
fn superpage_is_dropped_by_a_page_invalidation_inside_it() {
    let mut rig = Rig::enabled(VtdConfig::default());
    let dev = rid(0, 3, 0);
    let top = rig.translated(dev, 1, 1);
    let at = rig.map(top, 3, 0x20_0000, 0x40_0000, 0x20_0000, RW);
    assert_eq!(rig.gpa(dev, 0x30_0000), 0x50_0000);
    rig.write_u64(at, 0x60_0000 | RW | 1 << 7);
    assert_eq!(rig.gpa(dev, 0x30_0000), 0x50_0000, "stale");
    rig.w64(0xf0, 0x30_0000);
    rig.w64(0xf8, 1 << 63 | 3 << 60 | 1 << 32);
    assert_eq!(rig.gpa(dev, 0x30_0000), 0x70_0000);
}

/// Device a's context moves to a new table and domain; each context invalidation that covers
/// it makes the change visible, others do not.
fn moved_context() -> (Rig, RequesterId, RequesterId) {
    let mut rig = Rig::enabled(VtdConfig::default());
    let a = rid(0, 3, 0);
    let b = rid(0, 4, 0);
    let ta = rig.translated(a, 1, 1);
    let tb = rig.translated(b, 2, 1);
    rig.map(ta, 3, 0x1000, 0xa000, 0x1000, RW);
    rig.map(tb, 3, 0x1000, 0xb000, 0x1000, RW);
    assert_eq!(rig.gpa(a, 0x1000), 0xa000);
    assert_eq!(rig.gpa(b, 0x1000), 0xb000);
    // New tables for both, new domains (3 and 4) so the IOTLB does not hide the change.
    let na = rig.alloc();
    let nb = rig.alloc();
    rig.map(na, 3, 0x1000, 0xc000, 0x1000, RW);
    rig.map(nb, 3, 0x1000, 0xd000, 0x1000, RW);
    rig.set_context_raw(a, na | 1, 1 | 3 << 8);
    rig.set_context_raw(b, nb | 1, 1 | 4 << 8);
    assert_eq!(rig.gpa(a, 0x1000), 0xa000, "context cache is stale");
    (rig, a, b)
}

#[test]
fn context_device_invalidation_drops_one_device() {
    let (rig, a, b) = moved_context();
    rig.w64(0x28, 1 << 63 | 3 << 61 | u64::from(a.source_id()) << 16);
    assert_eq!(rig.gpa(a, 0x1000), 0xc000);
    assert_eq!(rig.gpa(b, 0x1000), 0xb000);
}

#[test]
fn context_device_invalidation_honours_the_function_mask() {
    let (rig, a, _) = moved_context();
    // SID of function 7 with FM=3 (ignore function bits) covers function 0.
    rig.w64(
        0x28,
        1 << 63 | 3 << 61 | 3 << 32 | u64::from(a.source_id() | 7) << 16,
    );
    assert_eq!(rig.gpa(a, 0x1000), 0xc000);
}

#[test]
fn context_domain_invalidation_drops_one_domain() {
    let (rig, a, b) = moved_context();
    rig.w64(0x28, 1 << 63 | 2 << 61 | 2);
    assert_eq!(rig.gpa(a, 0x1000), 0xa000);
    assert_eq!(rig.gpa(b, 0x1000), 0xd000);
}

#[test]
fn context_global_invalidation_drops_all() {
    let (mut rig, a, b) = moved_context();
    let base = rig.enable_qi();
    let status = rig.alloc();
    rig.submit(base, &[context_desc(1, 0, 0, 0), wait_sw(status, 1)]);
    assert_eq!(rig.gpa(a, 0x1000), 0xc000);
    assert_eq!(rig.gpa(b, 0x1000), 0xd000);
}

#[test]
fn srtp_and_te_flush_caches() {
    let (rig, a, _) = moved_context();
    rig.w32(0x18, 1 << 31 | 1 << 30);
    assert_eq!(rig.gpa(a, 0x1000), 0xc000);
    // TE off: identity.
    rig.w32(0x18, 0);
    assert_eq!(rig.gpa(a, 0x1000), 0x1000);
}
