//! `blockwal-bench`: every comparison of the library in one run, with a
//! progress line and a table of figures and ratios.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use blockwal_bench::{self as compare, Config};
use clap::Parser;

/// blockwal beside a raw write+fdatasync baseline and okaywal, A/B
/// alternated, medians: buffered append, append+sync, batch+sync, open,
/// get, truncate/compact (default about 2 minutes; --quick about 30 s).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Directory for the logs and baseline files (on the disk to measure).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// A short run: 7 rounds, half the work, a 256 MiB log.
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
    /// Leave okaywal out.
    #[arg(long)]
    no_okaywal: bool,
    /// Print the table as Markdown.
    #[arg(long)]
    markdown: bool,
    /// Internal: open the log in DIR with block size BS and report (the
    /// open-RSS figure's child process).
    #[arg(long, num_args = 2, value_names = ["DIR", "BS"], hide = true)]
    open_child: Option<Vec<String>>,
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
    if let Some(v) = &a.open_child {
        let bs = v[1].parse().map_err(|_| "bad block size")?;
        return compare::open_child(std::path::Path::new(&v[0]), bs).map_err(|e| e.to_string());
    }
    let mut cfg = Config::default();
    if a.quick {
        cfg.rounds = 7;
        cfg.scale = 0.5;
        cfg.log_mib = 256;
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
    cfg.okaywal = !a.no_okaywal;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    cfg.child = Some((exe, vec!["--open-child".into()]));
    println!(
        "blockwal-bench: {} rounds A/B alternated, medians; scale {}; {} MiB log of {} KiB blocks; files in {}",
        cfg.rounds,
        cfg.scale,
        cfg.log_mib,
        cfg.block_size >> 10,
        cfg.dir.display()
    );
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
            let f = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.1}"));
            println!(
                "{:<78} {:>9.1} {:>9} {:>9} {:<9} {:<32} {:<24} {}",
                r.name,
                r.ours,
                f(r.raw),
                f(r.okay),
                r.unit,
                r.score,
                r.target,
                match r.met {
                    Some(true) => "met",
                    Some(false) => "MISSED",
                    None => "",
                }
            );
        }
    }
    println!(
        "(columns: blockwal, raw file, okaywal, unit, result, target; {:.0} s)",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
