//! Boots the test kernel with every virtio device behind the emulated Intel VT-d unit and
//! `intel_iommu=on`, lazy (the default) and strict: DMA remapping comes up, each device gets
//! its own IOMMU group, the ext4 root on virtio-blk mounts read-write through translated DMA,
//! no DMAR fault is reported, and iovmm's counters show DMA translated in two or more domains.

// A test that cannot set itself up should fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;

use iovmm_tests::linux::{artifacts_or_skip, assert_reached_init, boot_linux};
use iovmm_tests::{make_disks, scratch_dir, superblock_mounts};

/// Parses iovmm's exit line "VT-d: DMA translations by domain id: 1=120 2=7" into a map.
fn translations_by_domain(stderr: &str) -> BTreeMap<u16, u64> {
    let Some(line) = stderr
        .lines()
        .find(|l| l.contains("VT-d: DMA translations by domain id:"))
    else {
        return BTreeMap::new();
    };
    line.rsplit(':')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.parse().ok()?, v.parse().ok()?))
        })
        .collect()
}

fn boot_with_iommu(test: &str, iommu_args: &str) {
    let Some(k) = artifacts_or_skip() else { return };
    let dir = scratch_dir(test);
    let disks = make_disks(&dir, Some(&k.init)).unwrap();
    let (mounts_before, _) = superblock_mounts(&disks.root).unwrap();
    let cmdline = format!("console=ttyS0 root=/dev/vda rw panic=-1 {iommu_args}");
    let r = boot_linux(
        Path::new(env!("CARGO_BIN_EXE_iovmm")),
        &[
            "--kernel",
            k.vmlinux.to_str().unwrap(),
            "--memory",
            "256M",
            "--disk",
            &format!("path={}", disks.root.display()),
            "--disk",
            &format!("path={}", disks.data.display()),
            "--rng",
            "--iommu",
            "intel",
            "--cmdline",
            &cmdline,
            "--timeout",
            "600",
        ],
    );
    let log = &r.stdout;
    for line in [
        "DMAR: IOMMU enabled",
        "DMAR: Host address width 48",
        "DMAR: dmar0: reg_base_addr fed90000",
        "DMAR: dmar0: Using Queued invalidation",
        "DMAR: Intel(R) Virtualization Technology for Directed I/O",
        "EXT4-fs (vda): mounted filesystem",
        "VFS: Mounted root (ext4 filesystem) on device",
        " vdb: vdb1",
    ] {
        assert!(log.contains(line), "missing '{line}'\n{}", r.transcript());
    }
    // One group per virtio device (three functions, three groups).
    let mut groups: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split("Adding to iommu group ").nth(1))
        .collect();
    groups.sort_unstable();
    groups.dedup();
    assert!(
        groups.len() >= 3,
        "IOMMU groups {groups:?}\n{}",
        r.transcript()
    );
    for fault in [
        "DMAR: DRHD: handling fault",
        "DMAR: [DMA",
        "DMAR: [INTR-REMAP",
    ] {
        assert!(
            !log.contains(fault),
            "DMAR fault reported\n{}",
            r.transcript()
        );
    }
    assert_reached_init(log, &r);
    let (mounts_after, _) = superblock_mounts(&disks.root).unwrap();
    assert!(mounts_after > mounts_before, "root not mounted read-write");
    let domains = translations_by_domain(&r.stderr);
    assert!(
        domains.values().filter(|&&n| n > 0).count() >= 2,
        "DMA translated in fewer than two domains: {domains:?}\n{}",
        r.transcript()
    );
}

#[test]
fn virtio_dma_is_remapped_with_lazy_invalidation() {
    boot_with_iommu("linux-iommu-lazy", "intel_iommu=on");
}

#[test]
fn virtio_dma_is_remapped_with_strict_invalidation() {
    boot_with_iommu("linux-iommu-strict", "intel_iommu=on iommu.strict=1");
}

#[test]
fn the_domain_counter_line_parses() {
    let m =
        translations_by_domain("x\n[ 1.0] info  VT-d: DMA translations by domain id: 1=120 2=7\n");
    assert_eq!(m, BTreeMap::from([(1, 120), (2, 7)]));
}
