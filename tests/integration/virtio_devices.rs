//! virtio-pci devices driven end to end by micro-guests (tests/guests/virtio_*.c): PCI
//! enumeration, capabilities, feature negotiation, queues, requests, and hostile requests that
//! must be refused without hurting the VMM.

// A test that cannot set itself up should fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use iovmm_tests::{RunResult, guest, run, scratch_dir};

const SECTORS: u64 = 2048;

fn iovmm(args: &[&str]) -> RunResult {
    run(
        Path::new(env!("CARGO_BIN_EXE_iovmm")),
        args,
        Duration::from_secs(60),
    )
}

/// A 1 MiB disk whose sector i holds u64 i, then bytes (i * 7 + 1) & 0xff.
fn patterned_disk(dir: &Path) -> PathBuf {
    let mut bytes = Vec::with_capacity((SECTORS * 512) as usize);
    for sector in 0..SECTORS {
        bytes.extend_from_slice(&sector.to_le_bytes());
        bytes.extend(std::iter::repeat_n((sector * 7 + 1) as u8, 504));
    }
    let path = dir.join("disk.raw");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn blk_guest(disk: &Path, extra: &str, disk_opts: &str) -> RunResult {
    let kernel = guest("virtio_blk");
    iovmm(&[
        "--kernel",
        kernel.to_str().unwrap(),
        "--memory",
        "64M",
        "--disk",
        &format!("path={}{disk_opts}", disk.display()),
        "--cmdline",
        &format!("sectors={SECTORS} {extra}"),
        "--timeout",
        "30",
    ])
}

#[test]
fn virtio_blk_reads_writes_flushes_and_refuses_bad_requests() {
    let dir = scratch_dir("virtio-blk");
    let disk = patterned_disk(&dir);
    let r = blk_guest(&disk, "", "");
    assert_eq!(r.status, Some(0), "{}", r.transcript());
    assert!(r.stdout.contains("virtio-blk: OK"), "{}", r.transcript());
    assert!(
        r.stdout.contains("virtio-blk id 'disk.raw"),
        "{}",
        r.transcript()
    );
    // The guest wrote sectors 8-15 with 0xa5 ^ offset; the flush means it is in the file.
    let bytes = std::fs::read(&disk).unwrap();
    for (i, b) in bytes[8 * 512..16 * 512].iter().enumerate() {
        assert_eq!(*b, (0xa5 ^ i) as u8, "byte {i} of the written range");
    }
    assert_eq!(
        &bytes[16 * 512..16 * 512 + 8],
        &16u64.to_le_bytes(),
        "sector 16 untouched"
    );
}

#[test]
fn virtio_blk_survives_buffers_outside_ram_and_descriptor_loops() {
    let dir = scratch_dir("virtio-blk-hostile");
    let disk = patterned_disk(&dir);
    let r = blk_guest(&disk, "hostile", "");
    assert_eq!(r.status, Some(0), "{}", r.transcript());
    assert!(
        r.stdout.contains("hostile requests handled"),
        "{}",
        r.transcript()
    );
}

#[test]
fn virtio_blk_read_only_disk_refuses_writes() {
    let dir = scratch_dir("virtio-blk-ro");
    let disk = patterned_disk(&dir);
    let r = blk_guest(&disk, "", ",readonly=on");
    // The guest's write check (status 7) must fail: the device answers IOERR.
    assert_eq!(r.status, Some(7), "{}", r.transcript());
    assert!(r.stdout.contains("write failed"), "{}", r.transcript());
    let bytes = std::fs::read(&disk).unwrap();
    assert_eq!(
        &bytes[8 * 512..8 * 512 + 8],
        &8u64.to_le_bytes(),
        "read-only disk was modified"
    );
}

#[test]
fn virtio_rng_fills_buffers() {
    let kernel = guest("virtio_rng");
    let r = iovmm(&[
        "--kernel",
        kernel.to_str().unwrap(),
        "--memory",
        "32M",
        "--rng",
        "--timeout",
        "30",
    ]);
    assert_eq!(r.status, Some(0), "{}", r.transcript());
    assert!(r.stdout.contains("virtio-rng: OK"), "{}", r.transcript());
}

#[test]
fn a_dma_the_iommu_denies_is_recorded_with_reason_and_source_and_the_vm_keeps_running() {
    let dir = scratch_dir("vtd-fault");
    let disk = patterned_disk(&dir);
    let kernel = guest("vtd_fault");
    let trace = dir.join("vtd.trace");
    let r = iovmm(&[
        "--iommu-trace",
        trace.to_str().unwrap(),
        "--kernel",
        kernel.to_str().unwrap(),
        "--memory",
        "64M",
        "--disk",
        &format!("path={}", disk.display()),
        "--iommu",
        "intel",
        "--timeout",
        "30",
    ]);
    assert_eq!(r.status, Some(0), "{}", r.transcript());
    assert!(r.stdout.contains("vtd-fault: OK"), "{}", r.transcript());
    // The trace shows the guest programming the unit, the fault, and the state at exit.
    let t = std::fs::read_to_string(&trace).unwrap();
    for line in [
        "write64 RTADDR@0x020",
        "gcmd SRTP",
        "register invalidation context-global",
        "fault write sid=00:01.0",
        "[fault reason 0x05] PTE Write access is not set",
        "did=7",
        "--- state when the VM stopped ---",
        "00:01.0 did=7 tt=0 aw=1",
    ] {
        assert!(t.contains(line), "trace lacks '{line}'\n{t}");
    }
    assert!(
        r.stderr.contains("VT-d: DMA translations by domain id: 7="),
        "{}",
        r.transcript()
    );
}
