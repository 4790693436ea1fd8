//! The `blockwal` command-line tool.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use blockwal::{Options, RaftWal};

#[path = "blockwal/bench.rs"]
mod bench;
#[path = "blockwal/compare.rs"]
mod compare;
#[path = "blockwal/tools.rs"]
mod tools;

const USAGE: &str = "usage: blockwal COMMAND [OPTIONS]

  demo    [--dir DIR] [--entries N] [--batch N] [--size BYTES]
          append entries in synced batches to a log in DIR (default ./blockwal-demo),
          read them back, truncate, compact, set term/vote, reopen and verify,
          printing what it did and how fast
  bench   [--dir DIR] [--quick] [--rounds N] [--scale F] [--log-mib N] [--block-kib N]
          [--no-okaywal] [--markdown]
          blockwal beside a raw write+fdatasync baseline and okaywal, A/B alternated,
          medians: buffered append, append+sync, batch+sync, open, get, truncate/compact
          (default about 2 minutes; --quick about 30 s)
  inspect LOG [--all yes]   geometry, blocks (seq, kind, entries, summary), indices, meta, free space
  dump    LOG [--from I] [--to I] [--width N]   entries (hex and text preview) and meta
  verify  LOG   check every header, record, summary and the chain; exit code 1 on corruption

  LOG is --dir DIR (a log directory) or --image FILE [--block-size N] [--program-size N]
  [--erase-value 0xff|none] (a raw image, e.g. a flash dump; the block size is read
  from the first block header when not given)";

struct DemoArgs {
    dir: PathBuf,
    entries: u64,
    batch: u64,
    size: usize,
}

fn parse_demo(mut args: impl Iterator<Item = String>) -> Result<DemoArgs, String> {
    let mut a = DemoArgs {
        dir: PathBuf::from("blockwal-demo"),
        entries: 100_000,
        batch: 64,
        size: 128,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {value}"))
        };
        match flag.as_str() {
            "--dir" => a.dir = PathBuf::from(&value),
            "--entries" => a.entries = num()?.max(10),
            "--batch" => a.batch = num()?.max(1),
            "--size" => a.size = num()? as usize,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(a)
}

fn payload(i: u64, size: usize) -> Vec<u8> {
    let mut v = format!("entry {i:>10} ").into_bytes();
    v.resize(size.max(v.len()), b'.');
    v
}

fn demo(a: DemoArgs) -> Result<(), String> {
    fn err(what: &'static str) -> impl Fn(blockwal::Error<std::io::Error>) -> String {
        move |e| format!("{what}: {e}")
    }
    std::fs::remove_dir_all(&a.dir).ok();
    println!("blockwal demo: log in {}", a.dir.display());

    let t = Instant::now();
    let mut wal = RaftWal::open_with(&a.dir, Options::default()).map_err(err("open"))?;
    println!("  opened a new log in {:.2?}", t.elapsed());

    let t = Instant::now();
    let mut syncs = 0u64;
    let mut i = 1u64;
    while i <= a.entries {
        let end = (i + a.batch).min(a.entries + 1);
        let batch: Vec<(u64, Vec<u8>)> = (i..end).map(|k| (k, payload(k, a.size))).collect();
        wal.append_batch(&batch).map_err(err("append"))?;
        wal.sync().map_err(err("sync"))?;
        syncs += 1;
        i = end;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "  appended {} entries of {} B in batches of {} with a sync each: {:.0} entries/s, {:.0} syncs/s",
        a.entries,
        a.size,
        a.batch,
        a.entries as f64 / secs,
        syncs as f64 / secs
    );

    let t = Instant::now();
    let mut n = 0u64;
    for e in wal.iter() {
        if e.data.as_ref() != payload(e.index, a.size).as_slice() {
            return Err(format!("entry {} read back wrong", e.index));
        }
        n += 1;
    }
    if n != a.entries {
        return Err(format!("read back {n} entries, expected {}", a.entries));
    }
    println!("  read back {n} entries in {:.2?}", t.elapsed());

    let cut = a.entries - a.entries / 10;
    let t = Instant::now();
    wal.truncate(cut + 1).map_err(err("truncate"))?;
    println!("  truncated entries {}.. in {:.2?}", cut + 1, t.elapsed());
    let keep_from = a.entries / 2;
    let t = Instant::now();
    wal.compact(keep_from - 1).map_err(err("compact"))?;
    println!(
        "  compacted entries ..={} in {:.2?}",
        keep_from - 1,
        t.elapsed()
    );
    wal.set_meta("term", b"7").map_err(err("set_meta"))?;
    wal.set_meta("vote", b"node-2").map_err(err("set_meta"))?;
    println!("  set term = 7, vote = node-2");
    drop(wal);

    let t = Instant::now();
    let wal = RaftWal::open(&a.dir).map_err(err("reopen"))?;
    let open_time = t.elapsed();
    let expect = (keep_from, cut);
    let got = (
        wal.first_index().unwrap_or(0),
        wal.last_index().unwrap_or(0),
    );
    if got != expect {
        return Err(format!(
            "after reopen the log holds {got:?}, expected {expect:?}"
        ));
    }
    for idx in [keep_from, (keep_from + cut) / 2, cut] {
        if wal.get(idx).as_deref() != Some(payload(idx, a.size).as_slice()) {
            return Err(format!("entry {idx} wrong after reopen"));
        }
    }
    if wal.get_meta("term") != Some(b"7") || wal.get_meta("vote") != Some(b"node-2") {
        return Err("term/vote wrong after reopen".into());
    }
    println!(
        "  reopened in {open_time:.2?}: entries {}..={}, term and vote intact",
        got.0, got.1
    );
    println!(
        "  memory held after reopen: {} KiB",
        wal.estimated_memory() / 1024
    );
    println!("demo ok");
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let result = match args.next().as_deref() {
        Some("demo") => parse_demo(args).and_then(demo).map(|()| true),
        Some("bench") => bench::run(args),
        Some("inspect") => tools::inspect(args),
        Some("dump") => tools::dump(args),
        Some("verify") => tools::verify(args),
        Some("__open-child") => {
            let dir = PathBuf::from(args.next().unwrap_or_default());
            let bs = args.next().and_then(|b| b.parse().ok()).unwrap_or(1 << 20);
            compare::open_child(&dir, bs)
                .map(|()| true)
                .map_err(|e| e.to_string())
        }
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(true)
        }
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("blockwal: {e}");
            ExitCode::FAILURE
        }
    }
}
