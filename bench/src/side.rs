//! The side-by-side workloads: every log in [`peers::ALL`] on the same
//! work, in one process, their turns rotating so each is timed beside the
//! others (disk speed drifts within seconds), medians over rounds.

use std::io;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::peers::{self, dir_of, Group, Kind, Op, Peer, ALL};
use super::{err, fresh_dir, io_cpu, median, n_scaled, thread_cpu, time_io, Config};

/// One figure of one log.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// Measured.
    Val(f64),
    /// The log lacks the operation (the footnote says why).
    Lacks(&'static str),
    /// Not measured for this log in this row.
    Blank,
}

impl Cell {
    /// The figure, if measured.
    pub fn val(&self) -> Option<f64> {
        match self {
            Cell::Val(v) => Some(*v),
            _ => None,
        }
    }
}

/// One line of the table: a figure per log, in [`ALL`]'s order.
#[derive(Clone, Debug)]
pub struct Row {
    /// What was measured.
    pub name: String,
    /// Unit of the figures.
    pub unit: &'static str,
    /// Larger figures are better (throughput); otherwise smaller (time).
    pub higher_better: bool,
    /// One per log, in [`ALL`]'s order.
    pub cells: [Cell; 5],
    /// Each log's speed relative to blockwal (>1: ahead of blockwal), where
    /// measured; from paired turns where the workload has them.
    pub speed: [Option<f64>; 5],
    /// blockwal's target for this row, if any.
    pub target: &'static str,
    /// Met or not (None: informational).
    pub met: Option<bool>,
}

impl Row {
    /// A row with `cells`; speeds from the medians.
    pub fn new(name: String, unit: &'static str, higher_better: bool, cells: [Cell; 5]) -> Row {
        let ours = cells[1].val();
        let speed = std::array::from_fn(|i| {
            let (v, o) = (cells[i].val()?, ours?);
            if v <= 0.0 || o <= 0.0 {
                return None;
            }
            Some(if higher_better { v / o } else { o / v })
        });
        Row {
            name,
            unit,
            higher_better,
            cells,
            speed,
            target: "",
            met: None,
        }
    }

    /// Sets blockwal's target.
    pub fn target(mut self, target: &'static str, met: bool) -> Row {
        self.target = target;
        self.met = Some(met);
        self
    }

    /// blockwal's figure.
    pub fn ours(&self) -> Option<f64> {
        self.cells[1].val()
    }

    /// The cell of `kind`.
    pub fn cell(&self, kind: Kind) -> &Cell {
        &self.cells[idx(kind)]
    }
}

/// `kind`'s column.
pub fn idx(kind: Kind) -> usize {
    ALL.iter().position(|k| *k == kind).unwrap_or(0)
}

/// The median of `v`, if it has figures.
fn med(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| median(&mut v.to_vec()))
}

fn cells_from(f: impl Fn(Kind) -> Cell) -> [Cell; 5] {
    std::array::from_fn(|i| f(ALL[i]))
}

/// Incompressible payload (raft-engine compresses batches over 8 KiB):
/// the index, then xorshift bytes.
pub fn noise(i: u64, size: usize) -> Vec<u8> {
    let mut s = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v: Vec<u8> = (0..size.div_ceil(8))
        .flat_map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s.to_le_bytes()
        })
        .collect();
    v.truncate(size);
    let n = size.min(8);
    v[..n].copy_from_slice(&i.to_le_bytes()[..n]);
    v
}

/// CPU time of the whole process (the logs' own threads count too).
fn process_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// The order of turn `t`: every log first in turn.
fn rotated(kinds: &[Kind], t: usize) -> Vec<Kind> {
    let n = kinds.len().max(1);
    (0..kinds.len()).map(|j| kinds[(t + j) % n]).collect()
}

fn kinds_for(cfg: &Config, op: Option<Op>) -> Vec<Kind> {
    ALL.into_iter()
        .filter(|k| cfg.peers.contains(k))
        .filter(|k| op.is_none_or(|op| k.lacks(op).is_none()))
        .collect()
}

