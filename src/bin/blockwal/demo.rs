//! `demo`: the library's main job on a real log, timed. It never deletes
//! anything: the log goes into a new directory, an empty one, or a previous
//! demo's (recognised by the marker file the demo writes), where it
//! continues after the last entry; any other directory is refused before
//! anything in it is touched, and the log's lock is taken before the demo
//! writes.

use std::fs;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

use blockwal::devices::file::LOG_FILE;
use blockwal::{RaftWal, RaftWalOptions};
use clap::Args;

use crate::out::{outln, wal_error, Fail, Out, Res};
use crate::progress::Progress;

/// The file that marks a directory as the demo's own.
pub const MARKER: &str = "blockwal-demo.txt";
const MARKER_TEXT: &str = "This directory was made by `blockwal demo`; it holds a demo log \
(blockwal.log). `blockwal demo --dir` may reuse it; delete it when you no longer need it.\n";

/// `demo`'s options.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where the log goes: a new or empty directory, or a previous demo's
    /// (default: a new directory `blockwal-demo[-N]` here).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Entries to append.
    #[arg(long, value_name = "N", default_value_t = 100_000,
          value_parser = clap::value_parser!(u64).range(10..=100_000_000))]
    entries: u64,
    /// Entries per synced batch.
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    batch: u64,
    /// Bytes per entry.
    #[arg(long, value_name = "BYTES", default_value_t = 128,
          value_parser = clap::value_parser!(u32).range(1..=1 << 20))]
    size: u32,
}

fn payload(i: u64, size: usize) -> Vec<u8> {
    let mut v = format!("entry {i:>10} ").into_bytes();
    v.resize(size.max(v.len()), b'.');
    v
}

fn io_fail(what: &str, path: &Path, e: io::Error) -> Fail {
    Fail::Error(format!("{what} {}: {e}", path.display()))
}

/// True if `dir` holds the marker with the demo's text.
fn is_demo_dir(dir: &Path) -> bool {
    let mut text = String::new();
    fs::File::open(dir.join(MARKER))
        .and_then(|f| f.take(4096).read_to_string(&mut text))
        .is_ok()
        && text == MARKER_TEXT
}

/// Picks the directory: `Ok((dir, reused))`. Creates a new one (never an
/// existing path) unless `dir` is empty or a previous demo's.
fn choose_dir(dir: Option<PathBuf>) -> Res<(PathBuf, bool)> {
    let Some(dir) = dir else {
        for n in 1..=1000 {
            let d = PathBuf::from(if n == 1 {
                "blockwal-demo".to_string()
            } else {
                format!("blockwal-demo-{n}")
            });
            match fs::create_dir(&d) {
                Ok(()) => return Ok((d, false)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                // WASI has no working directory of its own: only what the
                // runtime preopens is reachable.
                Err(e) if cfg!(target_os = "wasi") => {
                    return Err(Fail::Error(format!(
                        "creating {}: {e}: on WASI a relative path works only in a directory \
                         the runtime preopens as `.` (e.g. `wasmtime --dir .`); give --dir \
                         inside a preopened directory",
                        d.display()
                    )))
                }
                Err(e) => return Err(io_fail("creating", &d, e)),
            }
        }
        return Err(Fail::Error(
            "blockwal-demo … blockwal-demo-1000 all exist: give --dir".into(),
        ));
    };
    match fs::metadata(&dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(&dir).map_err(|e| io_fail("creating", &dir, e))?;
            Ok((dir, false))
        }
        Err(e) => Err(io_fail("reading", &dir, e)),
        Ok(m) if !m.is_dir() => Err(Fail::Error(format!(
            "{} is not a directory: give a new or empty directory",
            dir.display()
        ))),
        Ok(_) => {
            if is_demo_dir(&dir) {
                return Ok((dir, true));
            }
            let mut names = Vec::new();
            for e in fs::read_dir(&dir).map_err(|e| io_fail("reading", &dir, e))? {
                let e = e.map_err(|e| io_fail("reading", &dir, e))?;
                names.push(e.file_name().to_string_lossy().into_owned());
            }
            if names.is_empty() {
                return Ok((dir, false));
            }
            names.sort();
            let more = if names.len() > 3 { ", …" } else { "" };
            names.truncate(3);
            Err(Fail::Error(format!(
                "{} is not empty ({}{more}) and not a previous demo's (no {MARKER}): \
                 the demo uses only a new or empty directory, or one it made; \
                 give another --dir, or none for a new one. Nothing was changed.",
                dir.display(),
                names.join(", ")
            )))
        }
    }
}

