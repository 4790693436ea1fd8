#!/usr/bin/env bash
# WASI tier: clippy of the crate for wasm32-wasip1, then targets/wasi's tests
# built for wasm32-wasip1 and run in Wasmtime (the `wasmtime` package from
# PyPI, through targets/wasi/run.py) with a preopened directory: the
# conformance suite over FileDevice, the README's RaftWal usage, what locking
# means there, and the one-format workload, whose log is then opened byte for
# byte on Linux. Ends with "wasi: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TERM_COLOR=never
rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1
python3 -c 'import wasmtime' 2>/dev/null ||
  { echo "test-wasi: the wasmtime Python package is missing: run scripts/setup.sh" >&2; exit 1; }

log=$root/target/wasi-test.log
mkdir -p target && : >"$log"
fails=0
if cargo clippy -q --release --target wasm32-wasip1 --lib -- -D warnings; then
  echo "test result: ok. 1 passed; 0 failed (clippy, wasm32-wasip1)" | tee -a "$log"
else
  echo "test result: FAILED. 0 passed; 1 failed (clippy, wasm32-wasip1)" | tee -a "$log"
  fails=1
fi

data=$root/target/wasi-data
rm -rf "$data" && mkdir -p "$data"
export BLOCKWAL_WASI_DIR="$data"
export CARGO_TARGET_WASM32_WASIP1_RUNNER="python3 $root/targets/wasi/run.py"
set +e
(cd targets/wasi && CARGO_TARGET_DIR="$PWD/target" timeout 1200 cargo test --release) 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" = 0 ] || fails=1
set -e

if [ "$fails" = 0 ]; then
  echo "test-wasi: the log written under WASI, opened on Linux"
  BLOCKWAL_FORMAT_CHECK="file:$data/one-format/blockwal.log" cargo test -q --release --all-features \
    --test one_format logs_written_elsewhere_open_here -- --nocapture 2>&1 | tee -a "$log" || fails=1
fi
awk -v bad="$fails" '
  /^test result:/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
  END { if (bad && f == 0) f = 1; printf "wasi: %d passed, %d failed\n", p, f }' "$log"
[ "$fails" = 0 ]
