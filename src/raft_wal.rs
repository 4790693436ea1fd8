//! `RaftWal`: the log in a directory, with the `raft-wal` crate's method names.

use std::io;
use std::ops::{Deref, DerefMut};
use std::path::Path;

use crate::devices::file::FileDevice;
use crate::{Error, Wal, WalOptions};

/// Settings for [`RaftWal::open_with`].
///
/// Build it from [`RaftWalOptions::default`] and the builder methods, e.g.
/// `RaftWalOptions::default().block_size(64 << 10)`: fields may be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RaftWalOptions {
    /// Block (allocation and compaction) size in bytes. Default 1 MiB.
    pub block_size: u32,
    /// Most bytes the log file may take; `None`: the disk is the limit.
    pub max_bytes: Option<u64>,
    /// Most bytes of recent entries kept in memory. Default 16 MiB.
    pub cache_bytes: usize,
    /// Most recent entries kept in memory. Default unbounded (bytes bound it).
    pub cache_entries: usize,
}

impl Default for RaftWalOptions {
    fn default() -> Self {
        let w = WalOptions::default();
        RaftWalOptions {
            block_size: 1 << 20,
            max_bytes: None,
            cache_bytes: w.cache_bytes,
            cache_entries: w.cache_entries,
        }
    }
}

impl RaftWalOptions {
    /// Sets [`RaftWalOptions::block_size`]: block (allocation and compaction) size in bytes.
    #[must_use]
    pub const fn block_size(mut self, v: u32) -> Self {
        self.block_size = v;
        self
    }

    /// Sets [`RaftWalOptions::max_bytes`]: most bytes the log file may take (`None`: the disk is the limit).
    #[must_use]
    pub const fn max_bytes(mut self, v: Option<u64>) -> Self {
        self.max_bytes = v;
        self
    }

    /// Sets [`RaftWalOptions::cache_bytes`]: most bytes of recent entries kept in memory.
    #[must_use]
    pub const fn cache_bytes(mut self, v: usize) -> Self {
        self.cache_bytes = v;
        self
    }

    /// Sets [`RaftWalOptions::cache_entries`]: most recent entries kept in memory.
    #[must_use]
    pub const fn cache_entries(mut self, v: usize) -> Self {
        self.cache_entries = v;
        self
    }
}

/// A Raft log in a directory (one file, `blockwal.log`, grown in zero-filled blocks). Derefs to
/// [`Wal`], whose methods carry the `raft-wal` crate's names and shapes.
pub struct RaftWal(Wal<FileDevice>);

impl RaftWal {
    /// Opens or creates the log in `dir` with default settings.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, Error<io::Error>> {
        Self::open_with(dir, RaftWalOptions::default())
    }

    /// Opens or creates the log in `dir` with `opts`.
    pub fn open_with(
        dir: impl AsRef<Path>,
        opts: RaftWalOptions,
    ) -> Result<Self, Error<io::Error>> {
        let max_blocks = opts.max_bytes.map_or(u32::MAX, |m| {
            u32::try_from(m / u64::from(opts.block_size)).unwrap_or(u32::MAX)
        });
        let dev = FileDevice::open(dir, opts.block_size, 4, max_blocks)?;
        let wopts = WalOptions::default()
            .cache_bytes(opts.cache_bytes)
            .cache_entries(opts.cache_entries);
        Wal::open_with(dev, wopts).map(RaftWal)
    }

    /// The underlying generic log.
    pub fn into_inner(self) -> Wal<FileDevice> {
        self.0
    }
}

impl Deref for RaftWal {
    type Target = Wal<FileDevice>;
    fn deref(&self) -> &Wal<FileDevice> {
        &self.0
    }
}

impl DerefMut for RaftWal {
    fn deref_mut(&mut self) -> &mut Wal<FileDevice> {
        &mut self.0
    }
}
