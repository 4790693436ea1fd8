//! Open time and peak RSS of a big log, cold and warm, each open in a fresh
//! process (the bench's `side::open_peer_child`):
//!
//!   cargo run --release -p blockwal-bench --example open_big -- DIR MIB [ROUNDS [BLOCK_KIB]]
//!
//! Builds a log of about MIB MiB of 1000-byte entries in DIR (blocks of
//! BLOCK_KIB KiB, default 1024) unless DIR already holds one, then alternates a cold open (the file's
//! pages dropped from the page cache first) and a warm one, ROUNDS times
//! (default 5), and prints each and the medians. DIR is left in place; delete
//! it when done (a 16 GiB log is 16 GiB of disk).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use blockwal::devices::file::LOG_FILE;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        let dir = PathBuf::from(&args[1]);
        let kind = blockwal_bench::Kind::Blockwal;
        return Ok(blockwal_bench::side::open_peer_child(
            kind,
            &dir,
            args[2].parse()?,
        )?);
    }
    let usage = "usage: open_big DIR MIB [ROUNDS [BLOCK_KIB]]";
    let dir = PathBuf::from(args.first().ok_or(usage)?);
    let mib: u64 = args.get(1).ok_or(usage)?.parse()?;
    let rounds: usize = args.get(2).map_or(Ok(5), |r| r.parse())?;
    let block = args.get(3).map_or(Ok(1024), |k| k.parse::<u32>())? << 10;
    if !dir.join(LOG_FILE).exists() {
        let t = std::time::Instant::now();
        let n = blockwal_bench::build_log(&dir, mib, block)?;
        eprintln!("built {n} entries in {:.1} s", t.elapsed().as_secs_f64());
    }
    let len = std::fs::metadata(dir.join(LOG_FILE))?.len();
    println!(
        "log {} MiB of {} KiB blocks in {}",
        len >> 20,
        block >> 10,
        dir.display()
    );
    let (mut cold, mut warm) = (vec![], vec![]);
    for r in 0..rounds {
        evict(&dir)?;
        let c = child(&dir, block)?;
        let w = child(&dir, block)?;
        println!(
            "round {r}: cold {:.1} ms, peak RSS {:.1} MiB; warm {:.1} ms, peak RSS {:.1} MiB",
            c.0, c.1, w.0, w.1
        );
        cold.push(c);
        warm.push(w);
    }
    let med = |v: &mut Vec<(f64, f64)>, k: usize| {
        let mut x: Vec<f64> = v.iter().map(|p| if k == 0 { p.0 } else { p.1 }).collect();
        x.sort_by(f64::total_cmp);
        x[x.len() / 2]
    };
    println!(
        "median of {rounds}: cold {:.1} ms (peak RSS {:.1} MiB), warm {:.1} ms (peak RSS {:.1} MiB)",
        med(&mut cold, 0),
        med(&mut cold, 1),
        med(&mut warm, 0),
        med(&mut warm, 1)
    );
    Ok(())
}

/// Drops the log file's pages from the page cache.
fn evict(dir: &Path) -> std::io::Result<()> {
    let f = File::open(dir.join(LOG_FILE))?;
    f.sync_all()?;
    rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed)?;
    Ok(())
}

/// Opens the log in a fresh process: (open ms, peak RSS MiB).
fn child(dir: &Path, block: u32) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let out = Command::new(std::env::current_exe()?)
        .arg("--child")
        .arg(dir)
        .arg(block.to_string())
        .output()?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
    }
    let s = String::from_utf8_lossy(&out.stdout);
    let v: Vec<f64> = s
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 3 {
        return Err(format!("unexpected child output: {s}").into());
    }
    // `open_us peak_rss_kib entries` (`side::open_peer_child`).
    Ok((v[0] / 1e3, v[1] / 1024.0))
}
