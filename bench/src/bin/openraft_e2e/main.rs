//! openraft end to end: a 3-node cluster in one process (in-memory network)
//! whose nodes keep their Raft logs in one of three stores — an in-memory
//! `BTreeMap` (the baseline: no durability), blockwal's
//! `blockwal::openraft::LogStore` over `RaftWal` files, and Databend's
//! `raft-log` — under 1, 16 and 256 concurrent clients, each writing a small
//! command through the leader and waiting for the answer (committed by a
//! quorum, applied on the leader). The stores alternate round-robin; the
//! table gives the median over rounds and the ratio to the in-memory store.
//!
//! ```text
//! cargo run --release -p blockwal-bench --bin openraft_e2e [-- --quick]
//! ```

mod cluster;
mod mem_store;
mod raft_log_store;
mod raw_sync;
#[cfg(test)]
mod suite;

use std::path::{Path, PathBuf};
use std::time::Duration;

use blockwal::openraft::{CommittedMode, LogStore, LogStoreOptions};
use blockwal::{FileDevice, RaftWal};
use clap::Parser;

use cluster::{BoxErr, Phase, PhaseResult, Stop, Tc};

/// openraft end to end: writes/s and latency of a 3-node cluster per log store.
#[derive(Parser)]
struct Args {
    /// One round of 1.5 s phases (about 30 s in all).
    #[arg(long)]
    quick: bool,
    /// Rounds; each round runs every store once, in a rotating order.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Seconds each client count runs for.
    #[arg(long, default_value_t = 2.0)]
    secs: f64,
    /// Writes per client instead of a duration (for checks, not for figures).
    #[arg(long)]
    writes: Option<u64>,
    /// Concurrent client counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    clients: Vec<usize>,
    /// Stores to run, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "mem,blockwal,blockwal-deferred,raft-log,raft-log-no-wait"
    )]
    stores: Vec<Store>,
    /// Directory for the logs (on the disk to measure; never tmpfs).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, clap::ValueEnum)]
enum Store {
    /// In-memory `BTreeMap` log store (no durability).
    Mem,
    /// blockwal's openraft `LogStore` over `RaftWal` files (defaults:
    /// the committed log id durable when `save_committed` returns).
    Blockwal,
    /// The same with `CommittedMode::Deferred`: the committed log id rides
    /// on the next log sync.
    BlockwalDeferred,
    /// A store over Databend's raft-log 0.4.6 with its defaults (the flush
    /// worker waits up to 1 ms for more requests before an fsync; the
    /// committed log id rides on the next fsync).
    RaftLog,
    /// raft-log with `flush_batch_wait` 0: fsync as soon as a request arrives.
    RaftLogNoWait,
}

impl Store {
    fn label(self) -> &'static str {
        match self {
            Store::Mem => "in-memory BTreeMap",
            Store::Blockwal => "blockwal (RaftWal files)",
            Store::BlockwalDeferred => "blockwal, committed deferred",
            Store::RaftLog => "raft-log 0.4.6",
            Store::RaftLogNoWait => "raft-log, flush_batch_wait 0",
        }
    }
}

/// One cluster run on fresh logs in `dir` (made and removed here).
async fn run_store(
    store: Store,
    dir: &Path,
    phases: &[Phase],
) -> Result<cluster::RunResult, BoxErr> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let node_dir = |i: u32| dir.join(format!("node{i}"));
    let res = match store {
        Store::Mem => {
            let stores = (1..=3).map(|_| mem_store::MemStore::default()).collect();
            cluster::run(stores, phases).await
        }
        Store::Blockwal | Store::BlockwalDeferred => {
            let committed = if store == Store::Blockwal {
                CommittedMode::Durable
            } else {
                CommittedMode::Deferred
            };
            let mut stores = Vec::new();
            for i in 1..=3 {
                let wal = RaftWal::open(node_dir(i))?;
                let opts = LogStoreOptions::default().committed(committed);
                stores.push(LogStore::<Tc, FileDevice>::with_options(
                    wal.into_inner(),
                    opts,
                )?);
            }
            cluster::run(stores, phases).await
        }
        Store::RaftLog | Store::RaftLogNoWait => {
            let wait = (store == Store::RaftLogNoWait).then_some(Duration::ZERO);
            let mut stores = Vec::new();
            for i in 1..=3 {
                let d = node_dir(i);
                std::fs::create_dir_all(&d)?;
                stores.push(raft_log_store::RaftLogStore::open(&d, wait)?);
            }
            cluster::run(stores, phases).await
        }
    };
    let _ = std::fs::remove_dir_all(dir);
    res
}

