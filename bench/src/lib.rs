//! Side-by-side measurements of blockwal, a raw-file baseline (the same
//! bytes written with `write` + `fdatasync` into the same kind of
//! preallocated file) and okaywal, alternating A/B in rounds and quoting
//! medians (disk timings on shared machines swing 10x within seconds).
//!
//! Shared by the `blockwal-bench` binary (the table) and `benches/compare.rs`
//! (the same plus criterion groups). Not published: the competitors stay out
//! of the shipped `blockwal` crate and its tool.

use std::cell::Cell;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use blockwal::{BlockDevice, FileDevice, Geometry, RaftWal, RaftWalOptions, Wal, WalOptions};

/// What to run and how long.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the logs and baseline files go (a directory on the disk to measure).
    pub dir: PathBuf,
    /// A/B rounds per comparison (medians over these).
    pub rounds: usize,
    /// Work per round, relative to the default.
    pub scale: f64,
    /// Size of the large log for open / get / truncate / compact, in MiB.
    pub log_mib: u64,
    /// Also run okaywal.
    pub okaywal: bool,
    /// Block size of blockwal's logs (`RaftWalOptions::block_size`).
    pub block_size: u32,
    /// Command to re-run this program as the open-and-report child:
    /// the program and the arguments before the log directory.
    pub child: Option<(PathBuf, Vec<String>)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            dir: std::env::temp_dir(),
            rounds: 15,
            scale: 2.0,
            log_mib: 1024,
            okaywal: true,
            block_size: RaftWalOptions::default().block_size,
            child: None,
        }
    }
}

/// One line of the result table.
#[derive(Clone, Debug)]
pub struct Row {
    /// What was measured.
    pub name: String,
    /// Unit of the three figures.
    pub unit: &'static str,
    /// blockwal.
    pub ours: f64,
    /// The raw baseline, where there is one.
    pub raw: Option<f64>,
    /// okaywal, where it applies.
    pub okay: Option<f64>,
    /// The figure the target is stated in (a ratio or an absolute value).
    pub score: String,
    /// The target.
    pub target: &'static str,
    /// Met or not (None: informational).
    pub met: Option<bool>,
}

/// Median of `v` (sorted in place).
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

/// CPU time this thread has run (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// VmRSS and VmHWM of this process, in KiB.
pub fn rss_kib() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Opens (or creates) a `RaftWal` with block size `bs`.
fn open_wal(dir: &Path, bs: u32) -> io::Result<RaftWal> {
    let o = RaftWalOptions::default().block_size(bs);
    RaftWal::open_with(dir, o).map_err(err)
}

