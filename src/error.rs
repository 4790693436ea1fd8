//! The one error type of the crate, generic over the device's error.

use alloc::string::String;
use core::fmt;

use crate::meta::MAX_KEY_LEN;

/// Everything that can go wrong, each case saying what the caller can do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error<E> {
    /// The device failed; the operation did not take effect (or, for `sync`,
    /// durability is unknown and the log is now poisoned).
    Device(E),
    /// Device content is invalid where valid data was required.
    Corrupt {
        /// Block number.
        block: u32,
        /// Byte offset inside the block.
        offset: u32,
        /// What was wrong.
        what: &'static str,
    },
    /// No free block and the device cannot grow: compact the log or free space.
    Full,
    /// `append` got an index that does not follow the log.
    NonContiguous {
        /// The index the log accepts next.
        expected: u64,
        /// The index given.
        got: u64,
    },
    /// An entry longer than the log can ever hold.
    EntryTooLarge {
        /// Its length.
        len: usize,
        /// The longest entry this log accepts.
        max: usize,
    },
    /// A metadata key, value or map larger than the log can hold; nothing
    /// was written.
    MetaTooLarge {
        /// The length that is too large (key, value, or the whole map's
        /// snapshot, as `limit` says).
        len: usize,
        /// The most this log accepts for that length.
        max: usize,
        /// Which limit was hit.
        limit: MetaLimit,
    },
    /// Every sequence number was used: the device cannot open another
    /// block. Nothing was written; copy the log to a fresh device.
    SeqExhausted,
    /// Another owner (process, tab, worker) holds the log: close it there,
    /// or wait for that owner to exit.
    Locked {
        /// What is locked: the log file's path, or the OPFS directory and
        /// file names.
        what: String,
    },
    /// The device's geometry cannot hold a log, or does not match the log on it.
    Geometry(&'static str),
    /// A device failure left durability unknown; reopen the log to continue.
    Poisoned,
    /// This build lacks the capability the call needs (a cargo feature was
    /// left out, e.g. `salvage`); nothing was read or written. Rebuild with
    /// the feature named.
    Unsupported(&'static str),
}

/// Which metadata limit [`Error::MetaTooLarge`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaLimit {
    /// The key is longer than 255 bytes.
    Key,
    /// The value cannot fit even in a map holding only this key.
    Value,
    /// The whole map with this value would not fit in one meta block.
    Map,
}

impl fmt::Display for MetaLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MetaLimit::Key => "key",
            MetaLimit::Value => "value",
            MetaLimit::Map => "map (every key and value)",
        })
    }
}

impl<E> Error<E> {
    /// Maps the device error type (used by adapters that wrap another device).
    pub fn map_device<F>(self, f: impl FnOnce(E) -> F) -> Error<F> {
        match self {
            Error::Device(e) => Error::Device(f(e)),
            Error::Corrupt {
                block,
                offset,
                what,
            } => Error::Corrupt {
                block,
                offset,
                what,
            },
            Error::Full => Error::Full,
            Error::NonContiguous { expected, got } => Error::NonContiguous { expected, got },
            Error::EntryTooLarge { len, max } => Error::EntryTooLarge { len, max },
            Error::MetaTooLarge { len, max, limit } => Error::MetaTooLarge { len, max, limit },
            Error::SeqExhausted => Error::SeqExhausted,
            Error::Locked { what } => Error::Locked { what },
            Error::Geometry(w) => Error::Geometry(w),
            Error::Poisoned => Error::Poisoned,
            Error::Unsupported(w) => Error::Unsupported(w),
        }
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Device(e) => write!(f, "device error: {e}"),
            Error::Corrupt { block, offset, what } => write!(
                f,
                "corrupt log: {what} (block {block}, offset {offset}); run `blockwal verify` for details"
            ),
            Error::Full => write!(f, "log is full: compact it, or give the device more space"),
            Error::NonContiguous { expected, got } => write!(
                f,
                "non-contiguous append: the log expects index {expected}, got {got}"
            ),
            Error::EntryTooLarge { len, max } => write!(
                f,
                "entry of {len} bytes is over this log's limit of {max} bytes: \
                 split it into smaller entries, or use a larger block size"
            ),
            Error::MetaTooLarge { len, max, limit } => write!(
                f,
                "metadata {limit} of {len} bytes is over this log's limit of {max} bytes: \
                 keys hold at most {MAX_KEY_LEN} bytes and all metadata must fit in one block; \
                 keep large values in log entries, or use a larger block size"
            ),
            Error::SeqExhausted => write!(
                f,
                "every block sequence number is used: copy the log to a fresh device"
            ),
            Error::Locked { what } => write!(
                f,
                "{what} is locked by another owner (process, tab or worker): close it there, \
                 or wait for that process to exit"
            ),
            Error::Geometry(w) => write!(f, "unusable geometry: {w}"),
            Error::Poisoned => write!(
                f,
                "log is poisoned after a failed device sync: reopen it to see what is durable"
            ),
            Error::Unsupported(w) => write!(f, "not in this build: {w}"),
        }
    }
}

/// `core::error::Error` (also `std::error::Error`, the same trait) with and
/// without `std`; [`Error::Device`] gives the device error as its `source`.
impl<E: core::error::Error + 'static> core::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Error::Device(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::mem::MemError;
    use alloc::string::ToString;
    use core::error::Error as _;

    #[test]
    fn device_errors_show_their_display_and_are_the_source() {
        let e: Error<MemError> = Error::Device(MemError::NoSpace);
        let shown = e.to_string();
        assert_eq!(shown, alloc::format!("device error: {}", MemError::NoSpace));
        assert!(
            !shown.contains("NoSpace"),
            "Debug leaked into Display: {shown}"
        );
        let src = e.source().expect("a device error has a source");
        assert_eq!(src.to_string(), MemError::NoSpace.to_string());
        assert!(Error::<MemError>::Full.source().is_none());
    }

    #[test]
    fn size_limits_say_the_limit_and_what_to_do() {
        let e = Error::<MemError>::EntryTooLarge {
            len: 5000,
            max: 4000,
        };
        let s = e.to_string();
        assert!(
            s.contains("5000") && s.contains("4000") && s.contains("split"),
            "{s}"
        );
        let e = Error::<MemError>::MetaTooLarge {
            len: 300,
            max: 255,
            limit: MetaLimit::Key,
        };
        let s = e.to_string();
        assert!(
            s.contains("key of 300") && s.contains("255") && s.contains("larger block"),
            "{s}"
        );
    }

    #[test]
    fn unsupported_names_what_is_missing() {
        let e = Error::<MemError>::Unsupported("salvage: build with the `salvage` feature");
        assert_eq!(
            e.to_string(),
            "not in this build: salvage: build with the `salvage` feature"
        );
        assert_eq!(
            e.clone().map_device(|_| ()),
            Error::<()>::Unsupported("salvage: build with the `salvage` feature")
        );
    }

    #[cfg(feature = "std")]
    #[test]
    fn io_errors_show_their_message_and_box_as_std_errors() {
        let io = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let msg = io.to_string();
        let e: Box<dyn std::error::Error> = Box::new(Error::Device(io));
        assert_eq!(e.to_string(), alloc::format!("device error: {msg}"));
        assert!(!e.to_string().contains("Os {"), "{e}");
        assert_eq!(e.source().map(|s| s.to_string()), Some(msg));
    }
}