fn lacking(cfg: &Config, op: Op, vals: impl Fn(Kind) -> Option<f64>) -> [Cell; 5] {
    cells_from(|k| match (k.lacks(op), vals(k)) {
        (Some(why), _) if cfg.peers.contains(&k) => Cell::Lacks(why),
        (_, Some(v)) => Cell::Val(v),
        _ => Cell::Blank,
    })
}

/// Buffered appends of `size`-byte entries, each turn `n` appends then one
/// sync, all inside the timed part, so every log pays for writing its bytes
/// back (blockwal's format syncs each new block's header before its records;
/// without the closing sync the baseline's writeback would fall outside).
/// Two rows: the process CPU per entry (every log; wall ns in the name), and
/// the library's own CPU: the thread's CPU minus what it spent inside the
/// write / sync / grow system calls (timed around each call, [`crate::io_cpu`]),
/// for the raw baseline and blockwal, whose calls the bench can see.
pub fn buffered(cfg: &Config, size: usize) -> io::Result<Vec<Row>> {
    let dir = fresh_dir(cfg, &format!("side-buf{size}"))?;
    let kinds = kinds_for(cfg, Some(Op::Buffered));
    let mut logs: Vec<Peer> = kinds
        .iter()
        .map(|k| Peer::open(*k, &dir, cfg.block_size))
        .collect::<io::Result<_>>()?;
    let n = n_scaled(cfg, if size <= 128 { 20_000 } else { 5_000 });
    let data: Vec<Vec<u8>> = (0..64).map(|i| noise(i, size)).collect();
    let mut next = vec![1u64; kinds.len()];
    let mut cpu = vec![vec![]; kinds.len()];
    let mut lib = vec![vec![]; kinds.len()];
    let mut wall = vec![vec![]; kinds.len()];
    time_io(true);
    for round in 0..cfg.rounds + 1 {
        for k in rotated(&kinds, round) {
            let i = kinds.iter().position(|x| *x == k).unwrap_or(0);
            let log = &mut logs[i];
            let (t, c) = (Instant::now(), process_cpu());
            let (tc, io) = (thread_cpu(), io_cpu());
            for j in 0..n {
                log.append(next[i], &data[j & 63])?;
                next[i] += 1;
            }
            log.sync()?;
            let (w, c) = (t.elapsed(), process_cpu() - c);
            let own = (thread_cpu() - tc).saturating_sub(io_cpu() - io);
            if next[i] > 1000 {
                log.trim(next[i] - 1000)?;
            }
            if round > 0 {
                cpu[i].push(c.as_nanos() as f64 / n as f64);
                lib[i].push(own.as_nanos() as f64 / n as f64);
                wall[i].push(w.as_nanos() as f64 / n as f64);
            }
        }
    }
    time_io(false);
    drop(logs);
    let _ = std::fs::remove_dir_all(&dir);
    let med = |v: &mut Vec<Vec<f64>>, k: Kind| {
        let i = kinds.iter().position(|x| *x == k)?;
        Some(median(&mut v[i]))
    };
    let walls: Vec<String> = kinds
        .iter()
        .map(|k| {
            format!(
                "{} {:.0}",
                k.name(),
                med(&mut wall.clone(), *k).unwrap_or(f64::NAN)
            )
        })
        .collect();
    let total = Row::new(
        format!(
            "buffered append {size} B + closing sync, process CPU (wall ns: {})",
            walls.join(", ")
        ),
        "ns/entry",
        false,
        lacking(cfg, Op::Buffered, |k| med(&mut cpu.clone(), k)),
    );
    let own = Row::new(
        format!("buffered append {size} B, library CPU (outside write/sync calls)"),
        "ns/entry",
        false,
        cells_from(|k| match k {
            Kind::Raw | Kind::Blockwal if cfg.peers.contains(&k) => {
                med(&mut lib.clone(), k).map_or(Cell::Blank, Cell::Val)
            }
            _ => Cell::Blank,
        }),
    );
    let own = match own.ours() {
        Some(o) if size <= 128 => own.target("<= 60 ns", o <= 60.0),
        _ => own,
    };
    Ok(vec![own, total])
}

