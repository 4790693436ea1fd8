#!/usr/bin/env bash
# On-target tests of blockwal on an emulated RISC-V microcontroller core
# (rv32imac, QEMU virt, semihosting): the same suite as the Cortex-M tier
# (targets/firmware-tests), then the code-size and heap figures, then the
# flash image the firmware wrote, opened on Linux byte for byte. The QEMU run
# ends with "riscv: N passed, M failed". Needs what scripts/setup.sh installs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if ! command -v qemu-system-riscv32 >/dev/null 2>&1 \
  || ! rustup target list --installed | grep -qx riscv32imac-unknown-none-elf; then
  echo "test-riscv: qemu-system-riscv32 or the riscv32imac-unknown-none-elf target is missing: run scripts/setup.sh" >&2
  exit 1
fi
cd "$root/targets/riscv"
export CARGO_TARGET_DIR="$PWD/target"
rm -f target/one-format-flash.img
# Each QEMU run is bounded: a hang on the emulated chip fails instead of stalling CI.
timeout 600 cargo test
bash "$root/scripts/cortex-m-size.sh" riscv
cd "$root"
BLOCKWAL_FORMAT_CHECK="flash:targets/riscv/target/one-format-flash.img" cargo test -q --release \
  --all-features --test one_format logs_written_elsewhere_open_here -- --nocapture
