#!/usr/bin/env bash
# Shows, with strace, what a steady-state append + sync costs in system calls:
# runs the workload of tests/strace_sync.rs (300 rounds of a batch of 64
# 128-byte entries + sync on a log that has stopped growing, compacting every
# 10 rounds; then the same 9,216-byte pwrite + fdatasync on a raw file whose
# blocks are already written) under
#   strace -f -T -e trace=pwrite64,write,fdatasync,fsync,fallocate,ftruncate
# and prints, per workload, how many rounds had each call sequence and the
# median latency of each call. The two workloads alternate REPS times
# (default 5; disk latency on a shared machine swings for seconds at a time)
# and the summary is the median of the runs' medians. Linux only.
#   usage: scripts/strace-sync.sh [DIR [REPS]]   (DIR: on the disk to measure;
#   default a new directory under /var/tmp). Keeps the traces in DIR/*.strace.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v strace >/dev/null || { echo "strace-sync.sh: install strace (apt-get install strace)" >&2; exit 1; }
dir=${1:-$(mktemp -d /var/tmp/blockwal-strace.XXXXXX)}
reps=${2:-5}
mkdir -p "$dir"
: >"$dir/medians"
exe=$(cargo test --release --all-features --test strace_sync --no-run 2>&1 |
  sed -n 's/.*Executable.*(\(.*strace_sync-[0-9a-f]*\)).*/\1/p' | tail -1)
[ -x "$exe" ] || { echo "strace-sync.sh: could not build tests/strace_sync.rs" >&2; exit 1; }

for rep in $(seq "$reps"); do for kind in blockwal raw; do
  work="$dir/$kind"
  rm -rf "$work" && mkdir -p "$work"
  BLOCKWAL_STRACE_CHILD="$kind:$work" strace -f -T \
    -e trace=pwrite64,write,fdatasync,fsync,fallocate,ftruncate \
    -o "$dir/$kind.strace" "$exe" --exact strace_child --nocapture --test-threads=1 >/dev/null
  echo "== $kind, run $rep ($dir/$kind.strace)"
  # Cut the trace at the child's marker writes ("ROUND n", "COMPACT", "END").
  awk '
    function flush() {
      if (seg != "") { shapes[seg "\t" calls]++ }
      if (calls ~ /fallocate|ftruncate|fsync/) { bad++ }
      calls = ""
    }
    function median(a, n,   i, j, t) {
      for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j > 0 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      return n ? a[int((n + 1) / 2)] : 0
    }
    { sub(/^[0-9]+ +/, "") }
    /^write\(.*"(ROUND [0-9]+|COMPACT|END)\\n"/ {
      flush()
      seg = ($0 ~ /"ROUND/) ? "round" : ($0 ~ /"COMPACT/) ? "compaction" : ""
      if ($0 ~ /"END/) { done = 1 }
      next
    }
    done || seg == "" { next }
    {
      name = $0; sub(/\(.*/, "", name)
      calls = calls (calls == "" ? "" : " + ") name
      t = $0; if (match(t, /<[0-9.]+>$/)) {
        us = substr(t, RSTART + 1, RLENGTH - 2) * 1e6
        if (seg == "round") { lat[name, ++nlat[name]] = us }
      }
    }
    END {
      flush()
      for (k in shapes) { split(k, p, "\t"); printf "  %4d %-10s  %s\n", shapes[k], p[1], p[2] }
      for (n in nlat) {
        for (i = 1; i <= nlat[n]; i++) v[i] = lat[n, i]
        m = median(v, nlat[n]); delete v
        printf "  median %-9s %7.0f us over %d calls in rounds\n", n, m, nlat[n]
        printf "%s %s %.1f\n", kind, n, m >> medians
      }
      printf "  %d segments with fallocate, ftruncate or fsync\n", bad
    }' kind="$kind" medians="$dir/medians" "$dir/$kind.strace" | sort -rn
done; done
echo "== median of $reps runs' medians (us)"
for kind in blockwal raw; do
  for call in pwrite64 fdatasync; do
    printf "  %-9s %-9s %7s\n" "$kind" "$call" \
      "$(awk -v k="$kind" -v c="$call" '$1 == k && $2 == c { print $3 }' "$dir/medians" |
        sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')"
  done
done
