//! `OpfsDevice`: one log in the browser's Origin Private File System.
//!
//! The device is one OPFS file, read and written through a
//! `FileSystemSyncAccessHandle`. Browsers only hand out sync access handles
//! in a **dedicated worker**, so [`OpfsDevice::open`] must run there; on the
//! main thread (or in a shared or service worker) it returns
//! [`OpfsError::NotInDedicatedWorker`].
//!
//! Opening is asynchronous (it walks OPFS with promises); everything after it
//! is synchronous, as the [`BlockDevice`] trait requires:
//!
//! | trait call | OPFS call |
//! |---|---|
//! | `read` | `read(buf, { at })`, looped until `buf` is full |
//! | `program` | `write(data, { at })`, looped until all is written |
//! | `sync` | `flush()` |
//! | `grow` | `truncate(size + blocks * block_size)` |
//! | `erase` | nothing (files hold stale bytes; the format copes) |
//!
//! Decisions worth knowing:
//!
//! - **Locking.** A sync access handle is exclusive: while one tab or worker
//!   holds it, opening the same file anywhere else in the same origin fails
//!   with [`OpfsError::Locked`] (the browser's `NoModificationAllowedError`).
//!   The lock is released by [`OpfsDevice::close`], by dropping the device, or
//!   when the worker or tab goes away.
//! - **Size.** The device holds `floor(file size / block_size)` blocks; bytes
//!   after the last whole block are ignored (and dropped by the next `grow`).
//!   A file smaller than [`INITIAL_BLOCKS`] blocks (a new one is empty) is
//!   extended to [`INITIAL_BLOCKS`] blocks when opened.
//! - **Full.** When the origin's quota is used up, `grow` returns `Ok(false)`
//!   (the core then reports [`crate::Error::Full`]) and the file keeps its
//!   previous size; any other failure of `truncate` is an error.
//! - **Reads past the end of the file** cannot happen through the core (it
//!   stays inside `0..capacity`), but the file can be shrunk behind the
//!   device's back: a read that reaches the end of the file before `buf` is
//!   full returns [`OpfsError::UnexpectedEof`] instead of inventing zeros.
//! - **Offsets** are JavaScript numbers: every access must end at or below
//!   2^53 ([`MAX_OFFSET`]), or it returns [`OpfsError::OffsetTooLarge`].
//! - **Closing.** The browser's `close()` does not flush, so
//!   [`OpfsDevice::close`] flushes first and reports the flush's result;
//!   `Drop` flushes too (ignoring errors) and then closes. Durability is only
//!   ever promised by a successful [`BlockDevice::sync`] (or `close`).
//!
//! Errors from the browser are mapped by their `DOMException` name to
//! [`DomErrorKind`], so callers match on a typed value and read a sentence,
//! never a raw JavaScript value.

use alloc::format;
use alloc::string::String;
use core::fmt;

use js_sys::Reflect;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    DedicatedWorkerGlobalScope, FileSystemDirectoryHandle, FileSystemFileHandle,
    FileSystemGetDirectoryOptions, FileSystemGetFileOptions, FileSystemReadWriteOptions,
    FileSystemSyncAccessHandle,
};

use crate::device::{BlockDevice, Geometry};

/// Blocks a file is given when it is opened with fewer (a new file is empty).
pub const INITIAL_BLOCKS: u32 = 4;

/// Every access must end at or below this byte offset (2^53): past it a
/// JavaScript number no longer holds every integer.
pub const MAX_OFFSET: u64 = 1 << 53;

/// The OPFS call that failed, carried in [`OpfsError::Dom`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpfsOp {
    /// `navigator.storage.getDirectory()`.
    GetRoot,
    /// `getDirectoryHandle(dir_name, { create: true })`.
    OpenDirectory,
    /// `getFileHandle(file_name, { create: true })`.
    OpenFile,
    /// `createSyncAccessHandle()`.
    CreateSyncAccessHandle,
    /// `read(buffer, { at })`.
    Read,
    /// `write(buffer, { at })`.
    Write,
    /// `flush()`.
    Flush,
    /// `truncate(size)`.
    Truncate,
    /// `getSize()`.
    GetSize,
}

