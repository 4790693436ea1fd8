//! One format everywhere: the same workload (tests/one_format/workload.rs)
//! written on another platform gives the same bytes as on this one, and
//! those bytes open here, read-only, with the same entries and metadata.
//!
//! The platform tiers run `writes_the_workload_log` there (Windows under
//! wine, WASI) with `BLOCKWAL_FORMAT_DIR` naming where to leave the log, the
//! RISC-V firmware writes its flash image through semihosting, then they run
//! `logs_written_elsewhere_open_here` on Linux with `BLOCKWAL_FORMAT_CHECK`
//! listing them (`file:PATH` or `flash:PATH`, comma-separated). Without it,
//! the test checks this platform's own logs the same way.

extern crate alloc;

#[path = "one_format/workload.rs"]
mod workload;

use std::path::{Path, PathBuf};

use blockwal::{ImageDevice, RaftWal, RaftWalOptions, Wal};

/// A foreign run leaves its log in this directory.
const WRITE_DIR: &str = "BLOCKWAL_FORMAT_DIR";
/// Logs written elsewhere, to check here.
const CHECK: &str = "BLOCKWAL_FORMAT_CHECK";

fn file_opts() -> RaftWalOptions {
    RaftWalOptions::default().block_size(4096)
}

/// Writes the workload through `RaftWal` into `dir` and checks it after a
/// reopen; returns the log file.
fn write_file_log(dir: &Path) -> PathBuf {
    let mut wal = RaftWal::open_with(dir, file_opts()).expect("open");
    workload::write(&mut wal).expect("workload");
    drop(wal);
    let wal = RaftWal::open_with(dir, file_opts()).expect("reopen");
    workload::check(&wal).expect("the log after reopen");
    dir.join("blockwal.log")
}

#[test]
fn writes_the_workload_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os(WRITE_DIR).map_or(tmp.path().to_path_buf(), PathBuf::from);
    let file = write_file_log(&dir);
    println!("workload log: {}", file.display());
}

/// The workload's flash image, written here.
#[cfg(feature = "flash")]
fn flash_image() -> Vec<u8> {
    use blockwal::devices::ram_flash::RamFlash;
    use blockwal::{FlashDevice, WalOptions};
    use workload::{FLASH_SECTOR, FLASH_SECTORS, FLASH_WRITE};
    let flash =
        RamFlash::<{ FLASH_WRITE }, { FLASH_SECTOR }>::new(FLASH_SECTOR * FLASH_SECTORS).unwrap();
    let dev = FlashDevice::new(flash, 0, (FLASH_SECTOR * FLASH_SECTORS) as u32).unwrap();
    let mut wal = Wal::open_with(dev, WalOptions::small()).unwrap();
    workload::write(&mut wal).expect("workload on flash");
    wal.into_device().into_inner().image().to_vec()
}

/// Opens `path` read-only as it is and checks it against the workload's model.
fn open_and_check(path: &Path, block_size: u32, program_size: u32, erase: Option<u8>) {
    let dev = ImageDevice::open(path, block_size, program_size, erase).expect("open image");
    let wal = Wal::open(dev).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    workload::check(&wal).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn same_bytes(what: &str, got: &[u8], want: &[u8]) {
    if let Some(at) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!("{what}: differs from this platform's log at byte {at}");
    }
    assert_eq!(got.len(), want.len(), "{what}: length differs");
}

#[test]
fn logs_written_elsewhere_open_here() {
    let tmp = tempfile::tempdir().unwrap();
    let here = std::fs::read(write_file_log(tmp.path())).unwrap();
    let list = std::env::var(CHECK).unwrap_or_default();
    let mut checked = 0;
    for item in list.split(',').filter(|s| !s.is_empty()) {
        let (kind, path) = item.split_once(':').expect("file:PATH or flash:PATH");
        let path = Path::new(path);
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{item}: {e}"));
        match kind {
            "file" => {
                same_bytes(item, &bytes, &here);
                open_and_check(path, 4096, 1, None);
            }
            #[cfg(feature = "flash")]
            "flash" => {
                same_bytes(item, &bytes, &flash_image());
                let w = workload::FLASH_WRITE as u32;
                open_and_check(path, workload::FLASH_SECTOR as u32, w, Some(0xFF));
            }
            _ => panic!("{item}: unknown kind {kind}"),
        }
        println!("one format: {item}: same bytes, same entries and metadata");
        checked += 1;
    }
    if checked == 0 {
        // Nothing from elsewhere: this platform's own logs, the same way.
        open_and_check(&tmp.path().join("blockwal.log"), 4096, 1, None);
        #[cfg(feature = "flash")]
        {
            let img = tmp.path().join("flash.img");
            std::fs::write(&img, flash_image()).unwrap();
            open_and_check(
                &img,
                workload::FLASH_SECTOR as u32,
                workload::FLASH_WRITE as u32,
                Some(0xFF),
            );
        }
    }
}
