#!/usr/bin/env bash
# The whole test suite, every tier. Installs what it needs first (Debian
# packages, rustup targets, wasm-bindgen-cli), so it runs on a fresh machine
# that has only the Rust toolchain. Used by the README and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

step() { printf '\n=== %s (%s)\n' "$1" "$(date +%T)"; }

step "setup"
bash scripts/setup.sh

step "format and lints"
cargo fmt --all -- --check
cargo clippy -q --all-targets --all-features -- -D warnings
cargo clippy -q --no-default-features --lib -- -D warnings
cargo clippy -q -p blockwal-bench --all-targets -- -D warnings

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc -q --no-deps --all-features

step "host tests: conformance, crash simulation, properties, kills, doctests"
cargo test -q --release --all-features
# The benchmark crate end to end on a tiny run (not its criterion bench).
cargo test -q --release -p blockwal-bench
cargo run -q --release --example raft_rs_cluster --features raft-rs

step "examples build, and the quick ones run (each checks what it shows)"
cargo build -q --release --examples --all-features
for ex in openraft_node tokio_tasks sim_crash_test verify_image firmware flash_hal; do
  cargo run -q --release --all-features --example "$ex" > /dev/null
done

step "no_std core builds for thumbv7em"
cargo build -q --release --lib --no-default-features --target thumbv7em-none-eabihf

for tier in cortex-m browser macos windows wasi riscv; do
  if [ -f "scripts/test-$tier.sh" ]; then
    step "$tier"
    bash "scripts/test-$tier.sh"
  fi
done

step "all tiers passed"
