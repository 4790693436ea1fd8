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
//! shortens part 1.
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

/// Buffered append on a device that discards writes: the CPU cost of the
/// append path (encode, CRC, cache), against the copy a raw writer makes.
fn criterion_groups(c: &mut Criterion) {
    let mut g = c.benchmark_group("buffered_append");
    for size in [128usize, 1024] {
        g.throughput(Throughput::Elements(1));
        let data = vec![7u8; size];
        g.bench_with_input(BenchmarkId::new("blockwal", size), &size, |b, _| {
            b.iter_custom(|iters| {
                let dev = MemDevice::new(1 << 20, 64, 64);
                let mut wal = Wal::open_with(dev, WalOptions::default()).unwrap();
                let mut i = 1u64;
                let mut spent = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(20_000);
                    let t = Instant::now();
                    for _ in 0..n {
                        wal.append(i, black_box(&data)).unwrap();
                        i += 1;
                    }
                    spent += t.elapsed();
                    wal.sync().unwrap();
                    wal.compact(i - 100).unwrap();
                    left -= n;
                }
                spent
            })
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
    ab_comparisons(quick);
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(if quick { 1 } else { 3 }));
    criterion_groups(&mut c);
    c.final_summary();
}