/// Latencies of append + sync each, per log (µs), kept for the percentiles.
pub struct Latencies(pub Vec<Vec<f64>>);

/// Append `batch` entries of `size` bytes + one sync, `k` per round: µs per
/// batch. The speeds are medians of paired turns (each turn's logs run back
/// to back). Returns the row and every sample per log (in [`ALL`]'s order).
pub fn commit(cfg: &Config, size: usize, batch: usize, k: usize) -> io::Result<(Row, Latencies)> {
    let dir = fresh_dir(cfg, &format!("side-sync{batch}"))?;
    let kinds = kinds_for(cfg, None);
    let mut logs: Vec<Peer> = kinds
        .iter()
        .map(|k| Peer::open(*k, &dir, cfg.block_size))
        .collect::<io::Result<_>>()?;
    let data: Vec<Vec<u8>> = (0..batch as u64).map(|i| noise(i, size)).collect();
    let refs: Vec<&[u8]> = data.iter().map(|d| d.as_slice()).collect();
    let mut next = vec![1u64; kinds.len()];
    let mut lat = vec![vec![]; ALL.len()];
    let mut pairs = vec![vec![]; ALL.len()];
    let mut turn = 0;
    for round in 0..cfg.rounds + 1 {
        for _ in 0..k {
            let mut t = [f64::NAN; 5];
            for kind in rotated(&kinds, turn) {
                let i = kinds.iter().position(|x| *x == kind).unwrap_or(0);
                let s = Instant::now();
                logs[i].commit(next[i], &refs)?;
                t[idx(kind)] = s.elapsed().as_secs_f64() * 1e6;
                next[i] += batch as u64;
            }
            turn += 1;
            if round > 0 {
                for kind in &kinds {
                    let c = idx(*kind);
                    lat[c].push(t[c]);
                    pairs[c].push(t[idx(Kind::Blockwal)] / t[c]);
                }
            }
        }
        for (i, log) in logs.iter_mut().enumerate() {
            if next[i] > 100_000 {
                log.trim(next[i] - 1000)?;
            }
        }
    }
    drop(logs);
    let _ = std::fs::remove_dir_all(&dir);
    let name = if batch == 1 {
        format!("append + sync each, {size} B")
    } else {
        format!("batch of {batch} x {size} B + one sync")
    };
    let mut row = Row::new(
        name,
        "µs/op",
        false,
        cells_from(|kind| {
            let v = &mut lat[idx(kind)].clone();
            if v.is_empty() {
                Cell::Blank
            } else {
                Cell::Val(median(v))
            }
        }),
    );
    if kinds.contains(&Kind::Blockwal) {
        row.speed = std::array::from_fn(|c| {
            let v = &mut pairs[c];
            (!v.is_empty()).then(|| median(v))
        });
    }
    let vs_raw = row.speed[idx(Kind::Raw)].map(|r| 1.0 / r);
    let row = match vs_raw {
        Some(r) => row.target(">= 0.95x raw", r >= 0.95),
        None => row,
    };
    Ok((row, Latencies(lat)))
}

/// p50, p99 and p99.9 rows of the append + sync latencies.
pub fn percentiles(lat: &Latencies, size: usize) -> Vec<Row> {
    let n = lat.0.get(idx(Kind::Blockwal)).map_or(0, |v| v.len());
    [(50.0, "p50"), (99.0, "p99"), (99.9, "p99.9")]
        .into_iter()
        .map(|(p, name)| {
            Row::new(
                format!("append + sync each {size} B, latency {name} ({n} samples each)"),
                "µs",
                false,
                cells_from(|k| {
                    let mut v = lat.0[idx(k)].clone();
                    if v.is_empty() {
                        return Cell::Blank;
                    }
                    v.sort_by(|a, b| a.total_cmp(b));
                    let at = ((v.len() as f64 * p / 100.0).ceil() as usize).clamp(1, v.len()) - 1;
                    Cell::Val(v[at])
                }),
            )
        })
        .collect()
}

