//! Boots the test kernel from an ext4 root on virtio-blk, with a second (partitioned) disk, the
//! rng and the kernel console on virtio-console (hvc0), and checks the guest's view of each
//! device and, on the host, that the root filesystem was mounted read-write.

// A test that cannot set itself up should fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use iovmm_tests::linux::{artifacts_or_skip, assert_reached_init, boot_linux};
use iovmm_tests::{make_disks, scratch_dir, superblock_mounts};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_iovmm"))
}

#[test]
fn root_on_virtio_blk_with_partitioned_data_disk_rng_and_hvc0_console() {
    let Some(k) = artifacts_or_skip() else { return };
    let dir = scratch_dir("linux-virtio");
    let disks = make_disks(&dir, Some(&k.init)).unwrap();
    let (mounts_before, _) = superblock_mounts(&disks.root).unwrap();
    let console = dir.join("hvc0.log");
    let serial = dir.join("serial.log");
    let r = boot_linux(
        bin(),
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
            "--console",
            &format!("file={}", console.display()),
            "--serial",
            &format!("file={}", serial.display()),
            "--cmdline",
            "console=hvc0 root=/dev/vda rw panic=-1",
            "--timeout",
            "600",
        ],
    );
    // From the moment virtio-console registers hvc0, the kernel log arrives through it (and not
    // on the serial port, which has no console).
    let log = &std::fs::read_to_string(&console).unwrap_or_default();
    let serial_log = std::fs::read_to_string(&serial).unwrap_or_default();
    assert!(
        !serial_log.contains("EXT4-fs"),
        "the kernel log went to ttyS0\n{serial_log}"
    );
    for line in [
        "[vda] 65536 512-byte logical blocks",
        "[vdb] 32768 512-byte logical blocks",
        " vdb: vdb1",
        "EXT4-fs (vda): mounted filesystem",
        "VFS: Mounted root (ext4 filesystem) on device",
    ] {
        assert!(log.contains(line), "missing '{line}'\n{}", r.transcript());
    }
    assert!(
        !log.contains("readonly"),
        "root mounted read-only\n{}",
        r.transcript()
    );
    assert_reached_init(log, &r);
    let (mounts_after, _) = superblock_mounts(&disks.root).unwrap();
    assert!(
        mounts_after > mounts_before,
        "ext4 mount count {mounts_before} -> {mounts_after}: the guest did not mount it read-write"
    );
}

#[test]
fn a_read_only_root_disk_is_mounted_read_only_and_left_untouched() {
    let Some(k) = artifacts_or_skip() else { return };
    let dir = scratch_dir("linux-virtio-ro");
    let disks = make_disks(&dir, Some(&k.init)).unwrap();
    let before = std::fs::read(&disks.root).unwrap();
    let r = boot_linux(
        bin(),
        &[
            "--kernel",
            k.vmlinux.to_str().unwrap(),
            "--memory",
            "256M",
            "--disk",
            &format!("path={},readonly=on", disks.root.display()),
            "--cmdline",
            "console=ttyS0 root=/dev/vda rw panic=-1",
            "--timeout",
            "600",
        ],
    );
    assert!(
        r.stdout
            .contains("VFS: Mounted root (ext4 filesystem) readonly on device"),
        "{}",
        r.transcript()
    );
    assert_reached_init(&r.stdout, &r);
    assert!(
        std::fs::read(&disks.root).unwrap() == before,
        "a read-only disk image changed"
    );
}
