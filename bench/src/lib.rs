//! Side-by-side measurements of blockwal, a raw-file baseline (the same
//! bytes written with `pwrite` + `fdatasync` into a file whose blocks were
//! written with zeros and synced beforehand, not `fallocate`d), okaywal, TiKV's raft-engine and
//! Databend's raft-log: the same workloads, every log in its own directory
//! under one, their turns rotating in rounds, medians quoted (disk timings
//! on shared machines swing 10x within seconds).
//!
//! Shared by the `blockwal-bench` binary (the table) and `benches/compare.rs`
//! (the same plus criterion groups). Not published: the competitors stay out
//! of the shipped `blockwal` crate and its tool.

pub mod peers;
pub mod side;

use std::cell::Cell;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use blockwal::{BlockDevice, FileDevice, Geometry, RaftWal, RaftWalOptions, Wal, WalOptions};

pub use peers::Kind;
pub use side::{Cell as Figure, Row};

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
    /// The logs to run (the raw baseline and blockwal always; a ratio needs them).
    pub peers: Vec<Kind>,
    /// Rounds of the open measurement (each a cold and a warm open per log).
    pub open_rounds: usize,
    /// Run only the workloads whose group is named here (see [`GROUPS`]); empty: all.
    pub only: Vec<String>,
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
            peers: peers::ALL.to_vec(),
            open_rounds: 3,
            only: vec![],
            block_size: RaftWalOptions::default().block_size,
            child: None,
        }
    }
}

/// Whether `dir` is on a tmpfs (memory): its syncs cost nothing and
/// `/proc/self/io` counts no bytes written, so the figures mean nothing.
pub fn on_tmpfs(dir: &Path) -> bool {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    // `f_type`'s width differs between platforms.
    #[allow(clippy::unnecessary_cast)]
    rustix::fs::statfs(dir).is_ok_and(|s| s.f_type as i64 == TMPFS_MAGIC)
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

thread_local! {
    /// Thread CPU spent inside the logs' write / sync / grow calls (see [`io_cpu`]).
    static IO_CPU: Cell<Duration> = const { Cell::new(Duration::ZERO) };
    /// Whether [`timed_io`] times (off: the sync rows pay no clock reads).
    static IO_TIMING: Cell<bool> = const { Cell::new(false) };
}

/// Turns the timing of [`io_cpu`] on or off for this thread (off by default:
/// only the buffered rows need it; each timed call adds two clock system calls).
pub fn time_io(on: bool) {
    IO_TIMING.with(|t| t.set(on));
}

/// Thread CPU this thread has spent inside the write, sync and grow calls of
/// the raw baseline and of blockwal's file device ([`IoTimed`]): the kernel's
/// share of a buffered append (page-cache copy, writeback on sync), which
/// `thread_cpu() - io_cpu()` leaves out.
pub fn io_cpu() -> Duration {
    IO_CPU.with(Cell::get)
}

/// Runs `f`, adding the thread CPU it takes to [`io_cpu`].
fn timed_io<T>(f: impl FnOnce() -> T) -> T {
    if !IO_TIMING.with(Cell::get) {
        return f();
    }
    let c = thread_cpu();
    let r = f();
    let spent = thread_cpu().saturating_sub(c);
    IO_CPU.with(|t| t.set(t.get() + spent));
    r
}

/// A device whose `program`, `sync` and `grow` calls (the system calls of a
/// file device) add their thread CPU to [`io_cpu`].
pub struct IoTimed<D>(pub D);

impl<D: BlockDevice> BlockDevice for IoTimed<D> {
    type Error = D::Error;
    fn geometry(&self) -> Geometry {
        self.0.geometry()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), D::Error> {
        self.0.read(offset, buf)
    }
    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), D::Error> {
        timed_io(|| self.0.program(offset, data))
    }
    fn erase(&mut self, block: u32) -> Result<(), D::Error> {
        timed_io(|| self.0.erase(block))
    }
    fn sync(&mut self) -> Result<(), D::Error> {
        timed_io(|| self.0.sync())
    }
    fn grow(&mut self, blocks: u32) -> Result<bool, D::Error> {
        timed_io(|| self.0.grow(blocks))
    }
    fn prefetch(&mut self, offset: u64, len: u64) {
        self.0.prefetch(offset, len)
    }
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
        timed_io(|| self.file.write_all_at(data, self.off))?;
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
        timed_io(|| self.file.sync_data())
    }
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

/// The workload groups `Config::only` can name.
pub const GROUPS: [&str; 6] = ["buffered", "sync", "batch", "writers", "bytes", "big"];