/// `threads` writers each appending one `size`-byte entry and waiting for
/// it to be durable, `per` times a round: acknowledged writes per second.
pub fn group(cfg: &Config, threads: u64, size: usize) -> io::Result<Row> {
    let dir = fresh_dir(cfg, &format!("side-group{threads}"))?;
    let kinds = kinds_for(cfg, Some(Op::Group));
    let logs: Vec<Group> = kinds
        .iter()
        .map(|k| Group::open(*k, &dir, cfg.block_size))
        .collect::<io::Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let per = (n_scaled(cfg, 320) as u64 / threads).max(2);
    let data = noise(3, size);
    let mut seq = vec![1u64; kinds.len()];
    let mut rate = vec![vec![]; ALL.len()];
    for round in 0..cfg.rounds + 1 {
        for kind in rotated(&kinds, round) {
            let i = kinds.iter().position(|x| *x == kind).unwrap_or(0);
            let (log, first, data) = (&logs[i], seq[i], &data);
            let t = Instant::now();
            let r: io::Result<()> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..threads)
                    .map(|th| {
                        s.spawn(move || -> io::Result<()> {
                            for j in 0..per {
                                log.write_durable(th, first + j, data)?;
                            }
                            Ok(())
                        })
                    })
                    .collect();
                hs.into_iter().try_for_each(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(io::Error::other("writer panicked")))
                })
            });
            r?;
            let secs = t.elapsed().as_secs_f64();
            seq[i] += per;
            if round > 0 {
                rate[idx(kind)].push((threads * per) as f64 / secs);
            }
        }
    }
    drop(logs);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Row::new(
        format!("{threads} writers, each append {size} B + wait durable"),
        "writes/s",
        true,
        lacking(cfg, Op::Group, |k| med(&rate[idx(k)])),
    ))
}

/// Bytes this process has handed to write system calls (`wchar` of
/// /proc/self/io, every thread): what each log asks the OS to write. Not
/// `write_bytes` (storage writes): on files whose blocks are already
/// written it counted a whole MiB per small write here, for every log.
fn storage_writes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("wchar:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Bytes written (handed to write calls) per payload byte, `batch` entries
/// of `size` bytes + one sync, each log alone (the counter is the
/// process's).
pub fn amplification(cfg: &Config, size: usize, batch: usize) -> io::Result<Row> {
    let dir = fresh_dir(cfg, &format!("side-amp{batch}"))?;
    let kinds = kinds_for(cfg, None);
    let ops = n_scaled(cfg, if batch == 1 { 200 } else { 40 });
    let data: Vec<Vec<u8>> = (0..batch as u64).map(|i| noise(i, size)).collect();
    let refs: Vec<&[u8]> = data.iter().map(|d| d.as_slice()).collect();
    let mut amp = [None; 5];
    for kind in &kinds {
        let mut log = Peer::open(*kind, &dir, cfg.block_size)?;
        // Warm up: the first writes of a log create its files.
        for j in 0..8 {
            log.commit(1 + j * batch as u64, &refs)?;
        }
        let before = storage_writes();
        for j in 8..8 + ops as u64 {
            log.commit(1 + j * batch as u64, &refs)?;
        }
        let w = storage_writes() - before;
        amp[idx(*kind)] = Some(w as f64 / (ops * batch * size) as f64);
        drop(log);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Row::new(
        if batch == 1 {
            format!("bytes written per payload byte, append + sync each {size} B")
        } else {
            format!("bytes written per payload byte, batch of {batch} x {size} B + sync")
        },
        "B/B",
        false,
        cells_from(|k| amp[idx(k)].map_or(Cell::Blank, Cell::Val)),
    ))
}

/// Entries per synced batch when filling the big logs (raft-engine reads a
/// whole batch to get one entry of it).
const BUILD_BATCH: u64 = 64;

/// Builds a log of about `mib` MiB of 1000-byte entries for every log that
/// can reopen one, in `dir_of(dir, kind)`; returns the entry count.
pub fn build_big(cfg: &Config, dir: &Path) -> io::Result<u64> {
    let n = (cfg.log_mib << 20) / 1016;
    let data: Vec<Vec<u8>> = (0..BUILD_BATCH).map(|i| noise(i, 1000)).collect();
    let refs: Vec<&[u8]> = data.iter().map(|d| d.as_slice()).collect();
    for kind in kinds_for(cfg, Some(Op::Reopen)) {
        let mut log = Peer::open(kind, dir, cfg.block_size)?;
        let mut i = 1;
        while i <= n {
            let m = (n + 1 - i).min(BUILD_BATCH) as usize;
            log.commit(i, &refs[..m])?;
            i += m as u64;
        }
    }
    Ok(n)
}

/// Drops every file of `dir` from the page cache (a cold open).
fn evict(dir: &Path) -> io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            evict(&p)?;
        } else if let Ok(f) = std::fs::File::open(&p) {
            f.sync_all()?;
            rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed)?;
        }
    }
    Ok(())
}

