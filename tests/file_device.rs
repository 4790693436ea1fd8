//! File-specific promises: the directory lock, the capacity limit behaving
//! like a full disk, the directory sync of a new log, errors that name the
//! file, and the `raft-wal`-shaped API of `RaftWal`. Runs on Linux, and
//! under wine (Windows) in scripts/test-platforms.sh.

use std::borrow::Cow;
use std::error::Error as _;
use std::io;
use std::sync::Mutex;

use blockwal::conformance::{payload, run_all};
use blockwal::{BlockDevice, Entry, Error, FileDevice, FileError, FileOp, ImageDevice};
use blockwal::{RaftWal, RaftWalOptions};

/// Serialises the tests of this binary: between `fork` and `exec`, a child
/// spawned by one test holds a copy of every open file of the process, so its
/// flock would outlive another test's close for a moment.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn a_second_open_of_the_same_directory_is_locked() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let wal = RaftWal::open(dir.path()).unwrap();
    match RaftWal::open(dir.path()) {
        Err(Error::Locked { .. }) => {}
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("opened a locked log twice"),
    }
    drop(wal);
    RaftWal::open(dir.path()).expect("lock released when the first owner closes");
}

#[test]
fn the_lock_error_names_the_log_file_and_what_to_do() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("blockwal.log").display().to_string();
    let _wal = RaftWal::open(dir.path()).unwrap();
    let err = match RaftWal::open(dir.path()) {
        Err(e) => e,
        Ok(_) => panic!("opened a locked log twice"),
    };
    match &err {
        Error::Locked { what } => assert_eq!(what, &log),
        e => panic!("expected Locked, got {e}"),
    }
    let msg = err.to_string();
    assert!(msg.starts_with(&log), "{msg}");
    assert!(
        msg.contains("locked by another owner") && msg.contains("close it there"),
        "{msg}"
    );
}

#[cfg(unix)]
#[test]
fn a_second_process_sees_the_lock() {
    let _serial = serial();
    // flock is per open file: a child process holding the file must block us.
    let dir = tempfile::tempdir().unwrap();
    drop(RaftWal::open(dir.path()).unwrap());
    let file = dir.path().join("blockwal.log");
    let mut child = std::process::Command::new("flock")
        .arg(&file)
        .args(["sleep", "5"])
        .spawn()
        .expect("flock(1) from util-linux");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let r = RaftWal::open(dir.path());
    child.kill().ok();
    child.wait().ok();
    assert!(
        matches!(r, Err(Error::Locked { .. })),
        "another process holds the log"
    );
}

#[test]
fn capacity_limit_fills_then_compaction_frees_space() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let opts = RaftWalOptions::default()
        .block_size(4096)
        .max_bytes(Some(64 * 4096));
    let mut wal = RaftWal::open_with(dir.path(), opts).unwrap();
    let mut i = 1;
    let err = loop {
        match wal.append(i, &payload(i, 1000)) {
            Ok(()) => i += 1,
            Err(e) => break e,
        }
        assert!(i < 10_000, "never filled");
    };
    assert!(matches!(err, Error::Full), "{err}");
    assert!(err.to_string().contains("full"), "{err}");
    wal.sync().unwrap();
    let last = i - 1;
    drop(wal);
    // Still consistent after reopen, and usable once space is freed.
    let mut wal = RaftWal::open_with(dir.path(), opts).unwrap();
    assert_eq!(wal.last_index(), Some(last));
    assert_eq!(
        wal.get(last).as_deref(),
        Some(payload(last, 1000).as_slice())
    );
    wal.compact(last - 10).unwrap();
    for k in last + 1..last + 100 {
        wal.append(k, &payload(k, 1000)).unwrap();
        if k % 10 == 0 {
            wal.sync().unwrap();
            wal.compact(k - 10).unwrap();
        }
    }
    wal.sync().unwrap();
    assert!(
        std::fs::metadata(dir.path().join("blockwal.log"))
            .unwrap()
            .len()
            <= 64 * 4096
    );
}

#[test]
fn conformance_on_a_capped_file() {
    let _serial = serial();
    let dirs = std::cell::RefCell::new(Vec::new());
    let mut make = || {
        let d = tempfile::tempdir().unwrap();
        let dev = FileDevice::open(d.path(), 1024, 4, 256).unwrap();
        dirs.borrow_mut().push(d);
        dev
    };
    run_all(&mut make, 4096).unwrap_or_else(|f| panic!("{}: {}", f.test, f.what));
}

