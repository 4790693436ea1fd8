#!/usr/bin/env bash
# macOS tier (check only: there is no Apple linker here): clippy with
# -D warnings for aarch64-apple-darwin and x86_64-apple-darwin, default
# features and `cli`, every target (library, tool, tests, examples). Catches what Apple lacks (fadvise, fallocate) and
# every warning in the Apple code paths (the F_FULLFSYNC sync). Ends with
# "macos: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
passed=0 failed=0
for t in aarch64-apple-darwin x86_64-apple-darwin; do
  rustup target list --installed | grep -qx "$t" || rustup target add "$t"
  for features in "" "--features cli"; do
    # shellcheck disable=SC2086
    if cargo clippy -q --release --target "$t" $features --all-targets -- -D warnings; then
      echo "macos: clippy $t ${features:-default} ... ok"
      passed=$((passed + 1))
    else
      echo "macos: clippy $t ${features:-default} ... FAILED"
      failed=$((failed + 1))
    fi
  done
done
echo "macos: $passed passed, $failed failed"
[ "$failed" = 0 ]