fn fresh_dir(cfg: &Config, name: &str) -> io::Result<PathBuf> {
    let d = cfg
        .dir
        .join(format!("blockwal-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn payload(i: u64, size: usize) -> Vec<u8> {
    let mut v = vec![(i % 251) as u8; size];
    let n = size.min(8);
    v[..n].copy_from_slice(&i.to_le_bytes()[..n]);
    v
}

fn err<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::other(e.to_string())
}

/// The baseline: a file whose blocks are already written (zero-filled and
/// synced), written at increasing offsets (wrapping), `fdatasync` as the sync.
struct Raw {
    file: File,
    off: u64,
    cap: u64,
    buf: Vec<u8>,
}

impl Raw {
    fn new(dir: &Path, cap: u64) -> io::Result<Raw> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.join("raw.dat"))?;
        // Every block written once and durable before measuring: a sync then
        // carries only the data (the physical limit). Writing into fallocated
        // (unwritten) extents would add an extent conversion to every sync.
        let zeros = vec![0u8; 1 << 20];
        let mut at = 0;
        while at < cap {
            let n = (cap - at).min(zeros.len() as u64) as usize;
            file.write_all_at(&zeros[..n], at)?;
            at += n as u64;
        }
        file.sync_all()?;
        Ok(Raw {
            file,
            off: 0,
            cap,
            buf: Vec::with_capacity(512 << 10),
        })
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.off + data.len() as u64 > self.cap {
            self.off = 0;
        }
        self.file.write_all_at(data, self.off)?;
        self.off += data.len() as u64;
        Ok(())
    }

    /// Buffered: copies into a 256 KiB buffer, writes it when full.
    fn push(&mut self, rec: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(rec);
        if self.buf.len() >= 256 << 10 {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        let buf = std::mem::take(&mut self.buf);
        self.write(&buf)?;
        self.buf = buf;
        self.buf.clear();
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// A record as blockwal lays it out: 16 header bytes, then the payload.
fn record(i: u64, size: usize) -> Vec<u8> {
    let mut r = vec![0u8; 16];
    r[8..16].copy_from_slice(&i.to_le_bytes());
    r.extend_from_slice(&payload(i, size));
    r
}

#[derive(Debug)]
struct OkayManager;

impl okaywal::LogManager for OkayManager {
    fn recover(&mut self, _entry: &mut okaywal::Entry<'_>) -> io::Result<()> {
        Ok(())
    }
    fn checkpoint_to(
        &mut self,
        _last: okaywal::EntryId,
        _entries: &mut okaywal::SegmentReader,
        _wal: &okaywal::WriteAheadLog,
    ) -> io::Result<()> {
        Ok(())
    }
}

fn okay_commit(wal: &okaywal::WriteAheadLog, chunks: &[Vec<u8>]) -> io::Result<()> {
    let mut w = wal.begin_entry()?;
    for c in chunks {
        w.write_chunk(c)?;
    }
    w.commit()?;
    Ok(())
}

/// Counts device operations, for "reads per get" and "writes per truncate".
#[derive(Clone, Default)]
pub struct Counters {
    /// `read` calls.
    pub reads: Rc<Cell<u64>>,
    /// `program` calls.
    pub programs: Rc<Cell<u64>>,
    /// `erase` calls.
    pub erases: Rc<Cell<u64>>,
    /// `sync` calls.
    pub syncs: Rc<Cell<u64>>,
}

impl Counters {
    fn snapshot(&self) -> [u64; 4] {
        [
            self.reads.get(),
            self.programs.get(),
            self.erases.get(),
            self.syncs.get(),
        ]
    }
}

/// A device that counts the operations passed to the device it wraps.
pub struct Counting<D> {
    inner: D,
    c: Counters,
}

impl<D: BlockDevice> BlockDevice for Counting<D> {
    type Error = D::Error;
    fn geometry(&self) -> Geometry {
        self.inner.geometry()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), D::Error> {
        self.c.reads.set(self.c.reads.get() + 1);
        self.inner.read(offset, buf)
    }
    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), D::Error> {
        self.c.programs.set(self.c.programs.get() + 1);
        self.inner.program(offset, data)
    }
    fn erase(&mut self, block: u32) -> Result<(), D::Error> {
        self.c.erases.set(self.c.erases.get() + 1);
        self.inner.erase(block)
    }
    fn sync(&mut self) -> Result<(), D::Error> {
        self.c.syncs.set(self.c.syncs.get() + 1);
        self.inner.sync()
    }
    fn grow(&mut self, blocks: u32) -> Result<bool, D::Error> {
        self.inner.grow(blocks)
    }
    fn prefetch(&mut self, offset: u64, len: u64) {
        self.inner.prefetch(offset, len)
    }
}

/// Progress callback: (what is running, fraction done overall).
pub type Progress<'a> = &'a mut dyn FnMut(&str, f64);

/// Runs every comparison; `progress` is told what runs and how far along.
pub fn run_all(cfg: &Config, progress: Progress<'_>) -> io::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let steps = 7.0;
    progress("buffered append 128 B", 0.0);
    rows.push(buffered(cfg, 128)?);
    progress("buffered append 1 KiB", 1.0 / steps);
    rows.push(buffered(cfg, 1024)?);
    progress("append + sync each", 2.0 / steps);
    rows.push(sync_each(cfg, 128)?);
    progress("batch of 64 + sync", 3.0 / steps);
    rows.push(batch(cfg, 128, 64)?);
    progress(&format!("building a {} MiB log", cfg.log_mib), 4.0 / steps);
    let big = fresh_dir(cfg, "big")?;
    let built = build_log(&big, cfg.log_mib, cfg.block_size)?;
    progress("open", 5.0 / steps);
    rows.extend(open(cfg, &big)?);
    progress("uncached get", 5.5 / steps);
    rows.push(get(cfg, &big, built)?);
    progress("truncate / compact", 6.0 / steps);
    rows.extend(truncate_compact(cfg, &big)?);
    let _ = std::fs::remove_dir_all(&big);
    progress("done", 1.0);
    Ok(rows)
}

fn n_scaled(cfg: &Config, n: usize) -> usize {
    ((n as f64 * cfg.scale) as usize).max(1)
}

/// Buffered appends (no sync in the timed part): blockwal's `append` against
/// copying the same bytes into a 256 KiB buffer written when full. Figures
/// are CPU ns per entry (this thread's run time: the machine is shared);
/// the wall-clock median is in the name.
pub fn buffered(cfg: &Config, size: usize) -> io::Result<Row> {
    let dir = fresh_dir(cfg, &format!("buf{size}"))?;
    let n = n_scaled(cfg, if size <= 128 { 50_000 } else { 10_000 });
    let mut wal = open_wal(&dir.join("wal"), cfg.block_size)?;
    // Wraps within 16 MiB: a working set like the log's (it reuses its
    // compacted blocks), so both write into cached pages.
    let mut raw = Raw::new(&dir, 16 << 20)?;
    let data: Vec<Vec<u8>> = (0..64).map(|i| payload(i, size)).collect();
    let recs: Vec<Vec<u8>> = (0..64).map(|i| record(i, size)).collect();
    let mut next = 1u64;
    let (mut ours, mut base, mut ours_wall, mut base_wall) = (vec![], vec![], vec![], vec![]);
    for round in 0..cfg.rounds + 1 {
        let (t, c) = (Instant::now(), thread_cpu());
        for k in 0..n {
            wal.append(next, &data[k & 63]).map_err(err)?;
            next += 1;
        }
        let (w, cpu) = (t.elapsed(), thread_cpu() - c);
        wal.sync().map_err(err)?;
        if next > 1000 {
            wal.compact(next - 1000).map_err(err)?;
        }
        let (t, c) = (Instant::now(), thread_cpu());
        for k in 0..n {
            raw.push(&recs[k & 63])?;
        }
        let (rw, rcpu) = (t.elapsed(), thread_cpu() - c);
        raw.flush()?;
        raw.sync()?;
        if round > 0 {
            ours.push(cpu.as_nanos() as f64 / n as f64);
            base.push(rcpu.as_nanos() as f64 / n as f64);
            ours_wall.push(w.as_nanos() as f64 / n as f64);
            base_wall.push(rw.as_nanos() as f64 / n as f64);
        }
    }
    drop(wal);
    let _ = std::fs::remove_dir_all(&dir);
    let (o, b) = (median(&mut ours), median(&mut base));
    let (ow, bw) = (median(&mut ours_wall), median(&mut base_wall));
    let (target, met) = if size <= 128 {
        ("<= 60 ns/entry", Some(o <= 60.0))
    } else {
        ("(info)", None)
    };
    Ok(Row {
        name: format!("buffered append {size} B (CPU; wall {ow:.0} vs {bw:.0} ns)"),
        unit: "ns/entry",
        ours: o,
        raw: Some(b),
        okay: None,
        score: format!("{o:.0} ns ({:.2}x raw)", o / b),
        target,
        met,
    })
}

/// Append + sync each: one entry then `sync`, against one `write` +
/// `fdatasync` of the same bytes, against okaywal's entry + commit.
pub fn sync_each(cfg: &Config, size: usize) -> io::Result<Row> {
    let k = n_scaled(cfg, 40);
    sync_compare(cfg, "append + sync each", size, 1, k)
}

/// A batch of `batch` entries + one sync, against one `write` of the same
/// bytes + `fdatasync`, against okaywal's one entry of `batch` chunks.
pub fn batch(cfg: &Config, size: usize, batch: usize) -> io::Result<Row> {
    let k = n_scaled(cfg, 25);
    sync_compare(cfg, &format!("batch of {batch} + sync"), size, batch, k)
}

fn sync_compare(cfg: &Config, name: &str, size: usize, batch: usize, k: usize) -> io::Result<Row> {
    let dir = fresh_dir(cfg, &format!("sync{batch}"))?;
    let mut wal = open_wal(&dir.join("wal"), cfg.block_size)?;
    let mut raw = Raw::new(&dir, 64 << 20)?;
    let okay = if cfg.okaywal {
        Some(okaywal::WriteAheadLog::recover(
            dir.join("okay"),
            OkayManager,
        )?)
    } else {
        None
    };
    let entries: Vec<(u64, Vec<u8>)> = (0..batch as u64).map(|i| (i, payload(i, size))).collect();
    let bytes: Vec<u8> = (0..batch as u64).flat_map(|i| record(i, size)).collect();
    let chunks: Vec<Vec<u8>> = entries.iter().map(|(_, d)| d.clone()).collect();
    let mut next = 1u64;
    // One operation of each side in turn, the order rotating, each timed on
    // its own: the disk's speed drifts within seconds, so only neighbours
    // compare. The ratio is the median of the per-turn ratios.
    let (mut a, mut b, mut c, mut pairs) = (vec![], vec![], vec![], vec![]);
    let mut batch_buf: Vec<(u64, &[u8])> = Vec::with_capacity(batch);
    for round in 0..cfg.rounds + 1 {
        for j in 0..k {
            let mut t3 = [f64::NAN; 3];
            for step in 0..3 {
                let side = (round + j + step) % 3;
                let t = Instant::now();
                match side {
                    0 => {
                        batch_buf.clear();
                        batch_buf.extend(
                            entries
                                .iter()
                                .enumerate()
                                .map(|(j, (_, d))| (next + j as u64, d.as_slice())),
                        );
                        wal.append_batch(&batch_buf).map_err(err)?;
                        wal.sync().map_err(err)?;
                        next += batch_buf.len() as u64;
                    }
                    1 => {
                        raw.write(&bytes)?;
                        raw.sync()?;
                    }
                    _ => {
                        let Some(o) = &okay else { continue };
                        okay_commit(o, &chunks)?;
                    }
                }
                t3[side] = t.elapsed().as_secs_f64() * 1e6;
            }
            if round > 0 {
                a.push(t3[0]);
                b.push(t3[1]);
                if !t3[2].is_nan() {
                    c.push(t3[2]);
                }
                pairs.push(t3[1] / t3[0]);
            }
        }
        if next > 200_000 {
            wal.compact(next - 1000).map_err(err)?;
        }
    }
    drop(wal);
    drop(okay);
    let _ = std::fs::remove_dir_all(&dir);
    let (o, r) = (median(&mut a), median(&mut b));
    let ok = (!c.is_empty()).then(|| median(&mut c));
    // Throughput ratio: raw time / our time (1.0 = as fast as raw).
    let ratio = median(&mut pairs);
    Ok(Row {
        name: format!("{name}, {size} B entries"),
        unit: "us/op",
        ours: o,
        raw: Some(r),
        okay: ok,
        score: format!("{ratio:.2}x raw"),
        target: ">= 0.9x raw",
        met: Some(ratio >= 0.9),
    })
}

/// Builds a log of about `mib` MiB of 1000-byte entries; returns the entry count.
pub fn build_log(dir: &Path, mib: u64, bs: u32) -> io::Result<u64> {
    let mut wal = open_wal(dir, bs)?;
    let data = payload(7, 1000);
    let n = (mib << 20) / 1016;
    for i in 1..=n {
        wal.append(i, &data).map_err(err)?;
        if i % 1024 == 0 {
            wal.sync().map_err(err)?;
        }
    }
    wal.sync().map_err(err)?;
    Ok(n)
}

/// Drops the log file's pages from the page cache (a cold open).
fn evict(dir: &Path) -> io::Result<()> {
    let f = File::open(dir.join(blockwal::devices::file::LOG_FILE))?;
    f.sync_all()?;
    rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed)?;
    Ok(())
}