impl OpfsOp {
    /// The JavaScript call, as a developer would write it.
    pub fn js_name(self) -> &'static str {
        match self {
            OpfsOp::GetRoot => "navigator.storage.getDirectory()",
            OpfsOp::OpenDirectory => "getDirectoryHandle()",
            OpfsOp::OpenFile => "getFileHandle()",
            OpfsOp::CreateSyncAccessHandle => "createSyncAccessHandle()",
            OpfsOp::Read => "FileSystemSyncAccessHandle.read()",
            OpfsOp::Write => "FileSystemSyncAccessHandle.write()",
            OpfsOp::Flush => "FileSystemSyncAccessHandle.flush()",
            OpfsOp::Truncate => "FileSystemSyncAccessHandle.truncate()",
            OpfsOp::GetSize => "FileSystemSyncAccessHandle.getSize()",
        }
    }
}

/// A browser error, by its `DOMException` name (or JavaScript error class).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DomErrorKind {
    /// `NoModificationAllowedError`: another handle holds the file.
    NoModificationAllowed,
    /// `QuotaExceededError`: the origin's storage quota is used up.
    QuotaExceeded,
    /// `NotFoundError`: the file or directory is gone.
    NotFound,
    /// `TypeMismatchError`: a file where a directory was expected, or the reverse.
    TypeMismatch,
    /// `InvalidStateError`: the handle is closed or no longer valid.
    InvalidState,
    /// `InvalidModificationError`: the change is not allowed.
    InvalidModification,
    /// `SecurityError`: the browser denies storage here.
    Security,
    /// `NotAllowedError`: permission denied.
    NotAllowed,
    /// `AbortError`: the operation was aborted.
    Abort,
    /// `NotReadableError`: the file could not be read.
    NotReadable,
    /// `UnknownError` or `OperationError`: the browser's storage backend failed.
    Backend,
    /// A JavaScript `TypeError`: a bad argument, such as an invalid name.
    TypeError,
    /// Any other error name.
    Other,
}

impl DomErrorKind {
    /// Maps a `DOMException` name (or a JavaScript error class name).
    pub fn from_name(name: &str) -> Self {
        match name {
            "NoModificationAllowedError" => DomErrorKind::NoModificationAllowed,
            "QuotaExceededError" => DomErrorKind::QuotaExceeded,
            "NotFoundError" => DomErrorKind::NotFound,
            "TypeMismatchError" => DomErrorKind::TypeMismatch,
            "InvalidStateError" => DomErrorKind::InvalidState,
            "InvalidModificationError" => DomErrorKind::InvalidModification,
            "SecurityError" => DomErrorKind::Security,
            "NotAllowedError" => DomErrorKind::NotAllowed,
            "AbortError" => DomErrorKind::Abort,
            "NotReadableError" => DomErrorKind::NotReadable,
            "UnknownError" | "OperationError" => DomErrorKind::Backend,
            "TypeError" => DomErrorKind::TypeError,
            _ => DomErrorKind::Other,
        }
    }

    /// What the error means for an OPFS log, in words.
    pub fn meaning(self) -> &'static str {
        match self {
            DomErrorKind::NoModificationAllowed => {
                "another tab or worker has this file open (a sync access handle is exclusive)"
            }
            DomErrorKind::QuotaExceeded => "the site's storage quota is used up",
            DomErrorKind::NotFound => "the file or directory does not exist (was it removed?)",
            DomErrorKind::TypeMismatch => {
                "a file exists where a directory was expected, or a directory where a file was"
            }
            DomErrorKind::InvalidState => "the handle is closed or no longer valid",
            DomErrorKind::InvalidModification => "the browser refused the change",
            DomErrorKind::Security => {
                "the browser denies storage here (opaque origin, third-party context, or storage disabled)"
            }
            DomErrorKind::NotAllowed => "permission to use the file was denied",
            DomErrorKind::Abort => "the operation was aborted",
            DomErrorKind::NotReadable => "the file could not be read",
            DomErrorKind::Backend => "the browser's storage backend failed",
            DomErrorKind::TypeError => {
                "invalid argument (a name must not be empty, '.', '..' or contain '/' or '\\')"
            }
            DomErrorKind::Other => "unexpected browser error",
        }
    }
}

