#!/usr/bin/env bash
# Boot-time benchmark: wall time from iovmm's start to the kernel's "Run /init" line, for the
# test kernel as an ELF vmlinux (PVH entry and 64-bit entry) and as a bzImage (payload
# decompressed on the host), measured one after the other in one run so the ratios compare
# like with like. Needs the test kernel (tests/scripts/build-kernel.sh) and a release build.
#
# usage: tests/scripts/bench-boot.sh [--cpus N] [runs]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cpus=1
if [[ ${1:-} == --cpus ]]; then cpus=$2; shift 2; fi
runs=${1:-1}
kernel=$(bash "$here/build-kernel.sh" | tail -n1)
(cd "$repo" && cargo build --release --locked --bin iovmm >&2)
iovmm="$repo/target/release/iovmm"

# Prints the seconds from start to "Run /init" (or FAILED) for one boot.
time_to_init() {
    local start=$EPOCHREALTIME found=""
    while IFS= read -r line; do
        if [[ -z $found && $line == *"Run /init as init process"* ]]; then
            found=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
        fi
    done < <("$iovmm" --kernel "$1" --initrd "$kernel/initramfs.cpio" --cpus "$cpus" --memory 256M \
        --cmdline "console=ttyS0 panic=-1" --timeout 900 "${@:2}" 2>/dev/null)
    echo "${found:-FAILED}"
}

printf '%-28s %s\n' "kernel / entry ($cpus vCPU)" "seconds to 'Run /init'"
for ((r = 1; r <= runs; r++)); do
    printf '%-28s %s\n' "vmlinux, PVH" "$(time_to_init "$kernel/vmlinux" --boot-entry pvh)"
    printf '%-28s %s\n' "vmlinux, 64-bit entry" "$(time_to_init "$kernel/vmlinux" --boot-entry linux64)"
    printf '%-28s %s\n' "bzImage (xz, host inflate)" "$(time_to_init "$kernel/bzImage")"
done
