//! The system calls of a steady-state sync, seen by `strace` (Linux): a
//! batch append + sync on a log that has stopped growing is one `pwrite64`
//! and one `fdatasync`, never a `fallocate`, `ftruncate` or `fsync`; and a
//! grown file has no unwritten extents (`filefrag`), so those syncs carry no
//! extent conversion. Also prints the calls' median latencies beside a raw
//! file's (`scripts/strace-sync.sh` shows the same from the shell).
//!
//! Without `strace` (or `filefrag`) the tests say so and pass, except under
//! `CI=true`, where a missing tool is a failure (scripts/setup.sh installs it).
#![cfg(target_os = "linux")]

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};

use blockwal::conformance::payload;
use blockwal::{FileDevice, RaftWal, RaftWalOptions};

/// Set by the parent: `blockwal:DIR` or `raw:DIR` makes `strace_child` run
/// that workload in DIR.
const CHILD: &str = "BLOCKWAL_STRACE_CHILD";
/// The system calls traced (the same list as scripts/strace-sync.sh).
const TRACE: &str = "trace=pwrite64,write,fdatasync,fsync,fallocate,ftruncate";
/// Entries per batch and their size: 64 records of 16 + 128 bytes, 9,216 B.
const BATCH: u64 = 64;
const ENTRY: usize = 128;
/// Rounds before and during the measurement.
const WARMUP: u64 = 400;
const ROUNDS: u64 = 300;
/// Entries kept by the compaction between rounds.
const KEEP: u64 = 2_000;
/// RaftWal's default block size (a round that fills a block also opens one).
const BLOCK: u64 = 1 << 20;

/// Whether `tool` works here (strace: can trace a process; a container
/// may forbid ptrace); `false` prints why the test is skipped, and fails it
/// under CI.
fn have(tool: &str) -> bool {
    let args: &[&str] = if tool == "strace" {
        &["-o", "/dev/null", "true"]
    } else {
        &["-V"]
    };
    let ok = Command::new(tool)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    let fix = if tool == "strace" {
        "apt-get install strace (scripts/setup.sh does), and allow ptrace"
    } else {
        "apt-get install e2fsprogs"
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "`{tool}` is not on PATH or cannot run here: {fix}"
    );
    eprintln!("skipped: `{tool}` is not on PATH or cannot run here");
    false
}

/// The child workload (runs only when the parent sets `CHILD`). Writes a
/// marker line (one `write`) before each measured round, before each
/// compaction and at the end, so the parent can cut the trace into rounds.
#[test]
fn strace_child() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let (kind, dir) = spec.split_once(':').expect("kind:dir");
    let dir = Path::new(dir);
    let mut marks = File::create(dir.join("marks")).unwrap();
    let mut mark = |s: String| marks.write_all(s.as_bytes()).unwrap();
    match kind {
        "blockwal" => {
            let mut wal = RaftWal::open_with(dir.join("log"), RaftWalOptions::default()).unwrap();
            let mut next = 1;
            for r in 0..WARMUP + ROUNDS {
                if r >= WARMUP {
                    mark(format!("ROUND {r}\n"));
                }
                let batch: Vec<(u64, Vec<u8>)> = (next..next + BATCH)
                    .map(|i| (i, payload(i, ENTRY)))
                    .collect();
                wal.append_batch(&batch).unwrap();
                wal.sync().unwrap();
                next += BATCH;
                if r % 10 == 9 && next > KEEP {
                    if r >= WARMUP {
                        mark("COMPACT\n".into());
                    }
                    wal.compact(next - KEEP).unwrap();
                }
            }
        }
        "raw" => {
            // A file whose blocks are already written: the physical limit.
            let cap = 16u64 << 20;
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(dir.join("raw.dat"))
                .unwrap();
            f.write_all_at(&vec![0u8; cap as usize], 0).unwrap();
            f.sync_all().unwrap();
            let rec: Vec<u8> = (0..BATCH as usize * (16 + ENTRY))
                .map(|i| i as u8)
                .collect();
            let mut at = 0;
            for r in 0..WARMUP / 8 + ROUNDS {
                if r >= WARMUP / 8 {
                    mark(format!("ROUND {r}\n"));
                }
                if at + rec.len() as u64 > cap {
                    at = 0;
                }
                f.write_all_at(&rec, at).unwrap();
                f.sync_data().unwrap();
                at += rec.len() as u64;
            }
        }
        _ => panic!("unknown workload {kind}"),
    }
    mark("END\n".into());
}

/// One traced call: its name and how long it took (µs).
struct Call {
    name: String,
    micros: f64,
}

/// Segments of the trace between markers: `(marker, calls)`.
fn segments(trace: &str) -> Vec<(String, Vec<Call>)> {
    let mut out: Vec<(String, Vec<Call>)> = Vec::new();
    for line in trace.lines() {
        // `-f -o` prefixes every line with the pid.
        let line = line.trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ');
        if line.starts_with("<...") || line.starts_with("+++") || line.starts_with("---") {
            continue;
        }
        let Some((name, rest)) = line.split_once('(') else {
            continue;
        };
        if name == "write" {
            if let Some(m) = marker(rest) {
                // What follows the end is the test harness's output.
                let end = m == "END";
                out.push((m, Vec::new()));
                if end {
                    break;
                }
                continue;
            }
        }
        let micros = line
            .rsplit_once('<')
            .and_then(|(_, t)| t.trim_end_matches('>').parse::<f64>().ok())
            .map_or(f64::NAN, |s| s * 1e6);
        if let Some((_, calls)) = out.last_mut() {
            calls.push(Call {
                name: name.to_string(),
                micros,
            });
        }
    }
    out
}

