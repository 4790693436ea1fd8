//! A tiny run of the `openraft_e2e` binary: every log store must complete
//! the fixed number of client writes, and all three nodes must apply every
//! acknowledged write (the binary checks the state machines and fails
//! otherwise; this checks what it reports). No timing is asserted.

use std::process::Command;

const STORES: [&str; 5] = [
    "in-memory BTreeMap",
    "blockwal (RaftWal files)",
    "blockwal, committed deferred",
    "raft-log 0.4.6",
    "raft-log, flush_batch_wait 0",
];

#[test]
fn every_store_completes_the_writes_on_all_nodes() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = Command::new(env!("CARGO_BIN_EXE_openraft_e2e"))
        .args([
            "--rounds",
            "1",
            "--writes",
            "10",
            "--clients",
            "1,4",
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .expect("the openraft_e2e binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "failed:\n{stdout}\n{stderr}");

    // 20 warm-up writes, then 1 x 10 and 4 x 10.
    let acked = 20 + 10 + 4 * 10;
    for store in STORES {
        let line = stdout
            .lines()
            .find(|l| l.starts_with("round 0 ") && l.contains(store))
            .unwrap_or_else(|| panic!("no run of {store}:\n{stdout}"));
        assert!(
            line.contains(&format!(
                "acked {acked} writes; applied per node [{acked}, {acked}, {acked}]: all applied"
            )),
            "{store}: {line}"
        );
        assert!(
            stdout.contains(&format!("| {store} | 1 |")),
            "{store} at 1 client in the table:\n{stdout}"
        );
        assert!(
            stdout.contains(&format!("| {store} | 4 |")),
            "{store} at 4 clients in the table:\n{stdout}"
        );
    }
    for (clients, writes) in [(1, 10), (4, 40)] {
        let want = format!("{clients} clients: {writes} writes in");
        let n = stdout
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|l| l.starts_with(&want))
            .count();
        assert_eq!(
            n,
            STORES.len(),
            "{clients} clients, {writes} writes per store:\n{stdout}"
        );
    }
    // The run cleans up after itself.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("the directory")
        .collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}
