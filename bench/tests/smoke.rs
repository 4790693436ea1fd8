//! The comparison runs end to end on a tiny configuration, and every
//! workload produces a finite positive figure for every log that offers it
//! and a footnoted "—" for every log that lacks it (the figures themselves
//! are the benchmark's business).

use std::process::Command;

/// Columns: raw file, blockwal, okaywal, raft-engine, raft-log.
const ALL: &str = "RBOEL";

/// (a text in the row's name, the logs with a figure, the logs with "—").
const ROWS: &[(&str, &str, &str)] = &[
    ("buffered append 128 B, library CPU", "RB", ""),
    ("buffered append 128 B + closing sync", "RBEL", "O"),
    ("buffered append 1024 B, library CPU", "RB", ""),
    ("buffered append 1024 B + closing sync", "RBEL", "O"),
    ("append + sync each, 128 B", ALL, ""),
    ("append + sync each, 1024 B", ALL, ""),
    ("batch of 64 x 128 B + one sync", ALL, ""),
    ("latency p50", ALL, ""),
    ("latency p99 ", ALL, ""),
    ("latency p99.9", ALL, ""),
    ("8 writers", ALL, ""),
    ("64 writers", ALL, ""),
    (
        "bytes written per payload byte, append + sync each",
        ALL,
        "",
    ),
    ("bytes written per payload byte, batch of 64", ALL, ""),
    ("log (", "BEL", "RO"),
    ("entries), cold", "BEL", "RO"),
    ("entries), warm", "BEL", "RO"),
    ("peak RSS", "BEL", "RO"),
    ("random get of an uncached", "BEL", "RO"),
    ("truncate the last 100", "BL", "ROE"),
    ("compact a tenth of the", "BEL", "RO"),
    ("blockwal uncached get", "RB", ""),
    ("blockwal truncate:", "B", ""),
    ("blockwal compact half:", "B", ""),
];

#[test]
fn tiny_run_gives_every_log_a_figure_or_a_footnote() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_blockwal-bench"))
        .args([
            "--rounds",
            "1",
            "--scale",
            "0.05",
            "--log-mib",
            "8",
            "--markdown",
        ])
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| workload"))
        .collect();
    for (name, with, lacking) in ROWS {
        let row = rows
            .iter()
            .find(|r| r.contains(name))
            .unwrap_or_else(|| panic!("no row {name:?} in\n{text}"));
        let cols: Vec<&str> = row.split('|').map(str::trim).collect();
        for (i, log) in ALL.chars().enumerate() {
            let cell = cols[3 + i];
            if with.contains(log) {
                let v: f64 = cell
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("{log} in {row}"));
                // Device operations may be 0, and so may bytes written on a
                // tmpfs (nothing reaches storage); every other figure is positive.
                let zero_ok = name.contains("device")
                    || (name.contains("bytes written") && blockwal_bench::on_tmpfs(dir.path()));
                let positive = v > 0.0 || (zero_ok && v == 0.0);
                assert!(v.is_finite() && positive, "{log} in {row}");
            } else if lacking.contains(log) {
                assert!(cell.starts_with("—["), "{log} in {row}");
            } else {
                assert_eq!(cell, "", "{log} in {row}");
            }
        }
    }
    // Every footnote cited is printed.
    for n in 1..=6 {
        if text.contains(&format!("—[{n}]")) {
            assert!(text.contains(&format!("\n[{n}] ")), "footnote {n}");
        }
    }
    // Its files are gone afterwards.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