/// Reads every file of `dir` once, so reads that follow find them in the
/// page cache whatever an open before read (a warm cache for every log).
pub fn warm_files(dir: &Path) -> io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            warm_files(&p)?;
        } else {
            io::copy(&mut std::fs::File::open(&p)?, &mut io::sink())?;
        }
    }
    Ok(())
}

/// The child side of the open measurement: opens `kind`'s log in `dir` and
/// prints `open_us peak_rss_kib entries`.
pub fn open_peer_child(kind: Kind, dir: &Path, bs: u32) -> io::Result<()> {
    let t = Instant::now();
    let entries = match kind {
        Kind::Blockwal => peers::open_blockwal(dir, bs)?.len() as u64,
        Kind::RaftEngine => {
            let e = peers::open_engine(dir)?;
            let (f, l) = (e.first_index(1), e.last_index(1));
            l.unwrap_or(0) + 1 - f.unwrap_or(1)
        }
        Kind::RaftLog => {
            let l = peers::open_raft_log(dir, None)?;
            let s = l.log_state();
            s.last().map_or(0, |x| x.1) - s.purged().map_or(0, |x| x.1)
        }
        _ => {
            return Err(io::Error::other(format!(
                "{} keeps no log to open",
                kind.name()
            )))
        }
    };
    let us = t.elapsed().as_micros();
    let (_, hwm) = super::rss_kib();
    println!("{us} {hwm} {entries}");
    Ok(())
}

