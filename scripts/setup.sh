#!/usr/bin/env bash
# Installs everything the full test suite needs on a fresh Debian machine that
# has only the Rust toolchain. Idempotent: each step is skipped when present.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v qemu-system-arm >/dev/null || need_apt+=(qemu-system-arm)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
command -v qemu-system-riscv32 >/dev/null || need_apt+=(qemu-system-misc)
command -v wineboot >/dev/null || need_apt+=(wine wine64)
command -v x86_64-w64-mingw32-gcc >/dev/null || need_apt+=(mingw-w64)
command -v strace >/dev/null || need_apt+=(strace)
python3 -c 'import wasmtime' 2>/dev/null || python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  if ! apt-get -o DPkg::Lock::Timeout=900 install -y -qq "${need_apt[@]}" >/dev/null; then
    # Some images ship a newer qemu-utils (backports) that blocks the distro's
    # qemu-system-*: take the qemu-utils that matches them and try once more.
    want=$(apt-cache policy qemu-system-arm | awk '/Candidate:/ {print $2}')
    echo "setup: retrying with qemu-utils=$want"
    apt-get -o DPkg::Lock::Timeout=900 install -y -qq --allow-downgrades \
      "${need_apt[@]}" "qemu-utils=$want" >/dev/null
  fi
fi

for t in wasm32-unknown-unknown thumbv7em-none-eabihf riscv32imac-unknown-none-elf \
  wasm32-wasip1 x86_64-pc-windows-gnu aarch64-apple-darwin x86_64-apple-darwin; do
  rustup target list --installed | grep -qx "$t" || rustup target add "$t"
done

# The WASI tier's runtime: Wasmtime, from PyPI.
python3 -c 'import wasmtime' 2>/dev/null ||
  python3 -m pip install -q wasmtime || python3 -m pip install -q --break-system-packages wasmtime

# wasm-bindgen-cli must match the wasm-bindgen version locked by the browser crate.
lock=targets/browser/Cargo.lock
if [ -f "$lock" ]; then
  want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/,""); print; exit}' "$lock")
  have=$(wasm-bindgen-test-runner --version 2>/dev/null | awk '{print $2}' || true)
  if [ -n "$want" ] && [ "$want" != "$have" ]; then
    echo "setup: installing wasm-bindgen-cli $want"
    # --locked first (reproducible); some registry mirrors lack a locked
    # transitive version, so fall back to a fresh resolution.
    cargo install -q wasm-bindgen-cli --version "=$want" --locked ||
      cargo install -q wasm-bindgen-cli --version "=$want"
  fi
fi
echo "setup: ok"
