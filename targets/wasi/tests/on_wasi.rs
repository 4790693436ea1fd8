//! blockwal on WASI: the conformance suite over `FileDevice` on a preopened
//! directory, the README's `RaftWal` usage, what locking means there, and
//! the one-format workload (its log is then opened on Linux). Runs in node's
//! built-in WASI through run.mjs (scripts/test-wasi.sh); `/data` is the
//! preopened directory.

extern crate alloc;

#[path = "../../../tests/one_format/workload.rs"]
mod workload;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use blockwal::conformance::run_all;
use blockwal::{FileDevice, RaftWal, RaftWalOptions};

/// A fresh directory under the preopened `/data`.
fn fresh(what: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = PathBuf::from(format!(
        "/data/{what}-{}",
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn conformance_on_file_device() {
    let mut make = || FileDevice::open(fresh("conformance"), 1024, 4, 256).expect("open");
    let n = run_all(&mut make, 4096).unwrap_or_else(|f| panic!("{}: {}", f.test, f.what));
    println!("{n} conformance tests passed on FileDevice under WASI");
}

/// The README's usage example, as written there.
#[test]
fn raft_wal_usage() -> Result<(), Box<dyn std::error::Error>> {
    let dir = fresh("usage");
    let mut wal = RaftWal::open(&dir)?;
    wal.append(1, b"entry-1")?;
    wal.append_batch(&[(2, b"entry-2".as_slice()), (3, b"entry-3")])?;
    wal.sync()?;
    assert_eq!(wal.get(2).as_deref(), Some(&b"entry-2"[..]));
    wal.truncate(3)?;
    wal.append(3, b"entry-3, new leader")?;
    wal.compact(1)?;
    assert_eq!((wal.first_index(), wal.last_index()), (Some(2), Some(3)));
    wal.set_meta("vote", b"node-1")?;
    drop(wal);
    let wal = RaftWal::open(&dir)?;
    assert_eq!(wal.get_meta("vote"), Some(b"node-1".as_slice()));
    let entries: Vec<_> = wal.iter().map(|e| e.index).collect();
    assert_eq!(entries, [2, 3]);
    Ok(())
}

/// WASI preview 1 has no file locks: a second open of the same log is not
/// refused (the host must keep instances apart), as FileDevice documents.
#[test]
fn no_lock_on_wasi() {
    let dir = fresh("lock");
    let first = RaftWal::open(&dir).expect("first open");
    let second = RaftWal::open(&dir);
    assert!(
        second.is_ok(),
        "WASI gained file locks: update FileDevice's docs"
    );
    drop(first);
}

/// The one-format workload, left in `/data/one-format` for Linux to check.
#[test]
fn writes_the_workload_log() {
    let dir = PathBuf::from("/data/one-format");
    let _ = std::fs::remove_dir_all(&dir);
    let opts = RaftWalOptions::default().block_size(4096);
    let mut wal = RaftWal::open_with(&dir, opts).expect("open");
    workload::write(&mut wal).expect("workload");
    drop(wal);
    let wal = RaftWal::open_with(&dir, opts).expect("reopen");
    workload::check(&wal).expect("the log after reopen");
}
