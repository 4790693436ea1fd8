#!/usr/bin/env bash
# What blockwal costs a Cortex-M4 firmware (or, with the argument `riscv`, a
# RISC-V rv32imac one): builds the `baseline` and `wal` images of
# targets/cortex-m (targets/riscv) (release: opt-level "z", LTO, one codegen
# unit, panic = abort) and prints
#   core .text bytes: N     .text of `wal` minus .text of `baseline`
#   core .rodata bytes: N   the same for .rodata (tables, constants)
#   wal heap bytes: N       peak heap the `wal` workload used, run in QEMU
#   wal stack bytes: N      peak stack the same run used (painted stack; an
#                           upper bound, at most 64 bytes high)
#   core runtime .text bytes: N   the part of the core .text that is the
#                           runtime any alloc firmware has: mem* routines
#                           and the allocator (needs llvm-nm or nm)
# The firmware builds blockwal without default features (no `salvage`);
# SIZE_FEATURES=salvage (a comma-separated list) measures it with them.
# SIZE_DETAIL=1 also lists the largest symbols of `wal` (needs llvm-nm or nm)
# and the core's .text by source file (needs llvm-dwarfdump and python3).
# Needs the target and QEMU (qemu-system-arm, qemu-system-riscv32): scripts/setup.sh.
#   usage: scripts/cortex-m-size.sh [cortex-m|riscv]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
arch=${1:-cortex-m}
crate="$root/targets/$arch"
[ -f "$crate/.cargo/config.toml" ] || { echo "cortex-m-size: no target crate $crate" >&2; exit 1; }
triple=$(awk -F'"' '/^target = / { print $2; exit }' "$crate/.cargo/config.toml")
export CARGO_TARGET_DIR="$crate/target"
cd "$crate"

features=()
if [ -n "${SIZE_FEATURES:-}" ]; then
  features=(--features "$(echo "$SIZE_FEATURES" | sed 's/[^,][^,]*/blockwal\/&/g')")
fi
cargo build --release --bins -q "${features[@]}"
out="$CARGO_TARGET_DIR/$triple/release"
echo "target: $triple${SIZE_FEATURES:+ (blockwal features +$SIZE_FEATURES)}"

# Size of section $2 of ELF $1, in bytes: a size tool if there is one, else
# readelf's section table, else a few lines of python reading the ELF header.
section_size() {
  local elf=$1 sec=$2 tool hex
  for tool in rust-size llvm-size arm-none-eabi-size; do
    if command -v "$tool" >/dev/null 2>&1; then
      "$tool" -A "$elf" | awk -v s="$sec" '$1 == s { print $2; found = 1; exit } END { if (!found) print 0 }'
      return
    fi
  done
  if command -v readelf >/dev/null 2>&1; then
    # "[Nr] Name Type Addr Off Size ...": the size is 4 fields after the name.
    hex=$(readelf -S -W "$elf" | awk -v s="$sec" '{ for (i = 1; i <= NF; i++) if ($i == s) { print $(i + 4); exit } }')
    echo $((16#${hex:-0}))
    return
  fi
  python3 - "$elf" "$sec" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:4] == b"\x7fELF" and data[4] == 1, "expected a 32-bit ELF"
shoff, = struct.unpack_from("<I", data, 0x20)
shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x2E)
def sh(i):
    return struct.unpack_from("<IIIIIIIIII", data, shoff + i * shentsize)
stroff = sh(shstrndx)[4]
for i in range(shnum):
    h = sh(i)
    name = data[stroff + h[0]:data.index(b"\0", stroff + h[0])].decode()
    if name == sys.argv[2]:
        print(h[5]); break
else:
    print(0)
PY
}

base_text=$(section_size "$out/baseline" .text)
wal_text=$(section_size "$out/wal" .text)
base_ro=$(section_size "$out/baseline" .rodata)
wal_ro=$(section_size "$out/wal" .rodata)

# Peak heap of the workload: the firmware prints it through semihosting.
if ! run=$(timeout 120 cargo run --release --bin wal -q "${features[@]}" 2>&1); then
  echo "$run" >&2
  echo "cortex-m-size: the wal firmware failed in QEMU" >&2
  exit 1
fi
heap=$(echo "$run" | awk '/workload heap peak bytes:/ { print $NF }')
stack=$(echo "$run" | awk '/workload stack peak bytes:/ { print $NF }')

echo "baseline .text bytes: $base_text"
echo "wal .text bytes: $wal_text"
echo "core .text bytes: $((wal_text - base_text))"
echo "core .rodata bytes: $((wal_ro - base_ro))"
echo "wal heap bytes: ${heap:-unknown}"
echo "wal stack bytes: ${stack:-unknown}"
nm_tool=$(command -v llvm-nm || command -v arm-none-eabi-nm || command -v nm || true)
# Bytes of .text in the runtime symbols of ELF $1 (mem* routines, allocator).
runtime_text() {
  "$nm_tool" -S -C --radix=d "$1" | awk '
    $3 ~ /^[tT]$/ && ($4 ~ /^(compiler_builtins::mem::|__aeabi_mem|mem(cpy|move|set|cmp)$|(__rustc::)?__rust_(alloc|dealloc|realloc|alloc_zeroed)$|__rdl_)/ \
      || $0 ~ /(embedded_alloc|linked_list_allocator|TrackingHeap)/) { s += $2 }
    END { print s + 0 }'
}
if [ -n "$nm_tool" ]; then
  echo "core runtime .text bytes: $(( $(runtime_text "$out/wal") - $(runtime_text "$out/baseline") ))"