/// Everything [`OpfsDevice`] can report.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpfsError {
    /// Opened outside a dedicated worker: sync access handles exist only there.
    NotInDedicatedWorker {
        /// The global scope found instead (for example `"Window"`).
        found: String,
    },
    /// This browser or context lacks something OPFS needs.
    Unsupported(&'static str),
    /// Another tab or worker holds the file (`NoModificationAllowedError`).
    Locked {
        /// The file: `the OPFS file "<dir>/<file>"` when [`OpfsDevice::open`]
        /// knows the names, `the OPFS file` otherwise.
        what: String,
    },
    /// The origin's storage quota is used up (`QuotaExceededError`).
    QuotaExceeded,
    /// The block size cannot hold a log.
    InvalidBlockSize {
        /// The block size asked for.
        block_size: u32,
        /// Why it is refused.
        why: &'static str,
    },
    /// An access outside the device (a breach of the device contract).
    OutOfBounds {
        /// Offset asked for.
        offset: u64,
        /// Length asked for.
        len: usize,
        /// Bytes the device holds.
        capacity: u64,
    },
    /// An access ending past [`MAX_OFFSET`] (2^53).
    OffsetTooLarge {
        /// Offset asked for.
        offset: u64,
        /// Length asked for.
        len: usize,
    },
    /// The file ended before a read was complete: it was shrunk behind the device's back.
    UnexpectedEof {
        /// Offset of the read.
        offset: u64,
        /// Bytes asked for.
        wanted: usize,
        /// Bytes there were.
        got: usize,
    },
    /// A write stored nothing and reported no error.
    WriteStalled {
        /// Offset of the write.
        offset: u64,
        /// Bytes asked for.
        wanted: usize,
        /// Bytes written before it stalled.
        written: usize,
    },
    /// Any other browser error, by kind, with the browser's own message.
    Dom {
        /// The call that failed.
        op: OpfsOp,
        /// The error, by name.
        kind: DomErrorKind,
        /// The error's name as the browser gave it.
        name: String,
        /// The browser's message.
        message: String,
    },
}

impl OpfsError {
    /// Maps a value thrown or rejected by the browser during `op`.
    pub fn from_js(op: OpfsOp, value: &JsValue) -> Self {
        let field = |key: &str| -> Option<String> {
            if !value.is_object() {
                return None;
            }
            Reflect::get(value, &JsValue::from_str(key))
                .ok()
                .and_then(|v| v.as_string())
        };
        let name = field("name").unwrap_or_default();
        let message = field("message")
            .or_else(|| value.as_string())
            .unwrap_or_else(|| String::from("(no message)"));
        Self::from_dom(op, &name, message)
    }

    /// Maps a browser error given by `name` and `message`.
    pub fn from_dom(op: OpfsOp, name: &str, message: String) -> Self {
        match DomErrorKind::from_name(name) {
            DomErrorKind::NoModificationAllowed => OpfsError::Locked {
                what: String::from("the OPFS file"),
            },
            DomErrorKind::QuotaExceeded => OpfsError::QuotaExceeded,
            kind => OpfsError::Dom {
                op,
                kind,
                name: String::from(name),
                message,
            },
        }
    }

    /// The error a global scope named `found` (its constructor's name) gets,
    /// or `None` when it is a dedicated worker.
    pub fn for_global_scope(found: &str) -> Option<Self> {
        match found {
            "DedicatedWorkerGlobalScope" => None,
            _ => Some(OpfsError::NotInDedicatedWorker {
                found: String::from(found),
            }),
        }
    }
}