/// The child side of the open measurement: opens `dir`, prints one line
/// `open_us rss_kib hwm_kib est_bytes first last`.
pub fn open_child(dir: &Path, bs: u32) -> io::Result<()> {
    let t = Instant::now();
    let wal = open_wal(dir, bs)?;
    let us = t.elapsed().as_micros();
    let (rss, hwm) = rss_kib();
    println!(
        "{us} {rss} {hwm} {} {} {}",
        wal.estimated_memory(),
        wal.first_index().unwrap_or(0),
        wal.last_index().unwrap_or(0)
    );
    Ok(())
}

fn run_child(cfg: &Config, dir: &Path) -> io::Result<Option<Vec<f64>>> {
    let Some((prog, args)) = &cfg.child else {
        return Ok(None);
    };
    let out = Command::new(prog)
        .args(args)
        .arg(dir)
        .arg(cfg.block_size.to_string())
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "open child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let s = String::from_utf8_lossy(&out.stdout);
    let line = s.lines().last().unwrap_or("");
    Ok(Some(
        line.split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect(),
    ))
}

/// Opening the large log: warm (in process), cold (its pages evicted first),
/// and RSS of a fresh process that just opened it.
pub fn open(cfg: &Config, dir: &Path) -> io::Result<Vec<Row>> {
    let mut warm = vec![];
    let mut cold = vec![];
    for _ in 0..cfg.rounds.clamp(3, 7) {
        let t = Instant::now();
        let wal = open_wal(dir, cfg.block_size)?;
        warm.push(t.elapsed().as_secs_f64() * 1e3);
        drop(wal);
        evict(dir)?;
        let t = Instant::now();
        let wal = open_wal(dir, cfg.block_size)?;
        cold.push(t.elapsed().as_secs_f64() * 1e3);
        drop(wal);
    }
    let (w, c) = (median(&mut warm), median(&mut cold));
    let name = format!("open a {} MiB log", cfg.log_mib);
    let mut rows = vec![
        Row {
            name: format!("{name}, warm page cache"),
            unit: "ms",
            ours: w,
            raw: None,
            okay: None,
            score: format!("{w:.1} ms"),
            target: "<= 100 ms",
            met: Some(w <= 100.0),
        },
        Row {
            name: format!("{name}, cold (pages evicted)"),
            unit: "ms",
            ours: c,
            raw: None,
            okay: None,
            score: format!("{c:.1} ms"),
            target: "<= 100 ms",
            met: Some(c <= 100.0),
        },
    ];
    if let Some(v) = run_child(cfg, dir)? {
        if v.len() >= 4 {
            let (rss, hwm) = (v[1] / 1024.0, v[2] / 1024.0);
            rows.push(Row {
                name: format!(
                    "{name}: RSS after open (peak {hwm:.1} MiB, est {} KiB)",
                    v[3] as u64 / 1024
                ),
                unit: "MiB",
                ours: rss,
                raw: None,
                okay: None,
                score: format!("{rss:.1} MiB"),
                target: "<= 32 MiB",
                met: Some(hwm <= 32.0),
            });
        }
    }
    Ok(rows)
}

