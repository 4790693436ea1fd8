#!/usr/bin/env bash
# WASI tier: clippy of the crate for wasm32-wasip1, then targets/wasi's tests
# built for wasm32-wasip1 and run in Wasmtime (the `wasmtime` package from
# PyPI, through targets/wasi/run.py) with a preopened directory: the
# conformance suite over FileDevice, the README's RaftWal usage, what locking
# means there, and the one-format workload, whose log is then opened byte for
# byte on Linux; then the `blockwal` tool built for WASI, run there on a
# demo log that the Linux build verifies too. Ends with "wasi: N passed,
# N failed".
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
# The `blockwal` tool on WASI: built for wasm32-wasip1, run in Wasmtime
# (run.py, the same preopened directory), and the demo log it writes
# verified there and then by the Linux build: one format. Each step is one
# check; a step that cannot run because an earlier one failed fails too.
echo "test-wasi: the blockwal tool, built for wasm32-wasip1"
check() { # NAME COMMAND...: one passed or failed check in the log
  local name=$1; shift
  if "$@"; then
    echo "test result: ok. 1 passed; 0 failed (tool: $name)" | tee -a "$log"
  else
    echo "test result: FAILED. 0 passed; 1 failed (tool: $name)" | tee -a "$log"
    fails=1
  fi
}
wasm=$root/target/wasm32-wasip1/release/blockwal.wasm
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
tool_out=$root/target/wasi-tool.out
wasi_tool() { python3 "$root/targets/wasi/run.py" "$wasm" "$@" >"$tool_out" 2>&1; local s=$?; cat "$tool_out"; return $s; }
rm -rf "$data/demo"
# What each step printed is kept for the next (the Linux verify must see the
# same entries as the WASI one).
wasi_build() { cargo build -q --release --target wasm32-wasip1 --features cli --bin blockwal 2>&1 | tee -a "$log"; [ "${PIPESTATUS[0]}" = 0 ]; }
wasi_version() { wasi_tool --version && grep -qx "blockwal $version" "$tool_out"; }
# No --dir, and no preopened working directory: refused, saying to give one.
wasi_demo_no_dir() {
  ! wasi_tool demo --entries 100 && grep -q "give --dir inside a preopened directory" "$tool_out"
}
wasi_demo() { wasi_tool demo --dir /data/demo --entries 2000 && grep -q "demo ok" "$tool_out"; }
wasi_verify() {
  wasi_tool verify --dir /data/demo && wasi_seen=$(grep -o "ok: entries [0-9]*\.\.=[0-9]*" "$tool_out")
}
linux_verify() {
  local seen
  seen=$(cargo run -q --release --all-features --bin blockwal -- verify --dir "$data/demo") || { echo "$seen"; return 1; }
  echo "$seen"
  [ -n "$wasi_seen" ] && echo "$seen" | grep -qF "$wasi_seen"
}
wasi_seen=
check "build for wasm32-wasip1" wasi_build
check "blockwal --version" wasi_version
check "blockwal demo without --dir: told to give one" wasi_demo_no_dir
check "blockwal demo --dir /data/demo --entries 2000" wasi_demo
check "blockwal verify, on WASI" wasi_verify
check "the same log, verified by the Linux build" linux_verify

awk -v bad="$fails" '
  /^test result:/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
  END { if (bad && f == 0) f = 1; printf "wasi: %d passed, %d failed\n", p, f }' "$log"
[ "$fails" = 0 ]