/// Runs every comparison; `progress` is told what runs and how far along.
pub fn run_all(cfg: &Config, progress: Progress<'_>) -> io::Result<Vec<Row>> {
    let on = |g: &str| cfg.only.is_empty() || cfg.only.iter().any(|o| o == g);
    let mut rows = Vec::new();
    let steps = 12.0;
    let mut step = 0.0;
    let mut tell = |what: &str| {
        progress(what, step / steps);
        step += 1.0;
    };
    if on("buffered") {
        tell("buffered append 128 B");
        rows.extend(side::buffered(cfg, 128)?);
        tell("buffered append 1 KiB");
        rows.extend(side::buffered(cfg, 1024)?);
    }
    if on("sync") {
        tell("append + sync each");
        let k = n_scaled(cfg, 40);
        let (each, lat) = side::commit(cfg, 128, 1, k)?;
        rows.push(each);
        tell("append + sync each 1 KiB");
        rows.push(side::commit(cfg, 1024, 1, k)?.0);
        rows.extend(side::percentiles(&lat, 128));
    }
    if on("batch") {
        tell("batch of 64 + sync");
        rows.push(side::commit(cfg, 128, 64, n_scaled(cfg, 25))?.0);
    }
    if on("writers") {
        tell("8 concurrent writers");
        rows.push(side::group(cfg, 8, 128)?);
        tell("64 concurrent writers");
        rows.push(side::group(cfg, 64, 128)?);
    }
    if on("bytes") {
        tell("bytes written");
        rows.push(side::amplification(cfg, 128, 1)?);
        rows.push(side::amplification(cfg, 128, 64)?);
    }
    if on("big") {
        tell(&format!("building {} MiB logs", cfg.log_mib));
        let big = fresh_dir(cfg, "big")?;
        let n = side::build_big(cfg, &big)?;
        tell("open");
        rows.extend(side::open(cfg, &big, n)?);
        tell("uncached get, truncate, compact");
        // Every log's files in the page cache, whatever the opens left there.
        side::warm_files(&big)?;
        rows.push(get(cfg, &peers::dir_of(&big, Kind::Blockwal), n)?);
        rows.extend(side::read_and_cut(cfg, &big, n)?);
        tell("blockwal's device writes per truncate / compact");
        // Half the big log is left: still large beside the small one.
        rows.extend(truncate_compact(cfg, &peers::dir_of(&big, Kind::Blockwal))?);
        let _ = std::fs::remove_dir_all(&big);
    }
    progress("done", 1.0);
    Ok(rows)
}

fn n_scaled(cfg: &Config, n: usize) -> usize {
    ((n as f64 * cfg.scale) as usize).max(1)
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
    let mut cells = std::array::from_fn(|_| Figure::Blank);
    cells[side::idx(Kind::Blockwal)] = Figure::Val(o);
    cells[side::idx(Kind::Raw)] = Figure::Val(b);
    Ok(Row::new(
        format!(
            "blockwal uncached get: {mean:.2} device reads/get, max {max_reads} (raw: one pread)"
        ),
        "µs/get",
        false,
        cells,
    )
    .target("<= 2 device reads", max_reads <= 2))
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
    let only = |v: f64| {
        let mut cells: [Figure; 5] = std::array::from_fn(|_| Figure::Blank);
        cells[side::idx(Kind::Blockwal)] = Figure::Val(v);
        cells
    };
    Ok(vec![
        Row::new(
            format!(
                "blockwal truncate: device writes+syncs, 8 MiB log {} vs {} entries {} ({:.2} ms)",
                s.0, b.4, b.0, b.1
            ),
            "ops",
            false,
            only(b.0 as f64),
        )
        .target("O(1), same for any size", b.0 <= 6 && s.0 <= 6),
        Row::new(
            format!(
                "blockwal compact half: device writes+syncs, 8 MiB log {} vs {} entries {} ({:.2} ms)",
                s.2, b.4, b.2, b.3
            ),
            "ops",
            false,
            only(b.2 as f64),
        )
        .target("O(1), same for any size", b.2 <= 6 && s.2 <= 6),
    ])
}

/// The table, as Markdown: a column per log, each peer's figure with its
/// speed relative to blockwal (">1x": ahead of blockwal), blockwal's speed
/// relative to the raw file, and footnotes for what a log lacks.
pub fn table(rows: &[Row]) -> String {
    let mut notes: Vec<&'static str> = vec![];
    let mut s = String::from("| workload | unit |");
    for k in peers::ALL {
        s += &format!(" {} |", k.name());
    }
    s += " blockwal vs raw | target | met |\n|---|---|";
    s += &"---:|".repeat(peers::ALL.len() + 1);
    s += "---|---|\n";
    for r in rows {
        s += &format!("| {} | {} |", r.name, r.unit);
        for (i, k) in peers::ALL.into_iter().enumerate() {
            let cell = match &r.cells[i] {
                Figure::Val(v) => {
                    let v = fmt_fig(*v);
                    match r.speed[i] {
                        Some(x) if k != Kind::Blockwal => format!("{v} ({x:.2}x)"),
                        _ => v,
                    }
                }
                Figure::Lacks(why) => {
                    let n = match notes.iter().position(|n| n == why) {
                        Some(n) => n + 1,
                        None => {
                            notes.push(why);
                            notes.len()
                        }
                    };
                    format!("—[{n}]")
                }
                Figure::Blank => String::new(),
            };
            s += &format!(" {cell} |");
        }
        let vs_raw = r.speed[side::idx(Kind::Raw)]
            .filter(|x| *x > 0.0)
            .map_or(String::new(), |x| format!("{:.2}x", 1.0 / x));
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        };
        s += &format!(" {vs_raw} | {} | {met} |\n", r.target);
    }
    s += "\nIn a peer's cell, (Nx) is its speed relative to blockwal: above 1 it is ahead. \
          \"blockwal vs raw\" is blockwal's speed relative to the raw file (1.00x: as fast). \
          Sync rows: medians of paired turns.\n";
    for (i, n) in notes.iter().enumerate() {
        s += &format!("\n[{}] {n}", i + 1);
    }
    s += "\n";
    s
}

/// A figure with three significant digits or so.
fn fmt_fig(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 0.01 || v == 0.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.2e}")
    }
}
