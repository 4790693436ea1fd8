//! The operating-system primitives the file devices need, one function per
//! operation and every platform difference in this file:
//!
//! | | Linux, Android | macOS, iOS | other Unix | Windows | WASI (wasip1) |
//! |---|---|---|---|---|---|
//! | positional I/O | `pread`/`pwrite` | `pread`/`pwrite` | `pread`/`pwrite` | `seek_read`/`seek_write` | seek, then read/write |
//! | growth | `fallocate`, then zeros written | zeros written | zeros written | zeros written | zeros written |
//! | durable sync | `fdatasync` | `F_FULLFSYNC` | `fdatasync` | `FlushFileBuffers` | `fd_datasync` |
//! | directory sync | `fsync(dir)` | `F_FULLFSYNC(dir)` | `fsync(dir)` | none (NTFS journals it) | `fd_sync(dir)` if the host allows it |
//! | exclusive lock | `flock` | `flock` | `flock` | `LockFileEx` | none |
//! | readahead | `fadvise` | none | none | none | none |
//!
//! WASI: std's positional `FileExt` for WASI is not stable, so reads and
//! writes seek first; the devices take `&mut self`, so nothing interleaves.
//! WASI preview 1 has no file locks: the host runtime decides who shares a
//! preopened directory.

use std::fs::File;
use std::io;
use std::path::Path;

/// Reads exactly `buf.len()` bytes at `offset`.
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let (mut buf, mut offset) = (buf, offset);
        while !buf.is_empty() {
            match std::os::windows::fs::FileExt::seek_read(file, buf, offset) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
    #[cfg(not(any(unix, windows)))]
    {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = file;
        f.seek(SeekFrom::Start(offset))?;
        f.read_exact(buf)
    }
}

/// Writes all of `data` at `offset`.
pub(crate) fn write_all_at(file: &File, data: &[u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(file, data, offset)
    }
    #[cfg(windows)]
    {
        let (mut data, mut offset) = (data, offset);
        while !data.is_empty() {
            match std::os::windows::fs::FileExt::seek_write(file, data, offset) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    data = &data[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
    #[cfg(not(any(unix, windows)))]
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = file;
        f.seek(SeekFrom::Start(offset))?;
        f.write_all(data)
    }
}

/// Makes written data durable: it must survive a power cut once this returns.
/// Apple's `fdatasync` leaves data in the drive's volatile cache, so there
/// std's `sync_all` issues `F_FULLFSYNC`, which flushes that cache: it costs
/// a full cache flush per sync (milliseconds on Apple SSDs, where
/// `fdatasync` returns in microseconds) and is the only durable choice.
pub(crate) fn sync_data(file: &File) -> io::Result<()> {
    if cfg!(target_vendor = "apple") {
        file.sync_all()
    } else {
        file.sync_data()
    }
}

/// Bytes of zeros written per call when the file grows.
const ZERO_CHUNK: usize = 1 << 20;

/// Grows `file` from `old` to `new` bytes with the new blocks written
/// (zeros) and durable, so later syncs of data written there carry no
/// allocation metadata. A sync after writing into unwritten (fallocated) or
/// sparse extents must also commit their allocation: on ext4 that doubles
/// the cost of a small `pwrite` + `fdatasync`. On Linux `fallocate` first
/// reserves the space, so a full disk is found before anything is written.
///
/// `Ok(false)`: the disk (or quota) is full, and the file is `old` bytes
/// long again (the log is unchanged).
pub(crate) fn grow_zeroed(file: &File, old: u64, new: u64) -> io::Result<bool> {
    match fill_zeros(file, old, new) {
        Ok(()) => Ok(true),
        Err(e) => {
            // Give back what a partial growth took; the log is unchanged.
            let undo = file.set_len(old);
            if !is_full(&e) {
                return Err(e);
            }
            undo.map(|()| false)
        }
    }
}

fn fill_zeros(file: &File, old: u64, new: u64) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), old, new - old) {
        // The file system cannot preallocate (tmpfs of old kernels, NFS):
        // the writes below find a full disk instead.
        Err(e) if e == rustix::io::Errno::OPNOTSUPP => {}
        r => r?,
    }
    let zeros = vec![0u8; (new - old).min(ZERO_CHUNK as u64) as usize];
    let mut at = old;
    while at < new {
        let n = (new - at).min(zeros.len() as u64) as usize;
        write_all_at(file, &zeros[..n], at)?;
        at += n as u64;
    }
    // The new length and blocks must be durable before blocks in them are
    // used; some file systems report a full disk only here.
    file.sync_all()
}

/// A full disk or an exhausted quota.
fn is_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// Makes the directory entries of `dir` durable (a created or renamed file
/// is then found after a power cut). `Ok(false)` where the OS has no
/// directory sync (Windows: NTFS journals the entry itself) or, on WASI, the
/// host refuses it (Wasmtime answers `fd_sync` on a directory with EBADF;
/// node's WASI does it): durability of the entry is then the host's.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<bool> {
    if cfg!(windows) {
        return Ok(false);
    }
    let d = File::open(dir)?;
    match d.sync_all() {
        Ok(()) => Ok(true),
        Err(_) if cfg!(target_os = "wasi") => Ok(false),
        Err(e) => Err(e),
    }
}

/// How [`try_lock`] went.
pub(crate) enum Lock {
    /// This handle holds the exclusive lock.
    Held,
    /// Another handle (in this or another process) holds it.
    Busy,
    /// The platform has no file locks (WASI).
    Unsupported,
}

/// Takes the exclusive advisory lock (`flock` on Unix: held per open file,
/// so a second handle in the same process is refused too; Windows: a
/// `LockFileEx` lock over the whole file, which also refuses other handles'
/// reads and writes).
pub(crate) fn try_lock(file: &File) -> io::Result<Lock> {
    match file.try_lock() {
        Ok(()) => Ok(Lock::Held),
        Err(std::fs::TryLockError::WouldBlock) => Ok(Lock::Busy),
        Err(std::fs::TryLockError::Error(e))
            if cfg!(target_os = "wasi") && e.kind() == io::ErrorKind::Unsupported =>
        {
            Ok(Lock::Unsupported)
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Starts reading `len` bytes at `offset` in the background (readahead).
pub(crate) fn prefetch(file: &File, offset: u64, len: u64) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = rustix::fs::fadvise(
        file,
        offset,
        core::num::NonZeroU64::new(len),
        rustix::fs::Advice::WillNeed,
    );
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (file, offset, len);
}