/// Code written for the `raft-wal` crate compiles against `RaftWal` with
/// the crate name changed: these are its call shapes.
#[test]
fn raft_wal_api_shapes() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut wal = RaftWal::open(dir.path()).unwrap();
    wal.append(1, b"one").unwrap();
    let owned: Vec<(u64, Vec<u8>)> = vec![(2, b"two".to_vec()), (3, b"three".to_vec())];
    wal.append_batch(&owned).unwrap();
    let borrowed: [(u64, &[u8]); 1] = [(4, b"four")];
    wal.append_batch(&borrowed).unwrap();
    wal.flush().unwrap();
    wal.sync().unwrap();
    let got: Option<Cow<[u8]>> = wal.get(2);
    assert_eq!(got.as_deref(), Some(&b"two"[..]));
    let range: Vec<(u64, Vec<u8>)> = wal.read_range(2..=3);
    assert_eq!(range, vec![(2, b"two".to_vec()), (3, b"three".to_vec())]);
    let all: Vec<Entry> = wal.iter().collect();
    assert_eq!(
        all.iter().map(|e| e.index).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(all[3].data.as_ref(), b"four");
    let some: Vec<u64> = wal.iter_range(3..).map(|e| e.index).collect();
    assert_eq!(some, [3, 4]);
    let (len, empty, first, last): (usize, bool, Option<u64>, Option<u64>) = (
        wal.len(),
        wal.is_empty(),
        wal.first_index(),
        wal.last_index(),
    );
    assert_eq!((len, empty, first, last), (4, false, Some(1), Some(4)));
    wal.set_max_cache_entries(1);
    // Evicted entries are read back from the device, never skipped.
    assert_eq!(wal.read_range(..).len(), 4);
    let mem: usize = wal.estimated_memory();
    assert!(mem > 0);
    wal.set_meta("vote", b"n1").unwrap();
    let v: Option<&[u8]> = wal.get_meta("vote");
    assert_eq!(v, Some(&b"n1"[..]));
    wal.remove_meta("vote").unwrap();
    wal.truncate(4).unwrap();
    wal.compact(1).unwrap();
    assert_eq!(
        wal.read_range(..),
        vec![(2, b"two".to_vec()), (3, b"three".to_vec())]
    );
}

/// A new log file's directory entry is made durable when the log is opened
/// (where the OS has directory sync: not on Windows, where NTFS journals it).
#[test]
fn opening_a_new_log_syncs_its_directory() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let before = FileDevice::directory_syncs();
    let dev = FileDevice::open(dir.path().join("new"), 4096, 4, 64).unwrap();
    let synced = FileDevice::directory_syncs() - before;
    assert_eq!(synced, u64::from(!cfg!(windows)), "directory syncs at open");
    assert!(dev.path().exists());
}

/// Every file error says which file, which operation, and carries the OS error.
#[test]
fn file_errors_name_the_path_and_the_operation() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();

    // The log's "directory" is a regular file.
    let not_a_dir = dir.path().join("plain");
    std::fs::write(&not_a_dir, b"x").unwrap();
    let Err(Error::Device(e)) = FileDevice::open(&not_a_dir, 4096, 4, 64) else {
        panic!("opened a log inside a regular file");
    };
    let fe = FileError::of(&e).expect("a FileError inside the io::Error");
    assert_eq!(fe.op(), FileOp::CreateDir);
    assert_eq!(fe.path(), not_a_dir.as_path());
    assert!(e.to_string().contains(&*not_a_dir.to_string_lossy()), "{e}");
    let os = e.source().expect("the OS error is the source");
    assert!(os.downcast_ref::<io::Error>().is_some(), "{os:?}");

    // A read past the end of the file: the offset and the file.
    let mut dev = FileDevice::open(dir.path().join("log"), 4096, 4, 64).unwrap();
    let end = dev.geometry().capacity();
    let e = dev.read(end, &mut [0u8; 16]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    let fe = FileError::of(&e).expect("FileError");
    assert_eq!(fe.op(), FileOp::Read(end));
    assert_eq!(fe.path(), dev.path());
    let msg = e.to_string();
    assert!(msg.contains(&format!("read at byte {end}")), "{msg}");
    assert!(msg.contains("blockwal.log"), "{msg}");

    // An image that is not there.
    let missing = dir.path().join("missing.img");
    let e = ImageDevice::open(&missing, 4096, 1, None).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert_eq!(FileError::of(&e).map(|f| f.op()), Some(FileOp::Open));
    assert!(e.to_string().contains("missing.img"), "{e}");
}

/// The log reopens with what was synced, on every platform.
#[test]
fn reopen_keeps_entries_and_meta() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    {
        let mut wal = RaftWal::open(dir.path()).unwrap();
        for i in 1..=300 {
            wal.append(i, &payload(i, 300)).unwrap();
        }
        wal.set_meta("term", b"7").unwrap();
        wal.sync().unwrap();
    }
    let wal = RaftWal::open(dir.path()).unwrap();
    assert_eq!((wal.first_index(), wal.last_index()), (Some(1), Some(300)));
    for i in [1, 150, 300] {
        assert_eq!(wal.get(i).as_deref(), Some(payload(i, 300).as_slice()));
    }
    assert_eq!(wal.get_meta("term"), Some(&b"7"[..]));
}

/// The log reuses compacted blocks before it grows the file: a steady
/// append, sync, compact loop stops growing after warm-up, so steady-state
/// syncs never pay for growth (zero-filling new blocks).
#[test]
fn steady_append_sync_compact_keeps_the_file_size() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let dev = FileDevice::open(dir.path(), 4096, 8, 1 << 20).unwrap();
    let mut wal = blockwal::Wal::open(dev).unwrap();
    let path = dir.path().join("blockwal.log");
    let len = || std::fs::metadata(&path).unwrap().len();
    let start = len();
    let mut warm = None;
    for i in 1..=6_000u64 {
        wal.append(i, &payload(i, 700)).unwrap();
        wal.sync().unwrap();
        if i % 8 == 0 && i > 64 {
            // Keep the last 64 entries (about 11 blocks).
            wal.compact(i - 64).unwrap();
        }
        if i == 1_000 {
            warm = Some(len());
        }
    }
    let warm = warm.unwrap();
    assert!(warm > start, "the log never grew: {start} bytes");
    assert_eq!(len(), warm, "the file grew after warm-up");
    // 6,000 entries of 700 B went through a file of a few dozen blocks.
    assert!(warm <= 64 * 4096, "{warm} bytes");
    assert_eq!(
        wal.get(6_000).as_deref(),
        Some(payload(6_000, 700).as_slice())
    );
}
