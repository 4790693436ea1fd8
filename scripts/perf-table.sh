#!/usr/bin/env bash
# Prints what docs/performance.md quotes: the machine, then blockwal-bench's
# side-by-side table as it comes (paste both in as they are).
#   bash scripts/perf-table.sh [DIR [blockwal-bench options...]]
# DIR must be on the disk to measure, never a tmpfs (default: $TMPDIR or /tmp).
set -euo pipefail
dir=${1:-${TMPDIR:-/tmp}}
shift || true
fs=$(df -T "$dir" | awk 'NR==2 {print $2}')
if [ "$fs" = tmpfs ]; then
  echo "perf-table: $dir is on tmpfs; give a directory on a real disk" >&2
  exit 2
fi
echo '```text'
lscpu | grep -E '^(Model name|CPU\(s\)|Hypervisor vendor):' | sed 's/  */ /g'
echo "kernel: $(uname -sr)"
df -T "$dir" | awk 'NR==2 {print "filesystem: " $2 " on " $1 " (" $3/1048576 " GiB)"}'
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "rustc: $(rustc --version)"
echo '```'
echo
cargo run -q --release -p blockwal-bench -- --markdown --dir "$dir" "$@"
