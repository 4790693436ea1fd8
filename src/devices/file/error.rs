//! `FileError`: a failed file operation, with the file and the operation.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The file operation that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileOp {
    /// Creating the log's directory.
    CreateDir,
    /// Opening (or creating) the file.
    Open,
    /// Taking the exclusive lock (an I/O failure, not a lock held elsewhere).
    Lock,
    /// Reading the file's length.
    Metadata,
    /// Reading at a byte offset.
    Read(u64),
    /// Writing at a byte offset.
    Write(u64),
    /// Growing the file (writing its new blocks) to a byte length.
    Grow(u64),
    /// Making written data durable.
    Sync,
    /// Making the directory entry of the file durable.
    SyncDir,
}

impl fmt::Display for FileOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileOp::CreateDir => write!(f, "create the directory of"),
            FileOp::Open => write!(f, "open"),
            FileOp::Lock => write!(f, "lock"),
            FileOp::Metadata => write!(f, "read the length of"),
            FileOp::Read(at) => write!(f, "read at byte {at} of"),
            FileOp::Write(at) => write!(f, "write at byte {at} of"),
            FileOp::Grow(_) => write!(f, "grow"),
            FileOp::Sync => write!(f, "sync"),
            FileOp::SyncDir => write!(f, "sync the directory of"),
        }
    }
}

/// A file operation failed: which file, which operation, and the OS error
/// (its [`std::error::Error::source`]). The file devices report it inside an
/// [`io::Error`] of the same kind, so `Error<io::Error>` stays their error
/// type; get it back with `io_error.get_ref()` and `downcast_ref::<FileError>()`,
/// or [`FileError::of`].
#[derive(Debug)]
pub struct FileError {
    op: FileOp,
    path: PathBuf,
    source: io::Error,
}

impl FileError {
    /// `source` happened during `op` on `path`.
    pub fn new(op: FileOp, path: impl Into<PathBuf>, source: io::Error) -> Self {
        FileError {
            op,
            path: path.into(),
            source,
        }
    }

    /// The operation that failed.
    pub fn op(&self) -> FileOp {
        self.op
    }

    /// The file (for [`FileOp::CreateDir`], the directory).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `FileError` inside an I/O error a file device returned, if any.
    pub fn of(e: &io::Error) -> Option<&FileError> {
        e.get_ref()?.downcast_ref()
    }

    /// What the user can do about it, when the OS error says.
    fn hint(&self) -> &'static str {
        match self.source.kind() {
            io::ErrorKind::PermissionDenied => {
                ": give this user read and write access to the file and its directory"
            }
            io::ErrorKind::NotFound => ": check the path; its parent directory must exist",
            io::ErrorKind::StorageFull => ": free disk space or lower the log's size limit",
            io::ErrorKind::UnexpectedEof => {
                ": the file is shorter than its log; run `blockwal verify`"
            }
            _ => "",
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot {} {}", self.op, self.path.display())?;
        if let FileOp::Grow(to) = self.op {
            write!(f, " to {to} bytes")?;
        }
        write!(f, ": {}{}", self.source, self.hint())
    }
}

impl std::error::Error for FileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl From<FileError> for io::Error {
    /// Keeps the OS error's kind, so callers matching on it still can.
    fn from(e: FileError) -> io::Error {
        io::Error::new(e.source.kind(), e)
    }
}

/// Wraps an OS error with the operation and the file.
pub(crate) fn at(op: FileOp, path: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| FileError::new(op, path, e).into()
}
