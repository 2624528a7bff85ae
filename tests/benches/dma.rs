//! DMA through the emulated VT-d unit against DMA straight into guest memory, measured side by
//! side in one run: a 4 KiB device copy (read a page, write a page) through a device's DMA handle
//! (`pci::DeviceDma`), untranslated, translated with IOTLB hits (the same pages again and again)
//! and translated with IOTLB misses (a walk over 4096 distinct pages, more than the IOTLB holds).
//!
//! Run with `cargo bench -p iovmm-tests --bench dma`. Prints ns per copy and the ratios.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Instant;

use iommu::{DmaTranslate, MsiSink, RequesterId, VtdConfig, VtdUnit};
use pci::DeviceDma;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const MIB: u64 = 1 << 20;
const ROOT: u64 = 0x10_0000;
const CONTEXT: u64 = 0x10_1000;
const TABLES: u64 = 0x10_2000;
/// IOVA == GPA for [MAPPED_BASE, MAPPED_BASE + MAPPED_SIZE).
const MAPPED_BASE: u64 = 16 * MIB;
const MAPPED_SIZE: u64 = 16 * MIB;
const PAGES: u64 = MAPPED_SIZE / 4096;

#[derive(Debug)]
struct NoMsi;
impl MsiSink for NoMsi {
    fn send_msi(&self, _address: u64, _data: u32) -> bool {
        true
    }
}

/// Root → context (devfn 0x08, domain 1, 39-bit) → 3-level tables mapping the range 4 KiB-wise.
fn build_tables(mem: &GuestMemoryMmap) {
    let w = |addr: u64, v: u64| mem.write_obj(v, GuestAddress(addr)).unwrap();
    w(ROOT, CONTEXT | 1);
    let devfn = 0x08u64;
    let l3 = TABLES;
    w(CONTEXT + devfn * 16, l3 | 1);
    w(CONTEXT + devfn * 16 + 8, 1 | (1 << 8));
    let mut next = TABLES + 0x1000;
    let mut alloc = || {
        let t = next;
        next += 0x1000;
        t
    };
    let l2 = alloc();
    w(l3, l2 | 3); // IOVA bits 38:30 = 0
    for page in 0..PAGES {
        let iova = MAPPED_BASE + page * 4096;
        let l2e = l2 + ((iova >> 21) & 511) * 8;
        let mut l1 = mem.read_obj::<u64>(GuestAddress(l2e)).unwrap() & !0xfff;
        if l1 == 0 {
            l1 = alloc();
            w(l2e, l1 | 3);
        }
        w(l1 + ((iova >> 12) & 511) * 8, iova | 3);
    }
}

fn enable(unit: &VtdUnit) {
    unit.mmio_write(0x20, &ROOT.to_le_bytes());
    unit.mmio_write(0x18, &(1u32 << 30).to_le_bytes());
    unit.mmio_write(0x28, &((1u64 << 63) | (1 << 61)).to_le_bytes());
    unit.mmio_write(0xf8, &((1u64 << 63) | (1 << 60)).to_le_bytes());
    unit.mmio_write(0x18, &(1u32 << 31).to_le_bytes());
    let mut gsts = [0u8; 4];
    unit.mmio_read(0x1c, &mut gsts);
    assert_ne!(
        u32::from_le_bytes(gsts) & (1 << 31),
        0,
        "translation did not turn on"
    );
}

/// ns per 4 KiB copy from page `src(i)` to page `dst(i)`.
fn measure(mem: &pci::DmaMemory, iterations: u64, page_of: impl Fn(u64) -> u64) -> f64 {
    let mut buf = vec![0u8; 4096];
    let start = Instant::now();
    for i in 0..iterations {
        let src = MAPPED_BASE + page_of(i) * 4096;
        let dst = MAPPED_BASE + page_of(i + PAGES / 2) * 4096;
        mem.read_slice(&mut buf, GuestAddress(src)).unwrap();
        mem.write_slice(&buf, GuestAddress(dst)).unwrap();
    }
    start.elapsed().as_nanos() as f64 / iterations as f64
}

fn main() {
    let guest =
        GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), (64 * MIB) as usize)]).unwrap();
    build_tables(&guest);
    let unit = VtdUnit::new(
        VtdConfig {
            aw_bits: 39,
            ..VtdConfig::default()
        },
        guest.clone(),
        Arc::new(NoMsi),
    )
    .unwrap();
    enable(&unit);
    let rid = RequesterId::new(0, 0, 1, 0);
    let translator: Arc<dyn DmaTranslate> = unit.clone();
    let plain = DeviceDma::memory(guest.clone(), rid, None);
    let translated = DeviceDma::memory(guest.clone(), rid, Some(translator));

    let iterations = 200_000;
    let same_pages = |_i: u64| 0;
    let walk_pages = |i: u64| (i * 7) % PAGES;
    // Warm up both paths (page faults in the host mapping, the IOTLB for the hit case).
    measure(&plain, 10_000, walk_pages);
    measure(&translated, 1_000, same_pages);

    // Each translated case is compared with the untranslated copy of the same page pattern, so
    // host cache effects cancel out.
    let plain_same_ns = measure(&plain, iterations, same_pages);
    let plain_walk_ns = measure(&plain, iterations / 4, walk_pages);
    let hit_ns = measure(&translated, iterations, same_pages);
    let before = unit.stats();
    let miss_ns = measure(&translated, iterations / 4, walk_pages);
    let after = unit.stats();
    let misses = after.iotlb_misses - before.iotlb_misses;
    let lookups = misses + after.iotlb_hits - before.iotlb_hits;

    println!("4 KiB DMA copy (read page + write page), {iterations} iterations");
    println!(
        "  same two pages:  untranslated {plain_same_ns:7.0} ns, translated (IOTLB hit)  {hit_ns:7.0} ns, ratio {:.2}",
        hit_ns / plain_same_ns
    );
    println!(
        "  4096 pages:      untranslated {plain_walk_ns:7.0} ns, translated (IOTLB miss) {miss_ns:7.0} ns, ratio {:.2} ({misses} misses in {lookups} lookups)",
        miss_ns / plain_walk_ns
    );
}
