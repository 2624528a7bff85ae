#!/usr/bin/env bash
# Makes the disk images the Linux tests boot with, in DIR:
#   root.ext4  32 MiB ext4 root filesystem (marker file /iovmm-root-marker, empty /dev /proc /sys,
#              and INIT as /sbin/init when given)
#   data.raw   16 MiB raw disk, MBR with one Linux partition (sectors 2048..32767) whose first
#              sector holds the text "IOVMM-DATA-PARTITION"
# The ext4 superblock's mount count (s_mnt_count) starts at 0; a read-write mount raises it.
#
# usage: tests/scripts/make-disks.sh DIR [INIT]
set -euo pipefail

die() { echo "make-disks: $*" >&2; exit 1; }
[[ $# -eq 1 || $# -eq 2 ]] || die "usage: $0 DIR [INIT]"
dir=$1
init=${2:-}
mkdir -p "$dir"

if ! command -v mkfs.ext4 >/dev/null; then
    [[ $(id -u) -eq 0 ]] || die "mkfs.ext4 is missing: apt-get install e2fsprogs"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq e2fsprogs >&2
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{dev,proc,sys,sbin}
echo "iovmm root filesystem" >"$stage/iovmm-root-marker"
if [[ -n $init ]]; then
    install -m 755 "$init" "$stage/sbin/init"
fi

rm -f "$dir/root.ext4"
# No metadata checksums: the guest would compute crc32c for every metadata block, and guest
# kernel code is slow on hosts without VT-x/AMD-V. Linux 6.1 mounts every other default feature.
mkfs.ext4 -q -F -L iovmm-root -O ^metadata_csum,^metadata_csum_seed -d "$stage" "$dir/root.ext4" 32M

rm -f "$dir/data.raw"
truncate -s 16M "$dir/data.raw"
# MBR partition entry 1 at offset 446: not bootable, CHS unused, type 0x83 (Linux),
# first LBA 2048, 30720 sectors; then the 0x55aa signature.
printf '\x00\xfe\xff\xff\x83\xfe\xff\xff\x00\x08\x00\x00\x00\x78\x00\x00' |
    dd of="$dir/data.raw" bs=1 seek=446 conv=notrunc status=none
printf '\x55\xaa' | dd of="$dir/data.raw" bs=1 seek=510 conv=notrunc status=none
printf 'IOVMM-DATA-PARTITION' | dd of="$dir/data.raw" bs=512 seek=2048 conv=notrunc status=none
