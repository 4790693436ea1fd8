#!/usr/bin/env bash
# Browser tests for blockwal's OpfsDevice, non-interactive and bounded in time:
#   1. clippy of the crate with `opfs` for wasm32-unknown-unknown
#   2. wasm-bindgen-test suites in headless Chromium (targets/browser/tests:
#      OpfsDevice in a dedicated worker, the conformance suite on OPFS, the
#      main-thread error)
#   3. targets/browser/driver/run.py: the lock seen from a second worker and
#      a second tab; real kills: Chromium SIGKILLed mid-stream and restarted
#      on the same profile, every synced entry checked
#   4. the A/B benchmark (blockwal vs a raw sync access handle), printed
#   5. targets/browser/driver/demo.py: the Raft demo page (raft-rs nodes in
#      workers on OPFS) with a killed leader and Chromium SIGKILLed mid-write;
#      prints election time, commit latency and recovery time
# Exits non-zero on the first failure. Needs what scripts/setup.sh installs
# (chromium, chromium-driver, the wasm32 target, wasm-bindgen-cli matching
# targets/browser/Cargo.lock).
#
# Environment: CARGO_TARGET_DIR (default: target/), BLOCKWAL_BROWSER_PORT
# (default 8347, 127.0.0.1 only), SKIP_CLIPPY=1 / SKIP_BENCH=1 to leave out
# step 1 / step 4.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CI=true
export CARGO_TERM_COLOR=never
export CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}
export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-180}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
exec </dev/null

fail() { echo "test-browser: FAILED: $*" >&2; exit 1; }
step() { echo; echo "=== test-browser: $* ==="; }

# Tools: present, and the runner matching the locked wasm-bindgen.
for tool in chromium "$CHROMEDRIVER" wasm-bindgen wasm-bindgen-test-runner python3; do
  command -v "$tool" >/dev/null || fail "$tool not found: run scripts/setup.sh"
done
rustup target list --installed | grep -qx wasm32-unknown-unknown ||
  fail "the wasm32-unknown-unknown target is missing: run scripts/setup.sh"
lock=targets/browser/Cargo.lock
want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/,""); print; exit}' "$lock")
have=$(wasm-bindgen-test-runner --version | awk '{print $2}')
[ "$want" = "$have" ] ||
  fail "wasm-bindgen-test-runner is $have, $lock has wasm-bindgen $want: cargo install wasm-bindgen-cli --version =$want"

if [ "${SKIP_CLIPPY:-0}" != 1 ]; then
  step "clippy, wasm32, feature opfs"
  timeout 900 cargo clippy -q --target wasm32-unknown-unknown --no-default-features --features opfs -- -D warnings ||
    fail "clippy (wasm32, opfs)"
  step "clippy, browser crate"
  (cd targets/browser && timeout 900 cargo clippy -q --all-targets -- -D warnings) ||
    fail "clippy (targets/browser)"
fi

cd targets/browser
step "wasm-bindgen-test in headless Chromium (dedicated worker + main thread)"
timeout 1200 cargo test || fail "wasm-bindgen tests"

step "another worker, another tab: a typed Locked error"
timeout 300 python3 driver/run.py lock || fail "lock across workers and tabs"

step "Chromium SIGKILLed mid-stream, restarted on the same profile: OpfsDevice alone"
timeout 600 python3 driver/run.py persist --no-build --kind device --cycles 2 || fail "persistence (device)"
step "Chromium SIGKILLed mid-stream, restarted on the same profile: Wal, a sync per entry"
timeout 600 python3 driver/run.py persist --no-build --kind wal --cycles 3 || fail "persistence (wal)"
step "Chromium SIGKILLed mid-stream, restarted on the same profile: Wal, batches of 16"
timeout 600 python3 driver/run.py persist --no-build --kind wal --batch 16 --cycles 2 ||
  fail "persistence (wal, batches)"

step "the Raft demo: a leader killed, Chromium SIGKILLed mid-write, every acknowledged write back"
timeout 600 python3 driver/demo.py --no-build || fail "the Raft demo"

if [ "${SKIP_BENCH:-0}" != 1 ]; then
  step "benchmark: appends + flush per second in a dedicated worker, A/B alternated"
  timeout 600 python3 driver/run.py bench --no-build || fail "benchmark"
fi
echo
echo "test-browser: ok"
