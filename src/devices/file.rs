//! `FileDevice`: one preallocated file per log, grown in whole blocks.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::device::{BlockDevice, Geometry};
use crate::Error;

/// Name of the log file inside the log directory.
pub const LOG_FILE: &str = "blockwal.log";

/// A log file: program unit 1, no erase, `sync` is `fdatasync`. Space is
/// preallocated (`fallocate`) when the file grows, so a sync never has to
/// allocate and a full disk shows up as a failed growth (`Error::Full`),
/// never as a half-written entry. Holds an advisory lock on the file while open.
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
    /// Fails with [`Error::Locked`] if another process has the log open.
    pub fn open(
        dir: impl AsRef<Path>,
        block_size: u32,
        initial_blocks: u32,
        max_blocks: u32,
    ) -> Result<Self, Error<io::Error>> {
        std::fs::create_dir_all(dir.as_ref()).map_err(Error::Device)?;
        Self::open_file(
            dir.as_ref().join(LOG_FILE),
            block_size,
            initial_blocks,
            max_blocks,
        )
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
            .map_err(Error::Device)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(Error::Locked),
            Err(TryLockError::Error(e)) => return Err(Error::Device(e)),
        }
        let len = file.metadata().map_err(Error::Device)?.len();
        let have = u32::try_from(len / u64::from(block_size))
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
}

impl BlockDevice for FileDevice {
    type Error = io::Error;

    fn geometry(&self) -> Geometry {
        self.geo
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if offset + data.len() as u64 > self.geo.capacity() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "write past the end of the log file",
            ));
        }
        self.file.write_all_at(data, offset)
    }

    fn erase(&mut self, _block: u32) -> io::Result<()> {
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn prefetch(&mut self, offset: u64, len: u64) {
        // Starts the reads in the background (readahead): opening a cold log
        // then waits for one batch of disk reads, not one read per block.
        let _ = rustix::fs::fadvise(
            &self.file,
            offset,
            core::num::NonZeroU64::new(len),
            rustix::fs::Advice::WillNeed,
        );
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
        if let Err(e) = rustix::fs::fallocate(
            &self.file,
            rustix::fs::FallocateFlags::empty(),
            old,
            new - old,
        ) {
            if e == rustix::io::Errno::NOSPC || e == rustix::io::Errno::DQUOT {
                // Give back what a partial allocation took; the log is unchanged.
                self.file.set_len(old)?;
                return Ok(false);
            }
            if e != rustix::io::Errno::OPNOTSUPP {
                return Err(e.into());
            }
            self.file.set_len(new)?;
        }
        // The new size must be durable before blocks in it are used.
        self.file.sync_all()?;
        self.geo.block_count = count;
        Ok(true)
    }
}
