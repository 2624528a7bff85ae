#!/usr/bin/env bash
# The whole test suite, from a fresh machine: host set-up, the test kernel (built once, cached
# under ~/.cache/iovmm), formatting and lint checks, then every test including the Linux boots.
# CI runs this through .ci/run. Exit status: 0 when everything passed.
#
# usage: tests/scripts/run-tests.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
step() { printf '\n== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }
started=$SECONDS

step "host set-up"
bash "$here/setup-host.sh"
[[ -f "$HOME/.cargo/env" ]] && source "$HOME/.cargo/env"

step "test kernel"
bash "$here/build-kernel.sh"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
# A missing test kernel fails instead of skipping; Linux boots run one at a time anyway.
IOVMM_REQUIRE_KERNEL=1 cargo test --workspace --locked

step "done in $((SECONDS - started)) s"
