#!/usr/bin/env bash
# Runs each fuzz target in fuzz/ for SECONDS (default 60) with cargo-fuzz
# (libFuzzer, needs a nightly toolchain). Installs cargo-fuzz if missing.
# Without a nightly toolchain it falls back to the stable, proptest-style
# long-running twins of the same targets (tests/fuzz_twins.rs, ignored tests).
#   usage: scripts/fuzz.sh [SECONDS] [TARGET...]
# Crashes are left in fuzz/artifacts/TARGET/; reproduce one with
#   cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(open_image power_cut salvage)

if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal >/dev/null 2>&1 || true
fi
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz.sh: no nightly toolchain: running the stable twins for ${secs}s each instead"
  for t in "${targets[@]}"; do
    FUZZ_TWIN_SECONDS=$secs cargo test -q --release --test fuzz_twins "long_$t" -- --ignored --nocapture
  done
  exit 0
fi
command -v cargo-fuzz >/dev/null || cargo install -q cargo-fuzz --locked

cd fuzz
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  echo "=== fuzzing $t for ${secs}s ($(date +%T))"
  cargo +nightly fuzz run -O "$t" "corpus/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1
done
