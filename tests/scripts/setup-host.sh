#!/usr/bin/env bash
# Installs what building and testing iovmm needs on a fresh Debian machine: the Rust toolchain
# (rustup, when no cargo >= 1.85 is on PATH) and the Debian packages for the micro-guests (gcc),
# the disk images (e2fsprogs) and the test kernel (build-kernel.sh installs its own).
# Idempotent and quiet when everything is there.
set -euo pipefail

die() { echo "setup-host: $*" >&2; exit 1; }

packages=(gcc make e2fsprogs cpio curl ca-certificates)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    [[ $(id -u) -eq 0 ]] || die "missing Debian packages: ${missing[*]} (run as root, or apt-get install them)"
    echo "setup-host: installing ${missing[*]}" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 || die "apt-get install failed"
fi

[[ -f "$HOME/.cargo/env" ]] && source "$HOME/.cargo/env"
rust_ok() {
    command -v cargo >/dev/null || return 1
    local minor
    minor=$(cargo --version | sed -n 's/^cargo 1\.\([0-9]*\).*/\1/p')
    [[ -n "$minor" && "$minor" -ge 85 ]]
}
if ! rust_ok; then
    echo "setup-host: installing the Rust toolchain with rustup (edition 2024 needs Rust >= 1.85)" >&2
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy >&2 \
        || die "rustup failed; install Rust >= 1.85 yourself"
    source "$HOME/.cargo/env"
fi
rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt >&2 || true
[[ -c /dev/kvm && -r /dev/kvm && -w /dev/kvm ]] || die "/dev/kvm is missing or not accessible to $(id -un)"
