//! The `blockwal` command-line tool.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use blockwal::{Options, RaftWal};

const USAGE: &str = "usage: blockwal demo [--dir DIR] [--entries N] [--batch N] [--size BYTES]

  demo   append entries in synced batches to a log in DIR (default ./blockwal-demo),
         read them back, truncate, compact, set term/vote, reopen and verify,
         printing what it did and how fast";

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
        Some("demo") => parse_demo(args).and_then(demo),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("blockwal: {e}");
            ExitCode::FAILURE
        }
    }
}
