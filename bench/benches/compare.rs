//! blockwal beside a raw-file baseline and okaywal.
//!
//! Two parts:
//! 1. the side-by-side comparisons of `blockwal-bench` (the same code):
//!    raw `write` + `fdatasync`, blockwal, okaywal, raft-engine and raft-log
//!    in rotating turns, medians and ratios; the large logs are
//!    `BLOCKWAL_BENCH_LOG_MIB` MiB (default 1024);
//! 2. criterion groups for the CPU-bound part (buffered appends, blockwal
//!    against copying the same bytes into a buffer written when full).
//!
//! `cargo bench -p blockwal-bench --bench compare` runs both; `-- --quick`
//! shortens part 1; `BLOCKWAL_BENCH_CRITERION_ONLY=1` runs part 2 alone.
//! The open figures re-run this binary as a child with
//! `--open-peer PEER DIR BS`.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use blockwal::{MemDevice, Wal, WalOptions};
use blockwal_bench as compare;
use criterion::{BenchmarkId, Criterion, Throughput};

fn ab_comparisons(quick: bool) {
    let mut cfg = compare::Config::default();
    if quick {
        cfg.rounds = 7;
        cfg.scale = 0.5;
        cfg.log_mib = 64;
        cfg.open_rounds = 1;
    }
    if let Some(m) = std::env::var("BLOCKWAL_BENCH_LOG_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        cfg.log_mib = m;
    }
    if let Ok(d) = std::env::var("BLOCKWAL_BENCH_DIR") {
        cfg.dir = PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("own path");
    cfg.child = Some((exe, vec![]));
    let mut progress = |what: &str, frac: f64| eprintln!("[{:>3.0}%] {what}", frac * 100.0);
    let rows = compare::run_all(&cfg, &mut progress).expect("comparisons run");
    println!("{}", compare::table(&rows));
}

/// One blockwal log kept warm across criterion's samples: a fresh 64 MiB
/// device and log per sample would make each sample pay page faults and
/// cache growth (four runs of that gave 197, 46, 36.5 and 133 ns for the
/// same code); this measures the steady state. Memory stays bounded: every
/// 20,000 appends the log syncs and compacts, so the device's blocks recycle.
struct Warm {
    wal: Wal<MemDevice>,
    next: u64,
}

impl Warm {
    const CHUNK: u64 = 20_000;

    fn new(size: usize) -> Warm {
        let dev = MemDevice::new(1 << 20, 64, 64);
        let wal = Wal::open_with(dev, WalOptions::default()).expect("a fresh log");
        let mut w = Warm { wal, next: 1 };
        // Two laps of the device: every block written and recycled, the
        // entry cache at its bound.
        let data = vec![7u8; size];
        let laps = 2 * (64u64 << 20) / (size as u64 + 20);
        w.run(laps, &data);
        w
    }

    /// Appends `iters` entries; returns the time inside the appends only.
    fn run(&mut self, iters: u64, data: &[u8]) -> Duration {
        let mut spent = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let n = left.min(Self::CHUNK - (self.next - 1) % Self::CHUNK);
            let t = Instant::now();
            for _ in 0..n {
                self.wal.append(self.next, black_box(data)).unwrap();
                self.next += 1;
            }
            spent += t.elapsed();
            left -= n;
            if (self.next - 1).is_multiple_of(Self::CHUNK) {
                self.wal.sync().unwrap();
                self.wal.compact(self.next - 100).unwrap();
            }
        }
        spent
    }
}

/// Buffered append on a memory device: the CPU cost of the append path
/// (encode, CRC, cache), against the copy a raw writer makes.
fn criterion_groups(c: &mut Criterion) {
    let mut g = c.benchmark_group("buffered_append");
    for size in [128usize, 1024] {
        g.throughput(Throughput::Elements(1));
        let data = vec![7u8; size];
        let mut warm = Warm::new(size);
        g.bench_with_input(BenchmarkId::new("blockwal", size), &size, |b, _| {
            b.iter_custom(|iters| warm.run(iters, &data))
        });
        g.bench_with_input(BenchmarkId::new("raw_copy", size), &size, |b, _| {
            let rec = vec![7u8; size + 16];
            let mut buf = Vec::with_capacity(512 << 10);
            b.iter(|| {
                buf.extend_from_slice(black_box(&rec));
                if buf.len() >= 256 << 10 {
                    black_box(&buf);
                    buf.clear();
                }
            })
        });
    }
    g.finish();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--open-peer") {
        let kind = args.get(2).and_then(|k| compare::Kind::from_id(k));
        let dir = args.get(3).expect("the log directory");
        let bs = args.get(4).and_then(|b| b.parse().ok()).unwrap_or(1 << 20);
        compare::side::open_peer_child(kind.expect("a peer"), std::path::Path::new(dir), bs)
            .expect("open");
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    // BLOCKWAL_BENCH_CRITERION_ONLY=1: skip part 1 (the criterion groups alone).
    if std::env::var_os("BLOCKWAL_BENCH_CRITERION_ONLY").is_none() {
        ab_comparisons(quick);
    }
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(if quick { 1 } else { 3 }));
    criterion_groups(&mut c);
    c.final_summary();
}