impl fmt::Display for OpfsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpfsError::NotInDedicatedWorker { found } => write!(
                f,
                "an OPFS log must be opened in a dedicated worker (new Worker(...)), \
                 not in {}: browsers offer FileSystemSyncAccessHandle only there",
                if found.is_empty() { "this context" } else { found.as_str() }
            ),
            OpfsError::Unsupported(what) => write!(f, "OPFS is not usable here: {what}"),
            OpfsError::Locked { what } => write!(
                f,
                "{what} is open in another tab or worker (NoModificationAllowedError): \
                 close it there, or wait for that tab or worker to end"
            ),
            OpfsError::QuotaExceeded => write!(
                f,
                "the site's storage quota is used up (QuotaExceededError): compact the log or free space"
            ),
            OpfsError::InvalidBlockSize { block_size, why } => {
                write!(f, "block size {block_size} is unusable: {why}")
            }
            OpfsError::OutOfBounds { offset, len, capacity } => write!(
                f,
                "access of {len} bytes at offset {offset} lies outside the device ({capacity} bytes)"
            ),
            OpfsError::OffsetTooLarge { offset, len } => write!(
                f,
                "access of {len} bytes at offset {offset} ends past 2^53, the largest offset OPFS can address"
            ),
            OpfsError::UnexpectedEof { offset, wanted, got } => write!(
                f,
                "the file ended after {got} of {wanted} bytes read at offset {offset}: \
                 it was shrunk by someone else"
            ),
            OpfsError::WriteStalled { offset, wanted, written } => write!(
                f,
                "write at offset {offset} stalled after {written} of {wanted} bytes"
            ),
            OpfsError::Dom { op, kind, name, message } => write!(
                f,
                "{} failed: {} ({}: {})",
                op.js_name(),
                kind.meaning(),
                if name.is_empty() { "error" } else { name.as_str() },
                message
            ),
        }
    }
}

impl core::error::Error for OpfsError {}

/// Lets `?` turn an [`OpfsError`] into the crate's error: a lock becomes
/// [`crate::Error::Locked`], a used-up quota [`crate::Error::Full`], anything
/// else [`crate::Error::Device`].
impl From<OpfsError> for crate::Error<OpfsError> {
    fn from(e: OpfsError) -> Self {
        match e {
            OpfsError::Locked { what } => crate::Error::Locked { what },
            OpfsError::QuotaExceeded => crate::Error::Full,
            e => crate::Error::Device(e),
        }
    }
}

/// Checks that this code runs in a dedicated worker, the only place with
/// sync access handles. Returns [`OpfsError::NotInDedicatedWorker`] naming
/// the scope found otherwise (for example `"Window"` on the main thread).
pub fn check_dedicated_worker() -> Result<DedicatedWorkerGlobalScope, OpfsError> {
    let global = js_sys::global();
    if let Some(scope) = global.dyn_ref::<DedicatedWorkerGlobalScope>() {
        return Ok(scope.clone());
    }
    let found = Reflect::get(&global, &JsValue::from_str("constructor"))
        .ok()
        .and_then(|c| Reflect::get(&c, &JsValue::from_str("name")).ok())
        .and_then(|n| n.as_string())
        .unwrap_or_default();
    // A scope named like a dedicated worker that is not one (a realm oddity)
    // still cannot open a handle: say so rather than returning `Ok`.
    Err(OpfsError::for_global_scope(&found).unwrap_or(OpfsError::NotInDedicatedWorker { found }))
}

fn has(target: &JsValue, key: &str) -> bool {
    target.is_object() && Reflect::has(target, &JsValue::from_str(key)).unwrap_or(false)
}

async fn resolve(op: OpfsOp, promise: js_sys::Promise) -> Result<JsValue, OpfsError> {
    JsFuture::from(promise)
        .await
        .map_err(|e| OpfsError::from_js(op, &e))
}

fn cast<T: JsCast>(op: OpfsOp, value: JsValue) -> Result<T, OpfsError> {
    value.dyn_into::<T>().map_err(|_| OpfsError::Dom {
        op,
        kind: DomErrorKind::Other,
        name: String::new(),
        message: String::from("the browser returned a value of an unexpected type"),
    })
}

/// A block device over one OPFS file, held through an exclusive
/// `FileSystemSyncAccessHandle` (see the [module docs](self)).
#[derive(Debug)]
pub struct OpfsDevice {
    handle: FileSystemSyncAccessHandle,
    /// Reused for every read and write (only `at` changes).
    options: FileSystemReadWriteOptions,
    block_size: u32,
    block_count: u32,
    closed: bool,
}

