//! `blockwal-bench`: every comparison of the library in one run, with a
//! progress line and a table of figures and ratios.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use blockwal_bench::{self as compare, Config, Kind};
use clap::Parser;

/// blockwal beside a raw write+fdatasync baseline, okaywal, raft-engine and
/// raft-log, their turns alternated, medians: buffered append, append+sync,
/// batch+sync, concurrent writers, latency percentiles, bytes written, open,
/// get, truncate/compact (--quick: under a minute).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Directory for the logs and baseline files (on the disk to measure).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// A short run: 7 rounds, half the work, 64 MiB logs, one open round.
    #[arg(long)]
    quick: bool,
    /// A/B rounds per comparison.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    rounds: Option<u32>,
    /// Work per round, relative to the default.
    #[arg(long, value_parser = scale)]
    scale: Option<f64>,
    /// Size of the large log for open / get / truncate / compact, in MiB.
    #[arg(long, value_parser = clap::value_parser!(u64).range(8..=1 << 20))]
    log_mib: Option<u64>,
    /// Block size of blockwal's logs, in KiB.
    #[arg(long, value_parser = clap::value_parser!(u32).range(4..=1 << 20))]
    block_kib: Option<u32>,
    /// Leave a peer out (okaywal, raft-engine, raft-log); repeatable.
    #[arg(long, value_name = "PEER")]
    without: Vec<String>,
    /// Run only these workload groups (buffered, sync, batch, writers,
    /// bytes, big); repeatable.
    #[arg(long, value_name = "GROUP", value_parser = clap::builder::PossibleValuesParser::new(compare::GROUPS))]
    only: Vec<String>,
    /// Rounds of the open measurement (a cold and a warm open per log each).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    open_rounds: Option<u32>,
    /// Print the table as Markdown.
    #[arg(long)]
    markdown: bool,
    /// Internal: open the log in DIR with block size BS and report (the
    /// open-RSS figure's child process).
    #[arg(long, num_args = 3, value_names = ["PEER", "DIR", "BS"], hide = true)]
    open_peer: Option<Vec<String>>,
}

fn scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.01..=1000.0).contains(&v) => Ok(v),
        _ => Err("a number from 0.01 to 1000".into()),
    }
}

fn main() -> ExitCode {
    let a = Args::parse();
    match run(a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("blockwal-bench: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(a: Args) -> Result<(), String> {
    if let Some(v) = &a.open_peer {
        let kind = Kind::from_id(&v[0]).ok_or("unknown peer")?;
        let bs = v[2].parse().map_err(|_| "bad block size")?;
        return compare::side::open_peer_child(kind, std::path::Path::new(&v[1]), bs)
            .map_err(|e| e.to_string());
    }
    let mut cfg = Config::default();
    if a.quick {
        cfg.rounds = 7;
        cfg.scale = 0.5;
        cfg.log_mib = 64;
        cfg.open_rounds = 1;
    }
    if let Some(d) = a.dir {
        cfg.dir = d;
    }
    if let Some(r) = a.rounds {
        cfg.rounds = r as usize;
    }
    if let Some(s) = a.scale {
        cfg.scale = s;
    }
    if let Some(m) = a.log_mib {
        cfg.log_mib = m;
    }
    if let Some(k) = a.block_kib {
        cfg.block_size = k << 10;
    }
    if let Some(r) = a.open_rounds {
        cfg.open_rounds = r as usize;
    }
    cfg.only = a.only.clone();
    for w in &a.without {
        match Kind::from_id(w) {
            Some(k @ (Kind::Okaywal | Kind::RaftEngine | Kind::RaftLog)) => {
                cfg.peers.retain(|p| *p != k)
            }
            _ => {
                return Err(format!(
                    "--without takes okaywal, raft-engine or raft-log, not {w}"
                ))
            }
        }
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    cfg.child = Some((exe, vec![]));
    println!(
        "blockwal-bench: {} rounds, turns alternated, medians; scale {}; {} MiB logs, blockwal's of {} KiB blocks; files in {}",
        cfg.rounds,
        cfg.scale,
        cfg.log_mib,
        cfg.block_size >> 10,
        cfg.dir.display()
    );
    if compare::on_tmpfs(&cfg.dir) {
        eprintln!(
            "blockwal-bench: warning: {} is on a tmpfs: syncs cost nothing there and bytes written read 0; give --dir on a real disk",
            cfg.dir.display()
        );
    }
    let start = Instant::now();
    let mut progress = |what: &str, frac: f64| {
        let width = 30;
        let done = ((frac.clamp(0.0, 1.0)) * width as f64) as usize;
        let bar: String = "#".repeat(done) + &"-".repeat(width - done);
        eprint!(
            "\r[{bar}] {:>3}% {:>5.1}s  {what:<40}",
            (frac * 100.0) as u32,
            start.elapsed().as_secs_f64()
        );
        let _ = std::io::stderr().flush();
    };
    let rows = compare::run_all(&cfg, &mut progress).map_err(|e| e.to_string())?;
    eprintln!();
    if a.markdown {
        print!("{}", compare::table(&rows));
    } else {
        for r in &rows {
            let cells: Vec<String> = r
                .cells
                .iter()
                .map(|c| match c {
                    compare::Figure::Val(v) => format!("{v:.1}"),
                    compare::Figure::Lacks(_) => "—".into(),
                    compare::Figure::Blank => "".into(),
                })
                .collect();
            println!(
                "{:<72} {:<9} {:>9} {:>9} {:>9} {:>11} {:>9}  {} {}",
                r.name,
                r.unit,
                cells[0],
                cells[1],
                cells[2],
                cells[3],
                cells[4],
                r.target,
                match r.met {
                    Some(true) => "met",
                    Some(false) => "MISSED",
                    None => "",
                }
            );
        }
        println!("(columns: raw file, blockwal, okaywal, raft-engine, raft-log; --markdown adds ratios and footnotes)");
    }
    println!("({:.0} s)", start.elapsed().as_secs_f64());
    Ok(())
}