fn run_open_child(cfg: &Config, kind: Kind, dir: &Path, n: u64) -> io::Result<Option<(f64, f64)>> {
    let Some((prog, args)) = &cfg.child else {
        return Ok(None);
    };
    let out = Command::new(prog)
        .args(args)
        .args(["--open-peer", kind.id()])
        .arg(dir)
        .arg(cfg.block_size.to_string())
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "open child for {} failed: {}",
            kind.name(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let s = String::from_utf8_lossy(&out.stdout);
    let v: Vec<f64> = s
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 3 || v[2] as u64 != n {
        return Err(io::Error::other(format!(
            "open child for {} saw {:?} entries, built {n}",
            kind.name(),
            v.get(2)
        )));
    }
    Ok(Some((v[0] / 1e3, v[1] / 1024.0)))
}

/// Opening the big logs, each in a fresh process: cold (files evicted from
/// the page cache first) and warm, and the process's peak RSS.
pub fn open(cfg: &Config, dir: &Path, n: u64) -> io::Result<Vec<Row>> {
    let kinds = kinds_for(cfg, Some(Op::Reopen));
    let per_log = || -> Vec<Vec<f64>> { vec![vec![]; ALL.len()] };
    let (mut cold, mut warm, mut rss) = (per_log(), per_log(), per_log());
    for round in 0..cfg.open_rounds {
        for kind in rotated(&kinds, round) {
            let d = dir_of(dir, kind);
            evict(&d)?;
            let Some((c, r)) = run_open_child(cfg, kind, &d, n)? else {
                return Ok(vec![]);
            };
            let Some((w, _)) = run_open_child(cfg, kind, &d, n)? else {
                return Ok(vec![]);
            };
            cold[idx(kind)].push(c);
            warm[idx(kind)].push(w);
            rss[idx(kind)].push(r);
        }
    }
    let name = format!("open a {} MiB log ({n} entries)", cfg.log_mib);
    let c = Row::new(
        format!("{name}, cold"),
        "ms",
        false,
        lacking(cfg, Op::Reopen, |k| med(&cold[idx(k)])),
    );
    let c = match c.ours() {
        Some(o) => c.target("<= 100 ms", o <= 100.0),
        None => c,
    };
    let r = Row::new(
        format!("{name}: peak RSS of the opening process"),
        "MiB",
        false,
        lacking(cfg, Op::Reopen, |k| med(&rss[idx(k)])),
    );
    let r = match r.ours() {
        Some(o) => r.target("<= 8 MiB", o <= 8.0),
        None => r,
    };
    Ok(vec![
        c,
        Row::new(
            format!("{name}, warm"),
            "ms",
            false,
            lacking(cfg, Op::Reopen, |k| med(&warm[idx(k)])),
        ),
        r,
    ])
}

/// Truncations and compactions per log on the big log.
const CUTS: usize = 5;

/// The big logs, opened in this process for reads, truncate and compact.
#[allow(clippy::large_enum_variant)]
enum Big {
    Blockwal(blockwal::RaftWal),
    RaftEngine(raft_engine::Engine),
    RaftLog(Box<raft_log::RaftLog<peers::LogTypes>>),
}

impl Big {
    fn open(kind: Kind, dir: &Path, bs: u32) -> io::Result<Option<Big>> {
        let d = dir_of(dir, kind);
        Ok(Some(match kind {
            Kind::Blockwal => {
                let o = blockwal::RaftWalOptions::default()
                    .block_size(bs)
                    .cache_bytes(0)
                    .cache_entries(0);
                Big::Blockwal(blockwal::RaftWal::open_with(&d, o).map_err(err)?)
            }
            Kind::RaftEngine => Big::RaftEngine(peers::open_engine(&d)?),
            // The smallest payload cache, so reads go to the files.
            Kind::RaftLog => Big::RaftLog(Box::new(peers::open_raft_log(&d, Some(1))?)),
            _ => return Ok(None),
        }))
    }

    fn get_len(&self, i: u64) -> io::Result<usize> {
        Ok(match self {
            Big::Blockwal(w) => w.try_get(i).map_err(err)?.map_or(0, |d| d.len()),
            Big::RaftEngine(e) => e
                .get_entry::<peers::EngineEntries>(1, i)
                .map_err(err)?
                .map_or(0, |x| x.data.len()),
            Big::RaftLog(l) => match l.read(i, i + 1).next() {
                Some(r) => r?.1.len(),
                None => 0,
            },
        })
    }

    fn truncate(&mut self, from: u64) -> io::Result<()> {
        match self {
            Big::Blockwal(w) => w.truncate(from).map_err(err),
            Big::RaftEngine(_) => Err(io::Error::other("raft-engine has no truncate")),
            Big::RaftLog(l) => {
                use raft_log::api::raft_log_writer::RaftLogWriter;
                l.truncate(from)?;
                let (tx, rx) = std::sync::mpsc::sync_channel(1);
                l.flush(true, Some(tx))?;
                rx.recv().map_err(err)?
            }
        }
    }

    fn compact(&mut self, upto: u64) -> io::Result<()> {
        match self {
            Big::Blockwal(w) => w.compact(upto).map_err(err),
            Big::RaftEngine(e) => {
                let mut b = raft_engine::LogBatch::default();
                b.add_command(1, raft_engine::Command::Compact { index: upto + 1 });
                e.write(&mut b, true).map_err(err)?;
                e.purge_expired_files().map(drop).map_err(err)
            }
            Big::RaftLog(l) => {
                use raft_log::api::raft_log_writer::RaftLogWriter;
                l.purge((1, upto))?;
                let (tx, rx) = std::sync::mpsc::sync_channel(1);
                l.flush(true, Some(tx))?;
                rx.recv().map_err(err)?
            }
        }
    }
}

/// Random gets of entries no log caches (blockwal's cache off, raft-log's
/// payload cache at one entry, raft-engine has none), every log's files in
/// the page cache (read once first); then truncating the last 100 entries
/// and compacting a tenth of the log, each durable on return, [`CUTS`] times.
pub fn read_and_cut(cfg: &Config, dir: &Path, n: u64) -> io::Result<Vec<Row>> {
    let kinds = kinds_for(cfg, Some(Op::Reopen));
    warm_files(dir)?;
    let mut logs: Vec<(Kind, Big)> = vec![];
    for k in &kinds {
        if let Some(b) = Big::open(*k, dir, cfg.block_size)? {
            logs.push((*k, b));
        }
    }
    let gets = n_scaled(cfg, 400);
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let mut us: Vec<Vec<f64>> = vec![vec![]; ALL.len()];
    for round in 0..cfg.rounds {
        for kind in rotated(&kinds, round) {
            let Some((_, log)) = logs.iter().find(|(k, _)| *k == kind) else {
                continue;
            };
            let t = Instant::now();
            for _ in 0..gets {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let i = 1 + s % n;
                let len = log.get_len(i)?;
                if len != 1000 {
                    return Err(io::Error::other(format!(
                        "{}: entry {i} has {len} bytes, not 1000",
                        kind.name()
                    )));
                }
            }
            us[idx(kind)].push(t.elapsed().as_secs_f64() * 1e6 / gets as f64);
        }
    }
    // CUTS truncations of 100 entries, then CUTS compactions of a tenth of
    // the log each, the logs taking turns: medians.
    let (mut trunc, mut comp): (Vec<Vec<f64>>, Vec<Vec<f64>>) =
        (vec![vec![]; ALL.len()], vec![vec![]; ALL.len()]);
    for r in 0..CUTS as u64 {
        for kind in rotated(&kinds, r as usize) {
            let Some((_, log)) = logs.iter_mut().find(|(k, _)| *k == kind) else {
                continue;
            };
            if kind.lacks(Op::Truncate).is_none() {
                let t = Instant::now();
                log.truncate(n + 1 - 100 * (r + 1))?;
                trunc[idx(kind)].push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    for r in 0..CUTS as u64 {
        for kind in rotated(&kinds, r as usize) {
            let Some((_, log)) = logs.iter_mut().find(|(k, _)| *k == kind) else {
                continue;
            };
            let t = Instant::now();
            log.compact(n / 10 * (r + 1))?;
            comp[idx(kind)].push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    drop(logs);
    let name = format!("{} MiB log", cfg.log_mib);
    Ok(vec![
        Row::new(
            format!("random get of an uncached 1000 B entry, {name}"),
            "µs/get",
            false,
            lacking(cfg, Op::Get, |k| med(&us[idx(k)])),
        ),
        Row::new(
            format!("truncate the last 100 entries of the {name}, durable (median of {CUTS})"),
            "ms",
            false,
            lacking(cfg, Op::Truncate, |k| med(&trunc[idx(k)])),
        ),
        Row::new(
            format!("compact a tenth of the {name}, durable (median of {CUTS})"),
            "ms",
            false,
            lacking(cfg, Op::Compact, |k| med(&comp[idx(k)])),
        ),
    ])
}
