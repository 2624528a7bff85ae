//! Boots the test kernel from an ext4 root on virtio-blk, with a second (partitioned) disk and
//! the rng, and checks the guest's view of each device and, on the host, that the root
//! filesystem was mounted read-write. (virtio-console is not implemented yet: the kernel log
//! comes over the serial port.)

// A test that cannot set itself up should fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use iovmm_tests::linux::{artifacts_or_skip, assert_reached_init, boot_linux};
use iovmm_tests::{make_disks, scratch_dir, superblock_mounts};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_iovmm"))
}

#[test]
fn root_on_virtio_blk_with_partitioned_data_disk_and_rng() {
    let Some(k) = artifacts_or_skip() else { return };
    let dir = scratch_dir("linux-virtio");
    let disks = make_disks(&dir, Some(&k.init)).unwrap();
    let (mounts_before, _) = superblock_mounts(&disks.root).unwrap();
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
            "--cmdline",
            "console=ttyS0 root=/dev/vda rw panic=-1",
            "--timeout",
            "600",
        ],
    );
    let log = &r.stdout;
    for line in [
        "virtio-pci 0000:00:03.0: enabling device",
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