impl OpfsDevice {
    /// Opens (creating them if needed) the directory `dir_name` in the
    /// origin's OPFS root and the file `file_name` in it, and takes the
    /// file's sync access handle.
    ///
    /// Must run in a dedicated worker. Fails with [`OpfsError::Locked`] when
    /// another tab or worker has the file open, [`OpfsError::QuotaExceeded`]
    /// when a new file cannot get its [`INITIAL_BLOCKS`] blocks, and
    /// [`OpfsError::InvalidBlockSize`] for a block size the core cannot use.
    pub async fn open(
        dir_name: &str,
        file_name: &str,
        block_size: u32,
    ) -> Result<OpfsDevice, OpfsError> {
        let probe = Geometry {
            block_size,
            program_size: 1,
            block_count: 0,
            erase_value: None,
        };
        probe
            .validate()
            .map_err(|why| OpfsError::InvalidBlockSize { block_size, why })?;
        let scope = check_dedicated_worker()?;

        let navigator = scope.navigator();
        let storage = Reflect::get(&navigator, &JsValue::from_str("storage")).unwrap_or_default();
        if !has(&storage, "getDirectory") {
            return Err(OpfsError::Unsupported(
                "navigator.storage.getDirectory is missing: OPFS needs a secure context \
                 (https or localhost) and a browser that supports it",
            ));
        }
        let root = resolve(OpfsOp::GetRoot, scope.navigator().storage().get_directory()).await?;
        let root: FileSystemDirectoryHandle = cast(OpfsOp::GetRoot, root)?;

        let dir_options = FileSystemGetDirectoryOptions::new();
        dir_options.set_create(true);
        let dir = root.get_directory_handle_with_options(dir_name, &dir_options);
        let dir: FileSystemDirectoryHandle = cast(
            OpfsOp::OpenDirectory,
            resolve(OpfsOp::OpenDirectory, dir).await?,
        )?;

        let file_options = FileSystemGetFileOptions::new();
        file_options.set_create(true);
        let file = dir.get_file_handle_with_options(file_name, &file_options);
        let file: FileSystemFileHandle =
            cast(OpfsOp::OpenFile, resolve(OpfsOp::OpenFile, file).await?)?;

        if !has(&file, "createSyncAccessHandle") {
            return Err(OpfsError::Unsupported(
                "FileSystemFileHandle.createSyncAccessHandle is missing in this browser",
            ));
        }
        let op = OpfsOp::CreateSyncAccessHandle;
        let handle = resolve(op, file.create_sync_access_handle())
            .await
            .map_err(|e| match e {
                OpfsError::Locked { .. } => OpfsError::Locked {
                    what: format!("the OPFS file \"{dir_name}/{file_name}\""),
                },
                e => e,
            })?;
        let handle: FileSystemSyncAccessHandle = cast(op, handle)?;

        // From here on the device owns the handle: an early return closes it.
        let mut device = OpfsDevice {
            handle,
            options: FileSystemReadWriteOptions::new(),
            block_size,
            block_count: 0,
            closed: false,
        };
        let size = device.file_size()?;
        device.block_count = u32::try_from(size / u64::from(block_size)).unwrap_or(u32::MAX);
        if device.block_count < INITIAL_BLOCKS {
            let want = INITIAL_BLOCKS - device.block_count;
            if !device.grow(want)? {
                return Err(OpfsError::QuotaExceeded);
            }
        }
        Ok(device)
    }

    /// The file's current size in bytes (`getSize()`); may exceed the
    /// device's capacity by less than one block.
    pub fn file_size(&mut self) -> Result<u64, OpfsError> {
        let size = self
            .handle
            .get_size()
            .map_err(|e| OpfsError::from_js(OpfsOp::GetSize, &e))?;
        // A size is a non-negative integer below 2^53; anything else is a
        // browser oddity and counts as an empty file.
        if size.is_finite() && size >= 0.0 {
            Ok(size as u64)
        } else {
            Ok(0)
        }
    }

    /// Flushes, then closes the handle, releasing the file for other tabs
    /// and workers. Returns the flush's result: `Ok` means everything
    /// written is durable. (Dropping the device also flushes and closes, but
    /// cannot report a failure.)
    pub fn close(mut self) -> Result<(), OpfsError> {
        self.closed = true;
        let flushed = self
            .handle
            .flush()
            .map_err(|e| OpfsError::from_js(OpfsOp::Flush, &e));
        self.handle.close();
        flushed
    }