/// Warns when `dir` is on tmpfs: durability would cost nothing there.
fn check_disk(dir: &Path) {
    #[cfg(target_os = "linux")]
    if let Ok(st) = rustix::fs::statfs(dir) {
        const TMPFS_MAGIC: i64 = 0x0102_1994;
        #[allow(clippy::unnecessary_cast)] // f_type's integer type differs between targets
        if st.f_type as i64 == TMPFS_MAGIC {
            eprintln!(
                "warning: {} is on tmpfs; fsync costs nothing there (pass --dir on a real disk)",
                dir.display()
            );
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Per round: writes/s, p50 µs, p99 µs.
type Samples = Vec<(f64, f64, f64)>;

fn main() -> Result<(), BoxErr> {
    let mut a = Args::parse();
    if a.quick {
        a.rounds = 1;
        a.secs = 1.5;
    }
    if a.clients.is_empty() || a.clients.contains(&0) {
        return Err("--clients: give counts of at least 1".into());
    }
    a.stores.sort();
    a.stores.dedup();
    let stop = match a.writes {
        Some(n) => Stop::Writes(n),
        None if a.secs.is_finite() && a.secs > 0.0 => Stop::After(Duration::from_secs_f64(a.secs)),
        None => return Err("--secs: give a positive number of seconds".into()),
    };
    let phases: Vec<Phase> = a
        .clients
        .iter()
        .map(|&clients| Phase { clients, stop })
        .collect();
    let root = a
        .dir
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("openraft-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&root)?;
    check_disk(&root);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "3-node openraft 0.9 cluster in one process, in-memory network; logs in {}",
        root.display()
    );
    println!(
        "{} round(s); per store and round one cluster runs {} clients in turn, {}\n",
        a.rounds,
        a.clients
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        match stop {
            Stop::After(d) => format!("{:.1} s each", d.as_secs_f64()),
            Stop::Writes(n) => format!("{n} writes per client"),
        }
    );

    let mut samples: std::collections::BTreeMap<(Store, usize), Samples> = Default::default();
    let mut raw: Vec<(f64, f64)> = Vec::new();
    let syncs = if a.quick { 20 } else { 50 };
    let outcome = rt.block_on(async {
        for round in 0..a.rounds {
            for k in 0..a.stores.len() {
                let store = a.stores[(round + k) % a.stores.len()];
                // The disk's flush latency drifts (other tenants): probe it
                // next to every cluster run.
                let (p50, p99) = raw_sync::probe(&root, syncs)?;
                raw.push((p50, p99));
                let dir = root.join(format!("r{round}-{store:?}"));
                let res = run_store(store, &dir, &phases).await?;
                // Every acknowledged write must be applied on every node.
                let ok = res.applied.iter().all(|&n| n == res.acked);
                println!(
                    "round {round} {:<28} acked {} writes; applied per node {:?}: {} (raw fdatasync p50 {p50:.0} us)",
                    store.label(),
                    res.acked,
                    res.applied,
                    if ok { "all applied" } else { "MISMATCH" }
                );
                if !ok {
                    return Err::<(), BoxErr>(
                        format!(
                            "{}: a node did not apply every acknowledged write",
                            store.label()
                        )
                        .into(),
                    );
                }
                for p in &res.phases {
                    report_phase(p);
                    samples.entry((store, p.clients)).or_default().push((
                        p.rate(),
                        p.pct_us(50.0),
                        p.pct_us(99.0),
                    ));
                }
            }
        }
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&root);
    outcome?;
    print_table(&a.stores, &a.clients, &mut samples);
    let (mut p50s, mut p99s): (Vec<f64>, Vec<f64>) = raw.into_iter().unzip();
    println!(
        "\nthe disk itself, probed before every cluster run (no Raft): 128 B pwrite + fdatasync into a written file, median p50 {:.0} µs, median p99 {:.0} µs",
        median(&mut p50s),
        median(&mut p99s)
    );
    Ok(())
}

/// A ratio to two significant digits (durable stores run at a few tenths of
/// a percent of the in-memory rate, which `0.00×` would hide).
fn ratio(r: f64) -> String {
    if !r.is_finite() || r <= 0.0 {
        return "–".into();
    }
    let decimals = (1.0 - r.log10().floor()).clamp(0.0, 6.0) as usize;
    format!("{r:.decimals$}×")
}

fn report_phase(p: &PhaseResult) {
    println!(
        "    {:>3} clients: {:>6} writes in {:.2} s = {:>8.0} writes/s, p50 {:>7.0} us, p99 {:>7.0} us",
        p.clients,
        p.writes,
        p.elapsed.as_secs_f64(),
        p.rate(),
        p.pct_us(50.0),
        p.pct_us(99.0)
    );
}

fn print_table(
    stores: &[Store],
    clients: &[usize],
    samples: &mut std::collections::BTreeMap<(Store, usize), Samples>,
) {
    let mut med = std::collections::BTreeMap::new();
    for (k, v) in samples.iter_mut() {
        let col = |f: fn(&(f64, f64, f64)) -> f64| median(&mut v.iter().map(f).collect::<Vec<_>>());
        med.insert(*k, (col(|s| s.0), col(|s| s.1), col(|s| s.2)));
    }
    println!(
        "\nmedians over rounds; ratios against the in-memory store at the same client count\n"
    );
    println!("| log store | clients | writes/s | p50 µs | p99 µs | writes/s vs mem | p99 vs mem |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for &c in clients {
        let base = med.get(&(Store::Mem, c)).copied();
        for &s in stores {
            let Some(&(rate, p50, p99)) = med.get(&(s, c)) else {
                continue;
            };
            let (rr, pr) = match base {
                Some((br, _, bp)) => (ratio(rate / br), ratio(p99 / bp)),
                None => ("–".into(), "–".into()),
            };
            println!(
                "| {} | {c} | {rate:.0} | {p50:.0} | {p99:.0} | {rr} | {pr} |",
                s.label()
            );
        }
    }
}