/// Runs the demo.
pub fn run(a: DemoArgs) -> Res {
    let mut out = Out::new();
    let (dir, reused) = choose_dir(a.dir)?;
    let log = dir.join(LOG_FILE);
    let size = a.size as usize;

    // Opening takes the log's lock: from here on nobody else writes it.
    let t = Instant::now();
    let mut wal = RaftWal::open_with(&dir, RaftWalOptions::default())
        .map_err(|e| wal_error("opening", &log, e))?;
    let open_time = t.elapsed();
    if !is_demo_dir(&dir) {
        fs::write(dir.join(MARKER), MARKER_TEXT)
            .map_err(|e| io_fail("writing", &dir.join(MARKER), e))?;
    }
    let start = wal.next_index().unwrap_or(1);
    let end = start.checked_add(a.entries - 1).ok_or_else(|| {
        Fail::Error("the demo log's indices are exhausted: use a new --dir".into())
    })?;
    outln!(out, "blockwal demo: log in {}", dir.display());
    if reused && start > 1 {
        outln!(
            out,
            "  opened a previous demo's log in {open_time:.2?}; appending after entry {}",
            start - 1
        );
    } else {
        outln!(out, "  opened a new log in {open_time:.2?}");
    }

    let t = Instant::now();
    let mut bar = Progress::new("appending", a.entries);
    let mut syncs = 0u64;
    let mut i = start;
    while i <= end {
        let next = i.saturating_add(a.batch).min(end + 1);
        let batch: Vec<(u64, Vec<u8>)> = (i..next).map(|k| (k, payload(k, size))).collect();
        wal.append_batch(&batch)
            .map_err(|e| wal_error("appending to", &log, e))?;
        wal.sync().map_err(|e| wal_error("syncing", &log, e))?;
        syncs += 1;
        i = next;
        bar.set(i - start);
    }
    bar.finish();
    let secs = t.elapsed().as_secs_f64();
    outln!(
        out,
        "  appended {} entries of {size} B in batches of {} with a sync each: {:.0} entries/s, {:.0} syncs/s",
        a.entries,
        a.batch,
        a.entries as f64 / secs,
        syncs as f64 / secs
    );

    let t = Instant::now();
    let mut n = 0u64;
    for e in wal.iter_range(start..=end) {
        if e.data.as_ref() != payload(e.index, size).as_slice() {
            return Err(Fail::Corrupt(format!("entry {} read back wrong", e.index)));
        }
        n += 1;
    }
    if let Some(e) = wal.take_read_error() {
        return Err(wal_error("reading", &log, e));
    }
    if n != a.entries {
        return Err(Fail::Corrupt(format!(
            "read back {n} entries, expected {}",
            a.entries
        )));
    }
    outln!(out, "  read back {n} entries in {:.2?}", t.elapsed());

    let cut = end - a.entries / 10;
    let t = Instant::now();
    wal.truncate(cut + 1)
        .map_err(|e| wal_error("truncating", &log, e))?;
    outln!(
        out,
        "  truncated entries {}.. in {:.2?}",
        cut + 1,
        t.elapsed()
    );
    let keep_from = start + a.entries / 2;
    let t = Instant::now();
    wal.compact(keep_from - 1)
        .map_err(|e| wal_error("compacting", &log, e))?;
    outln!(
        out,
        "  compacted entries ..={} in {:.2?}",
        keep_from - 1,
        t.elapsed()
    );
    wal.set_meta("term", b"7")
        .map_err(|e| wal_error("writing meta to", &log, e))?;
    wal.set_meta("vote", b"node-2")
        .map_err(|e| wal_error("writing meta to", &log, e))?;
    outln!(out, "  set term = 7, vote = node-2");
    drop(wal);

    let t = Instant::now();
    let wal = RaftWal::open(&dir).map_err(|e| wal_error("reopening", &log, e))?;
    let open_time = t.elapsed();
    let expect = (keep_from, cut);
    let got = (
        wal.first_index().unwrap_or(0),
        wal.last_index().unwrap_or(0),
    );
    if got != expect {
        return Err(Fail::Corrupt(format!(
            "after reopening, the log holds {got:?}, expected {expect:?}"
        )));
    }
    for idx in [keep_from, keep_from + (cut - keep_from) / 2, cut] {
        if wal.get(idx).as_deref() != Some(payload(idx, size).as_slice()) {
            return Err(Fail::Corrupt(format!("entry {idx} wrong after reopening")));
        }
    }
    if wal.get_meta("term") != Some(b"7") || wal.get_meta("vote") != Some(b"node-2") {
        return Err(Fail::Corrupt("term/vote wrong after reopening".into()));
    }
    outln!(
        out,
        "  reopened in {open_time:.2?}: entries {}..={}, term and vote intact",
        got.0,
        got.1
    );
    outln!(
        out,
        "  memory held after reopen: {} KiB",
        wal.estimated_memory() / 1024
    );
    outln!(
        out,
        "demo ok; the log stays in {0} (look at it with `blockwal inspect --dir {0}`; \
         delete the directory when done)",
        dir.display()
    );
    Ok(true)
}