    fn check(&self, offset: u64, len: usize) -> Result<(), OpfsError> {
        let end = offset.checked_add(len as u64);
        match end {
            Some(end) if end <= MAX_OFFSET => {}
            _ => return Err(OpfsError::OffsetTooLarge { offset, len }),
        }
        let capacity = self.geometry().capacity();
        if end.is_some_and(|end| end > capacity) {
            return Err(OpfsError::OutOfBounds {
                offset,
                len,
                capacity,
            });
        }
        Ok(())
    }
}

/// A returned byte count as `usize`, clamped to `0..=max` (NaN counts as 0).
fn count(n: f64, max: usize) -> usize {
    if n.is_finite() && n > 0.0 {
        (n as usize).min(max)
    } else {
        0
    }
}

impl BlockDevice for OpfsDevice {
    type Error = OpfsError;

    fn geometry(&self) -> Geometry {
        Geometry {
            block_size: self.block_size,
            program_size: 1,
            block_count: self.block_count,
            erase_value: None,
        }
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), OpfsError> {
        self.check(offset, buf.len())?;
        let wanted = buf.len();
        let mut done = 0;
        while done < wanted {
            self.options.set_at((offset + done as u64) as f64);
            let n = self
                .handle
                .read_with_u8_array_and_options(&mut buf[done..], &self.options)
                .map_err(|e| OpfsError::from_js(OpfsOp::Read, &e))?;
            let n = count(n, wanted - done);
            if n == 0 {
                return Err(OpfsError::UnexpectedEof {
                    offset,
                    wanted,
                    got: done,
                });
            }
            done += n;
        }
        Ok(())
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), OpfsError> {
        self.check(offset, data.len())?;
        let wanted = data.len();
        let mut done = 0;
        while done < wanted {
            self.options.set_at((offset + done as u64) as f64);
            let n = self
                .handle
                .write_with_u8_array_and_options(&data[done..], &self.options)
                .map_err(|e| OpfsError::from_js(OpfsOp::Write, &e))?;
            let n = count(n, wanted - done);
            if n == 0 {
                return Err(OpfsError::WriteStalled {
                    offset,
                    wanted,
                    written: done,
                });
            }
            done += n;
        }
        Ok(())
    }

    fn erase(&mut self, block: u32) -> Result<(), OpfsError> {
        if block >= self.block_count {
            let offset = self.geometry().block_offset(block);
            let capacity = self.geometry().capacity();
            return Err(OpfsError::OutOfBounds {
                offset,
                len: self.block_size as usize,
                capacity,
            });
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), OpfsError> {
        self.handle
            .flush()
            .map_err(|e| OpfsError::from_js(OpfsOp::Flush, &e))
    }

    fn grow(&mut self, blocks: u32) -> Result<bool, OpfsError> {
        let Some(count) = self.block_count.checked_add(blocks) else {
            return Ok(false);
        };
        let new_size = u64::from(count) * u64::from(self.block_size);
        if new_size > MAX_OFFSET {
            return Ok(false);
        }
        let old_size = self.file_size()?;
        match self.handle.truncate_with_f64(new_size as f64) {
            Ok(()) => {
                self.block_count = count;
                Ok(true)
            }
            Err(e) => match OpfsError::from_js(OpfsOp::Truncate, &e) {
                OpfsError::QuotaExceeded => {
                    // Keep the file as it was: should the browser have
                    // changed its size anyway, put the old size back.
                    if self.file_size()? != old_size {
                        self.handle
                            .truncate_with_f64(old_size as f64)
                            .map_err(|e| OpfsError::from_js(OpfsOp::Truncate, &e))?;
                    }
                    Ok(false)
                }
                other => Err(other),
            },
        }
    }
}

impl Drop for OpfsDevice {
    fn drop(&mut self) {
        if !self.closed {
            self.closed = true;
            // `close()` does not flush; failures here cannot be reported
            // (call `close` to see them).
            let _ = self.handle.flush();
            self.handle.close();
        }
    }
}