fi
if [ "${SIZE_DETAIL:-0}" = 1 ]; then
  if [ -n "$nm_tool" ]; then
    echo "largest symbols of wal (bytes, section type, name):"
    "$nm_tool" --size-sort -S -C --radix=d "$out/wal" | tail -25 | awk '{ $1 = ""; print }'
  fi
  # The symbols above hide what LTO inlined into them; the line tables
  # (the release profile keeps debug info) say which source the bytes of
  # each function came from.
  if command -v llvm-dwarfdump >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1; then
    echo "core .text by source, wal minus baseline (bytes; inlined code counted where it was written):"
    python3 - "$root" "$out/baseline" "$out/wal" <<'PY'
# .text bytes per source (file of the blockwal crate, module of core/alloc,
# other crate) of an ELF, from its DWARF line table: inlined code counts
# where it was written. argv: root, elf_base, elf_wal; prints wal - base.
import collections, re, subprocess, sys

def dwarf(elf, what):
    return subprocess.run(["llvm-dwarfdump", what, elf], capture_output=True,
                          text=True, check=True).stdout

def source(path, root):
    std = re.search(r"/library/(core|alloc|std)/src/([^/]+?)(?:\.rs)?(?:/|$)", path)
    if std:
        return f"{std.group(1)}::{std.group(2)}"
    if "compiler-builtins" in path or "compiler_builtins" in path:
        return "compiler_builtins"
    if path.startswith(root + "/src/"):
        return path[len(root) + 1:]
    if path.startswith(root + "/targets/"):
        return "(firmware) " + path[len(root) + 1:]
    crate = re.search(r"/registry/src/[^/]+/([^/]+)/", path)
    return crate.group(1) if crate else path

def bytes_by_source(elf, root):
    comp = {}
    stmt = None
    for line in dwarf(elf, "--debug-info").splitlines():
        m = re.search(r"DW_AT_stmt_list\s+\((0x[0-9a-f]+)\)", line)
        if m:
            stmt = int(m.group(1), 16)
        m = re.search(r'DW_AT_comp_dir\s+\("(.*)"\)', line)
        if m and stmt is not None:
            comp[stmt] = m.group(1)
            stmt = None
    out = collections.Counter()
    dirs, files, cur, prev, base = {}, {}, None, None, ""
    for line in dwarf(elf, "--debug-line").splitlines():
        m = re.match(r"debug_line\[(0x[0-9a-f]+)\]", line)
        if m:
            base = comp.get(int(m.group(1), 16), "")
            dirs, files, cur, prev = {0: base}, {}, None, None
            continue
        m = re.match(r'include_directories\[\s*(\d+)\] = "(.*)"', line)
        if m:
            d = m.group(2)
            dirs[int(m.group(1))] = d if d.startswith("/") else base + "/" + d
            continue
        m = re.match(r"file_names\[\s*(\d+)\]:", line)
        if m:
            cur = int(m.group(1))
            continue
        m = re.match(r'\s+name: "(.*)"', line)
        if m and cur is not None:
            files[cur] = [m.group(1), 0]
            continue
        m = re.match(r"\s+dir_index: (\d+)", line)
        if m and cur is not None:
            files[cur][1] = int(m.group(1))
            continue
        m = re.match(r"0x([0-9a-f]+)\s+\d+\s+\d+\s+(\d+)\s+\d+\s+\d+\s*(.*)", line)
        if not m:
            continue
        addr, f, flags = int(m.group(1), 16), int(m.group(2)), m.group(3)
        if prev is not None:
            name, d = files.get(prev[1], ["?", 0])
            path = name if name.startswith("/") else dirs.get(d, base) + "/" + name
            out[source(path, root)] += addr - prev[0]
        prev = None if "end_sequence" in flags else (addr, f)
    return out

root, base_elf, wal_elf = sys.argv[1:4]
base, wal = bytes_by_source(base_elf, root), bytes_by_source(wal_elf, root)
diff = {k: wal[k] - base.get(k, 0) for k in wal}
for k, v in sorted(diff.items(), key=lambda kv: -kv[1])[:30]:
    if v > 0:
        print(f"  {v:6} {k}")
PY
  fi
fi
budget=12288
if [ $((wal_text - base_text)) -gt "$budget" ]; then
  echo "cortex-m-size: core .text is over the $budget-byte budget" >&2
  if [ "${STRICT_SIZE:-0}" = 1 ]; then exit 1; fi
fi
