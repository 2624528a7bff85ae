//! Hostile guests: random register writes and random table contents never panic or hang,
//! plus an ignored micro benchmark of translate() hit vs miss.

use std::time::Instant;

use super::*;

/// A fixed-seed xorshift64 generator.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Interesting register offsets (plus anything else in the page).
const OFFSETS: [u64; 22] = [
    0x18, 0x20, 0x24, 0x28, 0x2c, 0x34, 0x38, 0x3c, 0x40, 0x44, 0x88, 0x8c, 0x90, 0x94, 0x9c, 0xa0,
    0xf0, 0xf4, 0xf8, 0xfc, 0x22c, 0x23c,
];

#[test]
fn random_registers_and_tables_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for config in [
        VtdConfig::default(),
        VtdConfig {
            aw_bits: 48,
            caching_mode: true,
            pass_through: false,
            fault_records: 1,
        },
    ] {
        let mut rig = Rig::new(config);
        rig.unit.subscribe(Arc::new(NullObserver));
        // 64 pages of random "tables" at 1 MiB.., pointers mostly into that area.
        let pages: Vec<u64> = (0..64).map(|_| rig.alloc()).collect();
        let random_pointer = |rng: &mut XorShift| -> u64 {
            match rng.below(4) {
                0 => rng.next(),
                _ => pages[rng.below(64) as usize] | (rng.next() & 0xfff),
            }
        };
        for page in &pages {
            for slot in 0..512u64 {
                let value = match rng.below(3) {
                    0 => 0,
                    1 => random_pointer(&mut rng) | rng.below(4),
                    _ => rng.next(),
                };
                rig.write_u64(page + slot * 8, value);
            }
        }
        for step in 0..20_000u32 {
            match rng.below(10) {
                0..=3 => {
                    let offset = if rng.below(2) == 0 {
                        OFFSETS[rng.below(OFFSETS.len() as u64) as usize]
                    } else {
                        rng.below(0x1000) & !3
                    };
                    let value = match rng.below(3) {
                        0 => random_pointer(&mut rng),
                        _ => rng.next(),
                    };
                    if rng.below(2) == 0 && offset % 8 == 0 {
                        rig.w64(offset, value);
                    } else {
                        rig.w32(offset, value as u32);
                    }
                }
                4 => {
                    // Odd sizes and alignments.
                    let offset = rng.below(0x1100);
                    let len = rng.below(9) as usize;
                    rig.unit
                        .mmio_write(offset, &rng.next().to_le_bytes()[..len]);
                    let mut buf = vec![0u8; len];
                    rig.unit.mmio_read(offset, &mut buf);
                }
                5 => {
                    // Scribble on the tables (and the queue, which lives there too).
                    let page = pages[rng.below(64) as usize];
                    let value = random_pointer(&mut rng) | rng.below(8);
                    rig.write_u64(page + rng.below(512) * 8, value);
                }
                6 => {
                    // Point the root table or the queue into the random pages and turn it on.
                    rig.w64(0x20, pages[rng.below(64) as usize]);
                    rig.w64(0x90, pages[rng.below(64) as usize] | rng.below(8));
                    rig.w32(0x18, (rng.next() as u32) & 0xc400_0000 | 1 << 30);
                }
                _ => {
                    let dev = RequesterId {
                        segment: 0,
                        bus: rng.below(4) as u8,
                        devfn: rng.next() as u8,
                    };
                    let iova = match rng.below(3) {
                        0 => rng.next(),
                        1 => rng.below(1 << 32),
                        _ => rng.below(1 << 24),
                    };
                    let access = match rng.below(3) {
                        0 => Permissions::Read,
                        1 => Permissions::Write,
                        _ => Permissions::ReadWrite,
                    };
                    let len = rng.next() >> rng.below(64);
                    if let Ok(t) = rig.unit.translate(dev, iova, len, access) {
                        assert!(t.len > 0, "step {step}");
                        assert!(
                            t.iova <= iova && iova - t.iova < t.len,
                            "step {step}: {t:x?}"
                        );
                        assert!(
                            t.iova + t.len <= 0xfee0_0000 || t.iova >= 0xfef0_0000,
                            "step {step}: {t:x?} reaches into the interrupt window"
                        );
                    }
                }
            }
        }
        // Still a working unit afterwards.
        rig.unit.reset();
        assert_eq!(rig.r32(0x1c), 0);
        let _ = rig.unit.dump_state();
        let _ = rig.unit.stats();
    }
}

#[derive(Debug)]
struct NullObserver;

impl crate::MappingObserver for NullObserver {
    fn on_event(&self, _: &crate::MappingEvent) {}
}

#[test]
#[ignore = "micro benchmark: cargo test -p iommu --release -- --ignored --nocapture bench"]
fn bench_translate_hit_vs_miss() {
    let mut rig = Rig::enabled(VtdConfig::default());
    let dev = rid(0, 3, 0);
    let top = rig.translated(dev, 1, 1);
    for page in 0..256u64 {
        rig.map(top, 3, page << 12, 0x200_0000 + (page << 12), 0x1000, RW);
    }
    let rounds = 200_000u64;
    let start = Instant::now();
    for i in 0..rounds {
        let _guard = rig.unit.dma_begin();
        rig.unit
            .translate(dev, (i % 256) << 12, 8, Permissions::Read)
            .unwrap();
    }
    let hit = start.elapsed() / rounds as u32;
    let start = Instant::now();
    for i in 0..rounds / 10 {
        // Global invalidation through the register interface before each access: every
        // translation walks the tables.
        rig.w64(0xf8, 1 << 63 | 1 << 60);
        let _guard = rig.unit.dma_begin();
        rig.unit
            .translate(dev, (i % 256) << 12, 8, Permissions::Read)
            .unwrap();
    }
    let miss_with_flush = start.elapsed() / (rounds / 10) as u32;
    println!("translate: IOTLB hit {hit:?}, miss (incl. register flush) {miss_with_flush:?}");
    let stats = rig.unit.stats();
    assert!(stats.iotlb_hits >= rounds - 256);
}