/// The marker a `write` carries (`"ROUND 7\n"`, ...), if it is one.
fn marker(args: &str) -> Option<String> {
    let text = args.split('"').nth(1)?.strip_suffix("\\n")?;
    ["ROUND ", "COMPACT", "END"]
        .iter()
        .any(|m| text.starts_with(m))
        .then(|| text.to_string())
}

/// Runs `kind` under strace in a fresh directory; the trace's segments.
fn trace(kind: &str) -> Vec<(String, Vec<Call>)> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("strace.txt");
    let exe = std::env::current_exe().unwrap();
    let st = Command::new("strace")
        .args(["-f", "-T", "-e", TRACE, "-o"])
        .arg(&log)
        .arg(&exe)
        .args(["--exact", "strace_child", "--nocapture", "--test-threads=1"])
        .env(CHILD, format!("{kind}:{}", dir.path().display()))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "the traced {kind} workload failed: {st}");
    let text = std::fs::read_to_string(&log).unwrap();
    let segs = segments(&text);
    assert_eq!(
        segs.iter().filter(|(m, _)| m.starts_with("ROUND")).count() as u64,
        ROUNDS,
        "markers missing from the {kind} trace"
    );
    assert_eq!(segs.last().map(|(m, _)| m.as_str()), Some("END"));
    segs
}

/// The names of `calls`, in order.
fn shape(calls: &[Call]) -> Vec<&str> {
    calls.iter().map(|c| c.name.as_str()).collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Median latencies (µs) of the pwrite64 and fdatasync of one-pwrite rounds.
fn latencies(segs: &[(String, Vec<Call>)]) -> (f64, f64) {
    let of = |name: &str| {
        let v = segs
            .iter()
            .filter(|(m, c)| m.starts_with("ROUND") && c.len() == 2)
            .flat_map(|(_, c)| c.iter().filter(|c| c.name == name).map(|c| c.micros))
            .collect();
        median(v)
    };
    (of("pwrite64"), of("fdatasync"))
}

#[test]
fn a_steady_state_sync_is_one_pwrite_and_one_fdatasync() {
    if !have("strace") {
        return;
    }
    let segs = trace("blockwal");
    // Nothing that allocates or changes the file's size, in rounds or in the
    // compactions between them: the log reuses its compacted blocks.
    for (m, calls) in &segs {
        for c in calls {
            assert!(
                c.name == "pwrite64" || c.name == "fdatasync",
                "{m}: {} in steady state: {:?}",
                c.name,
                shape(calls)
            );
        }
    }
    // A round that fills the head block also seals it and opens the next
    // one (its header made durable first): at most one per half block of
    // data, generously. Every other round is exactly pwrite64 + fdatasync.
    let rounds: Vec<_> = segs
        .iter()
        .filter(|(m, _)| m.starts_with("ROUND"))
        .collect();
    let plain = rounds
        .iter()
        .filter(|(_, c)| shape(c) == ["pwrite64", "fdatasync"])
        .count() as u64;
    let crossings = ROUNDS * BATCH * (16 + ENTRY as u64) / (BLOCK / 2) + 2;
    assert!(
        ROUNDS - plain <= crossings,
        "{} of {ROUNDS} rounds were not one pwrite64 + one fdatasync (at most {crossings} may open a block): {:?}",
        ROUNDS - plain,
        rounds
            .iter()
            .filter(|(_, c)| shape(c) != ["pwrite64", "fdatasync"])
            .map(|(m, c)| format!("{m}: {:?}", shape(c)))
            .collect::<Vec<_>>()
    );
    // Each of them still ends durable: its last call is the fdatasync.
    for (m, c) in &rounds {
        assert_eq!(shape(c).last(), Some(&"fdatasync"), "{m}: {:?}", shape(c));
    }
    // The figures beside the raw baseline's (printed, not asserted: timing
    // belongs to benchmarks).
    let (bw_w, bw_s) = latencies(&segs);
    let raw = trace("raw");
    for (m, c) in raw.iter().filter(|(m, _)| m.starts_with("ROUND")) {
        assert_eq!(shape(c), ["pwrite64", "fdatasync"], "raw {m}");
    }
    let (raw_w, raw_s) = latencies(&raw);
    eprintln!(
        "median µs over {ROUNDS} rounds of 9,216 B: blockwal pwrite64 {bw_w:.0}, fdatasync {bw_s:.0}; \
         raw pwrite64 {raw_w:.0}, fdatasync {raw_s:.0}; fdatasync ratio raw/blockwal {:.2} \
         ({plain} of {ROUNDS} blockwal rounds were exactly one pwrite64 + one fdatasync)",
        raw_s / bw_s
    );
}

/// A grown log file has no unwritten (fallocated) extents: the growth wrote
/// its blocks, so a sync of data written there carries no extent conversion.
#[test]
fn a_grown_file_has_no_unwritten_extents() {
    if !have("filefrag") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dev = FileDevice::open(dir.path(), 64 << 10, 4, 1 << 16).unwrap();
    let mut wal = blockwal::Wal::open(dev).unwrap();
    for i in 1..=200u64 {
        wal.append(i, &payload(i, 4000)).unwrap();
    }
    wal.sync().unwrap();
    drop(wal);
    let path = dir.path().join("blockwal.log");
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len >= 200 * 4000, "the log did not grow: {len} bytes");
    let out = Command::new("filefrag")
        .arg("-v")
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !text.contains("ext:") {
        // No FIEMAP on this file system (tmpfs, overlays): nothing to see.
        eprintln!(
            "skipped: filefrag cannot map extents here: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    assert!(
        !text.contains("unwritten"),
        "unwritten extents in a grown log file:\n{text}"
    );
}
