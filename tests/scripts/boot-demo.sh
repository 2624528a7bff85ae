#!/usr/bin/env bash
# From a fresh machine to a booted guest: host set-up, the test kernel (cached), a release
# build of iovmm, then the kernel on 2 vCPUs with its console here. Extra arguments go to iovmm
# (e.g. --timeout 300, --serial file=boot.log).
#
# usage: tests/scripts/boot-demo.sh [iovmm options...]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
bash "$here/setup-host.sh"
[[ -f "$HOME/.cargo/env" ]] && source "$HOME/.cargo/env"
kernel=$(bash "$here/build-kernel.sh" | tail -n1)
cargo build --release --locked --bin iovmm
exec "$repo/target/release/iovmm" --kernel "$kernel/vmlinux" --initrd "$kernel/initramfs.cpio" \
    --cpus 2 --memory 256M --cmdline "console=ttyS0 panic=-1" "$@"
