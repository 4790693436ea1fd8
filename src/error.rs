//! The one error type of the crate, generic over the device's error.

use core::fmt;

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
    /// Another owner (process, tab, worker) holds the log.
    Locked,
    /// The device's geometry cannot hold a log, or does not match the log on it.
    Geometry(&'static str),
    /// A device failure left durability unknown; reopen the log to continue.
    Poisoned,
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
            Error::Locked => Error::Locked,
            Error::Geometry(w) => Error::Geometry(w),
            Error::Poisoned => Error::Poisoned,
        }
    }
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Device(e) => write!(f, "device error: {e:?}"),
            Error::Corrupt { block, offset, what } => write!(
                f,
                "corrupt log: {what} (block {block}, offset {offset}); run `blockwal verify` for details"
            ),
            Error::Full => write!(f, "log is full: compact it, or give the device more space"),
            Error::NonContiguous { expected, got } => write!(
                f,
                "non-contiguous append: the log expects index {expected}, got {got}"
            ),
            Error::EntryTooLarge { len, max } => {
                write!(f, "entry of {len} bytes is larger than the {max} bytes this log accepts")
            }
            Error::MetaTooLarge { len, max, limit } => write!(
                f,
                "metadata {limit:?} of {len} bytes is larger than the {max} bytes allowed"
            ),
            Error::SeqExhausted => write!(
                f,
                "every block sequence number is used: copy the log to a fresh device"
            ),
            Error::Locked => write!(
                f,
                "log is locked by another owner (process, tab or worker): close it there first"
            ),
            Error::Geometry(w) => write!(f, "unusable geometry: {w}"),
            Error::Poisoned => write!(
                f,
                "log is poisoned after a failed device sync: reopen it to see what is durable"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl<E: fmt::Debug> std::error::Error for Error<E> {}
