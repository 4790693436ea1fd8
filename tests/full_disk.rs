//! A full disk is a failed growth (`Error::Full`), never a half-written
//! entry: on a 3000 KiB tmpfs (not a whole number of 64 KiB blocks) the log
//! fills, the file holds exactly the blocks the log knows of (a growth that
//! ran out of space mid-way was given back), everything synced reads back,
//! and the log reopens. Linux, as root (it mounts the tmpfs); elsewhere it
//! says it is skipped.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::Command;

use blockwal::conformance::payload;
use blockwal::{Error, FileDevice, Wal};

const BLOCK: u32 = 64 << 10;

/// Unmounts the tmpfs when the test ends, however it ends.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn mount_small_tmpfs(at: &Path) -> Option<Mounted> {
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3000k", "tmpfs"])
        .arg(at)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then(|| Mounted(at.to_path_buf()))
}

#[test]
fn a_full_disk_is_a_failed_growth_and_the_log_stays_whole() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_mounted) = mount_small_tmpfs(dir.path()) else {
        eprintln!("skipped: cannot mount a small tmpfs here (needs root)");
        return;
    };
    let open = || Wal::open(FileDevice::open(dir.path(), BLOCK, 8, 1 << 16).unwrap()).unwrap();
    let mut wal = open();
    let mut synced = 0;
    let mut i = 1u64;
    let err = loop {
        match wal.append(i, &payload(i, 1000)) {
            Ok(()) => i += 1,
            Err(e) => break e,
        }
        if i % 16 == 0 {
            wal.sync().unwrap();
            synced = i - 1;
        }
        assert!(i < 100_000, "never filled");
    };
    assert!(matches!(err, Error::Full), "{err}");
    wal.sync().unwrap();
    synced = synced.max(i - 1);
    let len = std::fs::metadata(dir.path().join("blockwal.log"))
        .unwrap()
        .len();
    // A failed growth gave back what it took: the file is exactly the
    // blocks the log knows of.
    assert_eq!(
        len,
        wal.geometry().capacity(),
        "a growth was left half done"
    );
    assert!(len <= 3000 << 10, "{len} bytes");
    assert!(synced > 1_000, "the log filled early: {synced} entries");
    for k in 1..=synced {
        assert_eq!(
            wal.get(k).as_deref(),
            Some(payload(k, 1000).as_slice()),
            "{k}"
        );
    }
    drop(wal);
    let wal = open();
    assert_eq!(wal.last_index(), Some(synced));
    assert_eq!(
        wal.get(synced).as_deref(),
        Some(payload(synced, 1000).as_slice())
    );
}
