#!/usr/bin/env bash
# Builds the test kernel (vmlinux, bzImage) and its initramfs from Debian's linux-source-6.1
# with tests/kernel/iovmm.config, cached under ${IOVMM_CACHE:-~/.cache/iovmm}/kernel/<key>.
# The key covers the source package version, the fragment, /init and this script, so a cache hit
# is exact. Prints the artifact directory on its last line; ~/.cache/iovmm/kernel/current links it.
#
# usage: tests/scripts/build-kernel.sh
set -euo pipefail

SCRIPT_VERSION=1
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
fragment="$repo/tests/kernel/iovmm.config"
init_src="$repo/tests/kernel/init.c"
cache="${IOVMM_CACHE:-$HOME/.cache/iovmm}"
packages=(linux-source-6.1 bc flex bison libelf-dev libssl-dev xz-utils gcc make cpio)

die() { echo "build-kernel: $*" >&2; exit 1; }

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    [[ $(id -u) -eq 0 ]] || die "missing Debian packages: ${missing[*]} (run as root, or apt-get install them)"
    echo "build-kernel: installing ${missing[*]}" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 || die "apt-get install failed"
fi

src_version=$(dpkg-query -W -f='${Version}' linux-source-6.1)
key=$( { echo "$src_version"; echo "$SCRIPT_VERSION"; cat "$fragment" "$init_src" "$0"; } | sha256sum | cut -c1-16)
out="$cache/kernel/$src_version-$key"

if [[ -f "$out/vmlinux" && -f "$out/bzImage" && -f "$out/initramfs.cpio" ]]; then
    ln -sfn "$out" "$cache/kernel/current"
    echo "$out"
    exit 0
fi

tarball=/usr/src/linux-source-6.1.tar.xz
[[ -f $tarball ]] || die "$tarball is missing (the linux-source-6.1 package installs it)"
build="$cache/build/$src_version"
mkdir -p "$cache/build" "$cache/kernel"
if [[ ! -f "$build/Makefile" ]]; then
    echo "build-kernel: unpacking $tarball" >&2
    rm -rf "$build.tmp" && mkdir -p "$build.tmp"
    tar -xJf "$tarball" -C "$build.tmp" --strip-components=1
    rm -rf "$build" && mv "$build.tmp" "$build"
fi

cd "$build"
echo "build-kernel: configuring (tinyconfig + $(basename "$fragment"))" >&2
make -s ARCH=x86_64 tinyconfig >&2
scripts/kconfig/merge_config.sh -m .config "$fragment" >/dev/null
make -s ARCH=x86_64 olddefconfig >&2

# Every line of the fragment must have survived Kconfig's dependency resolution.
lost=()
while IFS= read -r line; do
    case "$line" in
        CONFIG_*=*) grep -qxF "$line" .config || lost+=("$line") ;;
        "# CONFIG_"*" is not set")
            opt=${line#"# "}; opt=${opt%% *}
            grep -q "^$opt=" .config && lost+=("$line") ;;
    esac
done <"$fragment"
if ((${#lost[@]})); then
    printf '  %s\n' "${lost[@]}" >&2
    die "these fragment lines did not survive 'make olddefconfig' (missing dependencies?)"
fi

echo "build-kernel: make -j$(nproc) vmlinux bzImage (about 5 minutes on 2 cores)" >&2
start=$(date +%s)
make -s ARCH=x86_64 -j"$(nproc)" vmlinux bzImage >&2
echo "build-kernel: built in $(( $(date +%s) - start )) s" >&2

# The initramfs: /dev/console and a tiny static /init, uncompressed (unpacking a compressed
# one costs minutes of emulated guest time on hosts without VT-x/AMD-V).
tmp="$out.tmp"
rm -rf "$tmp" && mkdir -p "$tmp"
gcc -static -nostdlib -O2 -fno-pie -no-pie -fno-stack-protector -o "$tmp/init" "$init_src"
cat >"$tmp/initramfs.list" <<LIST
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
dir /proc 0755 0 0
dir /sys 0755 0 0
file /init $tmp/init 0755 0 0
LIST
usr/gen_init_cpio "$tmp/initramfs.list" >"$tmp/initramfs.cpio"
cp vmlinux "$tmp/vmlinux"
cp arch/x86/boot/bzImage "$tmp/bzImage"
cp .config "$tmp/config"
rm -rf "$out" && mv "$tmp" "$out"
ln -sfn "$out" "$cache/kernel/current"
echo "$out"
