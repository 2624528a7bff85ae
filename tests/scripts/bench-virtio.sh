#!/usr/bin/env bash
# virtio-blk throughput driven by a micro-guest (tests/guests/virtio_blk.c, at CPL3, so at native
# speed even without VT-x): N reads of 4 KiB and of 64 KiB from a 64 MiB image in the host page
# cache, one request in flight, polled completion. Prints requests/s and MB/s from the wall time
# of the whole run (iovmm start-up, ~20 ms, included; N is large enough to make it noise).
#
# usage: tests/scripts/bench-virtio.sh [N]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
n=${1:-20000}
cd "$repo"
cargo build --release --locked --bin iovmm >&2
cargo build --release --locked -p iovmm-tests >&2
guest=$(ls -d target/release/build/iovmm-tests-*/out/virtio_blk.elf | head -n1)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# Sector i starts with u64 i, then (i * 7 + 1) & 0xff: the pattern the guest checks first.
python3 - "$dir/disk.raw" <<'PY'
import struct, sys
with open(sys.argv[1], "wb") as f:
    for i in range(131072):
        f.write(struct.pack("<Q", i) + bytes([(i * 7 + 1) & 0xff]) * 504)
PY
printf '%-10s %10s %12s %10s\n' "request" "requests" "requests/s" "MB/s"
for size in 4096 65536; do
    start=$EPOCHREALTIME
    target/release/iovmm --kernel "$guest" --memory 64M --disk "path=$dir/disk.raw" \
        --cmdline "sectors=131072 bench=$n bsize=$size" --timeout 300 --log-level error >/dev/null
    awk -v a="$start" -v b="$EPOCHREALTIME" -v n="$n" -v s="$size" \
        'BEGIN { t = b - a; printf "%-10s %10d %12.0f %10.1f\n", s " B", n, n / t, n * s / t / 1e6 }'
done
