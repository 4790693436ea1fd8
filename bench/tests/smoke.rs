//! The comparison runs end to end on a tiny configuration and prints every
//! row with a figure (the figures themselves are the benchmark's business).

use std::process::Command;

#[test]
fn tiny_run_prints_every_row() {
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
        .filter(|l| l.starts_with("| ") && !l.starts_with("| measurement"))
        .collect();
    for name in [
        "buffered append 128 B",
        "buffered append 1024 B",
        "append + sync each",
        "batch of 64 + sync",
        "warm page cache",
        "cold (pages evicted)",
        "RSS after open",
        "uncached get",
        "truncate:",
        "compact half:",
    ] {
        let row = rows.iter().find(|r| r.contains(name)).expect(name);
        let ours: f64 = row.split('|').nth(3).unwrap().trim().parse().unwrap();
        assert!(ours.is_finite() && ours >= 0.0, "{row}");
    }
    // The okaywal column is filled where okaywal runs.
    let sync = rows
        .iter()
        .find(|r| r.contains("append + sync each"))
        .unwrap();
    let okay: f64 = sync.split('|').nth(5).unwrap().trim().parse().unwrap();
    assert!(okay > 0.0, "{sync}");
    // Its files are gone afterwards.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
