//! `bench`: every comparison of `compare` in one run, with a progress bar
//! and a table of figures and ratios.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use crate::compare::{self, Config};

/// Parses the flags and runs.
pub fn run(mut args: impl Iterator<Item = String>) -> Result<bool, String> {
    let mut cfg = Config::default();
    let mut markdown = false;
    while let Some(flag) = args.next() {
        if flag == "--quick" {
            cfg.rounds = 7;
            cfg.scale = 0.5;
            cfg.log_mib = 256;
            continue;
        }
        if flag == "--no-okaywal" {
            cfg.okaywal = false;
            continue;
        }
        if flag == "--markdown" {
            markdown = true;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |_: std::num::ParseIntError| format!("{flag}: not a number: {value}");
        match flag.as_str() {
            "--dir" => cfg.dir = PathBuf::from(&value),
            "--rounds" => cfg.rounds = value.parse::<usize>().map_err(bad)?.max(1),
            "--scale" => {
                cfg.scale = value
                    .parse::<f64>()
                    .map_err(|_| format!("{flag}: not a number: {value}"))?
                    .max(0.01)
            }
            "--log-mib" => cfg.log_mib = value.parse::<u64>().map_err(bad)?.max(8),
            "--block-kib" => {
                cfg.block_size = value.parse::<u32>().map_err(bad)?.clamp(4, 1 << 20) << 10
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    cfg.child = Some((exe, vec!["__open-child".into()]));
    println!(
        "blockwal bench: {} rounds A/B alternated, medians; scale {}; {} MiB log of {} KiB blocks; files in {}",
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
    if markdown {
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
    Ok(true)
}
