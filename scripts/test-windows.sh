#!/usr/bin/env bash
# Windows tier, for real: the test binaries are built for x86_64-pc-windows-gnu
# (mingw-w64) and run under wine (headless, its own prefix in target/wine):
# the conformance suite on FileDevice (and on flash), the file-device tests
# (the lock across two handles, the capacity limit, reopen, errors naming
# the file), the crash-simulator smoke set (every test of tests/crash.rs but
# the long crash_points sweep), the one-format workload, whose log is
# then opened byte for byte on Linux, and the `blockwal` tool: tests/cli.rs
# (each test spawns blockwal.exe under wine; those needing a pty are
# unix-only) and the tool's unit tests. Ends with "windows: N passed, N failed".
#
# Rust's std on Windows imports ProcessPrng from bcryptprimitives.dll, which
# wine 8 lacks: scripts/wine/processprng.c is a stand-in built here with
# mingw and put into the prefix's system32.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TERM_COLOR=never
target=x86_64-pc-windows-gnu
for tool in x86_64-w64-mingw32-gcc wineboot wineserver; do
  command -v "$tool" >/dev/null || { echo "test-windows: $tool missing: run scripts/setup.sh" >&2; exit 1; }
done
wine=$(command -v wine64 || echo /usr/lib/wine/wine64)
[ -x "$wine" ] || { echo "test-windows: wine64 missing: run scripts/setup.sh" >&2; exit 1; }
rustup target list --installed | grep -qx "$target" || rustup target add "$target"

export WINEPREFIX="$root/target/wine/prefix" WINEDEBUG=-all WINEARCH=win64
unset DISPLAY WAYLAND_DISPLAY # headless: wine must not look for a screen
mkdir -p target/wine
x86_64-w64-mingw32-gcc -O2 -shared -s -o target/wine/bcryptprimitives.dll \
  scripts/wine/processprng.c -ladvapi32
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  echo "test-windows: creating the wine prefix"
  timeout 300 wineboot -i >/dev/null 2>&1
fi
cp target/wine/bcryptprimitives.dll "$WINEPREFIX/drive_c/windows/system32/"
trap 'wineserver -k >/dev/null 2>&1 || true' EXIT

export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$wine"
out=target/one-format/windows
rm -rf "$out" && mkdir -p "$out"
log=target/wine/test.log
# The test binaries run with the package root as their working directory,
# so the relative path works on the Windows side too.
set +e
BLOCKWAL_FORMAT_DIR="$out" timeout 1500 cargo test --release --target "$target" --features flash,cli \
  --test conformance --test file_device --test crash --test one_format --test cli --bin blockwal \
  -- --skip crash_points 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

step_ok=0
if [ "$status" = 0 ]; then
  echo "test-windows: the log written under wine, opened on Linux"
  if BLOCKWAL_FORMAT_CHECK="file:$out/blockwal.log" cargo test -q --release --all-features \
    --test one_format logs_written_elsewhere_open_here -- --nocapture 2>&1 | tee -a "$log"; then
    step_ok=1
  fi
fi
# A build or runner failure leaves no result line: count it as one failure.
awk -v ok="$step_ok" '
  /^test result:/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
  END { if (!ok && f == 0) f = 1; printf "windows: %d passed, %d failed\n", p, f }' "$log"
[ "$status" = 0 ] && [ "$step_ok" = 1 ]