fn rng(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn open_counting(
    dir: &Path,
    cache: usize,
    bs: u32,
) -> io::Result<(Wal<Counting<FileDevice>>, Counters)> {
    let dev = FileDevice::open(dir, bs, 4, u32::MAX).map_err(err)?;
    let c = Counters::default();
    let dev = Counting {
        inner: dev,
        c: c.clone(),
    };
    let opts = WalOptions::default()
        .cache_bytes(cache)
        .cache_entries(cache);
    Ok((Wal::open_with(dev, opts).map_err(err)?, c))
}

/// Random gets of entries not in the cache: device reads per get (counted
/// by a wrapping device) and time, against one `pread` of the same record.
pub fn get(cfg: &Config, dir: &Path, n: u64) -> io::Result<Row> {
    let (wal, c) = open_counting(dir, 0, cfg.block_size)?;
    let raw = File::open(dir.join(blockwal::devices::file::LOG_FILE))?;
    let len = raw.metadata()?.len();
    let gets = n_scaled(cfg, 2000);
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let (mut ours, mut base) = (vec![], vec![]);
    let mut max_reads = 0;
    let mut total_reads = 0;
    let mut buf = vec![0u8; 1016];
    for _ in 0..cfg.rounds {
        let t = Instant::now();
        for _ in 0..gets / cfg.rounds.max(1) {
            let i = 1 + rng(&mut s) % n;
            let before = c.reads.get();
            let e = wal.try_get(i).map_err(err)?;
            if e.map(|d| d.len()) != Some(1000) {
                return Err(io::Error::other(format!("entry {i} missing")));
            }
            let r = c.reads.get() - before;
            max_reads = max_reads.max(r);
            total_reads += r;
        }
        ours.push(t.elapsed().as_secs_f64() * 1e6 / (gets / cfg.rounds.max(1)) as f64);
        let t = Instant::now();
        for _ in 0..gets / cfg.rounds.max(1) {
            let off = rng(&mut s) % (len - 1016);
            raw.read_exact_at(&mut buf, off)?;
        }
        base.push(t.elapsed().as_secs_f64() * 1e6 / (gets / cfg.rounds.max(1)) as f64);
    }
    let mean = total_reads as f64 / (gets / cfg.rounds.max(1) * cfg.rounds) as f64;
    let (o, b) = (median(&mut ours), median(&mut base));
    Ok(Row {
        name: format!("uncached get (random, 1000 B): {mean:.2} reads/get, max {max_reads}"),
        unit: "us/get",
        ours: o,
        raw: Some(b),
        okay: None,
        score: format!("max {max_reads} reads ({:.2}x raw time)", b / o),
        target: "<= 2 device reads",
        met: Some(max_reads <= 2),
    })
}

/// Truncate and compact on the large log and on a small one: device writes
/// (programs + erases + syncs, counted) must not depend on the log's size.
pub fn truncate_compact(cfg: &Config, big: &Path) -> io::Result<Vec<Row>> {
    let small = fresh_dir(cfg, "small")?;
    build_log(&small, 8, cfg.block_size)?;
    let mut figs = vec![];
    for dir in [&small, big] {
        let (mut wal, c) = open_counting(dir, 1 << 20, cfg.block_size)?;
        let (first, last) = (
            wal.first_index().unwrap_or(0),
            wal.last_index().unwrap_or(0),
        );
        // Reopened on a file: the first write opens a fresh block; do one
        // append + sync first so the figures are the operations' own.
        wal.append(last + 1, b"x").map_err(err)?;
        wal.sync().map_err(err)?;
        let s0 = c.snapshot();
        let t = Instant::now();
        wal.truncate(last - 100).map_err(err)?;
        let tt = t.elapsed().as_secs_f64() * 1e3;
        let s1 = c.snapshot();
        let t = Instant::now();
        wal.compact(first + (last - first) / 2).map_err(err)?;
        let tc = t.elapsed().as_secs_f64() * 1e3;
        let s2 = c.snapshot();
        let w = |a: [u64; 4], b: [u64; 4]| (b[1] - a[1]) + (b[2] - a[2]) + (b[3] - a[3]);
        figs.push((w(s0, s1), tt, w(s1, s2), tc, last - first + 1));
    }
    let _ = std::fs::remove_dir_all(&small);
    let (s, b) = (figs[0], figs[1]);
    Ok(vec![
        Row {
            name: format!(
                "truncate: device writes+syncs, 8 MiB log {} vs {} MiB log {} ({:.2} ms)",
                s.0, cfg.log_mib, b.0, b.1
            ),
            unit: "ops",
            ours: b.0 as f64,
            raw: None,
            okay: None,
            score: format!("{} ops", b.0),
            target: "O(1), same for any size",
            met: Some(b.0 <= 6 && s.0 <= 6),
        },
        Row {
            name: format!(
                "compact half: device writes+syncs, 8 MiB log {} vs {} MiB log {} ({:.2} ms)",
                s.2, cfg.log_mib, b.2, b.3
            ),
            unit: "ops",
            ours: b.2 as f64,
            raw: None,
            okay: None,
            score: format!("{} ops", b.2),
            target: "O(1), same for any size",
            met: Some(b.2 <= 6 && s.2 <= 6),
        },
    ])
}

/// The table, as Markdown.
pub fn table(rows: &[Row]) -> String {
    let f = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.1}"));
    let mut s = String::from(
        "| measurement | unit | blockwal | raw file | okaywal | result | target | met |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s += &format!(
            "| {} | {} | {:.1} | {} | {} | {} | {} | {} |\n",
            r.name,
            r.unit,
            r.ours,
            f(r.raw),
            f(r.okay),
            r.score,
            r.target,
            match r.met {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "",
            }
        );
    }
    s
}
