//! `FileDevice`: one file per log, grown in whole written blocks, on
//! Linux, macOS, Windows and WASI. What differs between them lives in `os`.

mod error;
mod os;

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::device::{BlockDevice, Geometry};
use crate::Error;

use error::at;
pub use error::{FileError, FileOp};
pub(crate) use os::read_exact_at;

/// Name of the log file inside the log directory.
pub const LOG_FILE: &str = "blockwal.log";

/// Directory syncs done by this process (see [`FileDevice::directory_syncs`]).
static DIR_SYNCS: AtomicU64 = AtomicU64::new(0);

/// A log file: program unit 1, no erase. `sync` is the OS's durable sync
/// (`fdatasync`; `F_FULLFSYNC` on macOS, see below; `FlushFileBuffers` on
/// Windows). When the file grows, the new blocks are written with zeros and
/// synced once (on Linux, reserved with `fallocate` first), so a later sync
/// carries only the data, never allocation metadata (on ext4 a sync into
/// unwritten extents costs about twice as much), and a full disk shows up as
/// a failed growth (`Error::Full`), never as a half-written entry. The log
/// reuses compacted blocks before it grows, so a log in steady state (append,
/// sync, compact) stops growing. Opening syncs the file's directory, so a new
/// log file is still there after a power cut.
///
/// While open it holds an exclusive lock on the file: a second open, from
/// this process or another, fails with [`Error::Locked`]. On Windows the lock
/// is mandatory (other handles cannot read the file meanwhile); WASI preview 1
/// has no locks, so there the host runtime must keep instances apart.
///
/// On macOS every sync flushes the drive's cache (`F_FULLFSYNC`): plain
/// `fdatasync` there leaves data in volatile cache and is not durable. This
/// costs milliseconds per sync; batch appends between syncs.
///
/// I/O errors name the file and the operation: they carry a [`FileError`].
#[derive(Debug)]
pub struct FileDevice {
    file: File,
    path: PathBuf,
    geo: Geometry,
    max_blocks: u32,
}

impl FileDevice {
    /// Opens (creating if needed) `dir/blockwal.log`, with `block_size`-byte
    /// blocks, at least `initial_blocks` of them, growable to `max_blocks`.
    /// Fails with [`Error::Locked`] if another owner has the log open.
    pub fn open(
        dir: impl AsRef<Path>,
        block_size: u32,
        initial_blocks: u32,
        max_blocks: u32,
    ) -> Result<Self, Error<io::Error>> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)
            .map_err(at(FileOp::CreateDir, dir))
            .map_err(Error::Device)?;
        Self::open_file(dir.join(LOG_FILE), block_size, initial_blocks, max_blocks)
    }

    /// Opens (creating if needed) a log file or raw image at `path`.
    pub fn open_file(
        path: impl AsRef<Path>,
        block_size: u32,
        initial_blocks: u32,
        max_blocks: u32,
    ) -> Result<Self, Error<io::Error>> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(at(FileOp::Open, &path))
            .map_err(Error::Device)?;
        match os::try_lock(&file).map_err(at(FileOp::Lock, &path)) {
            Ok(os::Lock::Held | os::Lock::Unsupported) => {}
            Ok(os::Lock::Busy) => {
                return Err(Error::Locked {
                    what: path.display().to_string(),
                })
            }
            Err(e) => return Err(Error::Device(e)),
        }
        // The file may be new (or made by a process that died before this
        // step): its directory entry must be durable before its data is.
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if os::sync_dir(dir)
            .map_err(at(FileOp::SyncDir, &path))
            .map_err(Error::Device)?
        {
            DIR_SYNCS.fetch_add(1, Ordering::Relaxed);
        }
        let len = file
            .metadata()
            .map_err(at(FileOp::Metadata, &path))
            .map_err(Error::Device)?
            .len();
        let have = u32::try_from(len / u64::from(block_size.max(1)))
            .map_err(|_| Error::Geometry("file holds more than 2^32 blocks"))?;
        let geo = Geometry {
            block_size,
            program_size: 1,
            block_count: have,
            erase_value: None,
        };
        geo.validate().map_err(Error::Geometry)?;
        let mut dev = FileDevice {
            file,
            path,
            geo,
            max_blocks: max_blocks.max(initial_blocks),
        };
        if have < initial_blocks && !dev.grow(initial_blocks - have).map_err(Error::Device)? {
            return Err(Error::Full);
        }
        Ok(dev)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many directory syncs file devices have done in this process: one
    /// per open, where the OS has directory sync (not on Windows). Lets a test
    /// see that a new log's directory entry was made durable.
    pub fn directory_syncs() -> u64 {
        DIR_SYNCS.load(Ordering::Relaxed)
    }
}

impl BlockDevice for FileDevice {
    type Error = io::Error;

    fn geometry(&self) -> Geometry {
        self.geo
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        os::read_exact_at(&self.file, buf, offset).map_err(at(FileOp::Read(offset), &self.path))
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if offset + data.len() as u64 > self.geo.capacity() {
            let e = io::Error::new(
                io::ErrorKind::InvalidInput,
                "write past the end of the log file",
            );
            return Err(at(FileOp::Write(offset), &self.path)(e));
        }
        os::write_all_at(&self.file, data, offset).map_err(at(FileOp::Write(offset), &self.path))
    }

    fn erase(&mut self, _block: u32) -> io::Result<()> {
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        os::sync_data(&self.file).map_err(at(FileOp::Sync, &self.path))
    }

    fn prefetch(&mut self, offset: u64, len: u64) {
        // Starts the reads in the background (readahead, where the OS has
        // it): opening a cold log then waits for one batch of disk reads,
        // not one read per block.
        os::prefetch(&self.file, offset, len);
    }

    fn grow(&mut self, blocks: u32) -> io::Result<bool> {
        let Some(count) = self
            .geo
            .block_count
            .checked_add(blocks)
            .filter(|c| *c <= self.max_blocks)
        else {
            return Ok(false);
        };
        let old = self.geo.capacity();
        let new = u64::from(count) * u64::from(self.geo.block_size);
        if !os::grow_zeroed(&self.file, old, new).map_err(at(FileOp::Grow(new), &self.path))? {
            return Ok(false);
        }
        self.geo.block_count = count;
        Ok(true)
    }
}
