#!/usr/bin/env bash
# On-target tests of blockwal on an emulated Cortex-M4 (QEMU mps2-an386), then
# the code-size and heap figures. Needs what scripts/setup.sh installs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if ! command -v qemu-system-arm >/dev/null 2>&1 \
  || ! rustup target list --installed | grep -qx thumbv7em-none-eabihf; then
  echo "test-cortex-m: qemu-system-arm or the thumbv7em-none-eabihf target is missing: run scripts/setup.sh" >&2
  exit 1
fi
cd "$root/targets/cortex-m"
export CARGO_TARGET_DIR="$PWD/target"
# Each QEMU run is bounded: a hang on the emulated chip fails instead of stalling CI.
rm -f target/one-format-flash.img
timeout 600 cargo test
bash "$root/scripts/cortex-m-size.sh"
# The flash image the firmware wrote (one_format_image), opened on Linux.
cd "$root"
BLOCKWAL_FORMAT_CHECK="flash:targets/cortex-m/target/one-format-flash.img" cargo test -q --release \
  --all-features --test one_format logs_written_elsewhere_open_here -- --nocapture
