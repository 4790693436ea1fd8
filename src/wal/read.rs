//! The read path: entries from the tail cache, else from the device (the
//! index finds the block, its offsets or summary table the record), and the
//! iterators.

use alloc::borrow::Cow;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::{Bound, RangeBounds};

use super::{Res, Wal};
use crate::device::BlockDevice;
use crate::format::{self, Kind, RecHeader, REC_LEN};
use crate::index::{self, Loc, LogBlock};
use crate::Error;

/// An entry yielded by [`Wal::iter`] and [`Wal::iter_range`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Its log index.
    pub index: u64,
    /// Its bytes (borrowed from the cache, or read from the device).
    pub data: Cow<'a, [u8]>,
}

impl<D: BlockDevice> Wal<D> {
    /// An entry, or `None` if it is not in the log; errors are returned.
    #[must_use = "the entry or the read error is the point of the call"]
    pub fn try_get(&self, index: u64) -> Res<Option<Cow<'_, [u8]>>, D> {
        if self.taken_back {
            return Err(Error::Poisoned);
        }
        if self.is_empty() || index < self.first || Some(index) >= self.next {
            return Ok(None);
        }
        if let Some(d) = self.cache.get(index) {
            return Ok(Some(Cow::Borrowed(d)));
        }
        self.read_entry(index).map(|v| Some(Cow::Owned(v)))
    }

    /// An entry, or `None` if it is not in the log. A porting helper shaped
    /// like raft-wal's `get`: a device or corruption error also gives `None`
    /// and is kept for [`Wal::take_read_error`]; prefer [`Wal::try_get`].
    #[must_use]
    pub fn get(&self, index: u64) -> Option<Cow<'_, [u8]>> {
        self.try_get(index).unwrap_or_else(|e| {
            *self.read_error.borrow_mut() = Some(e);
            None
        })
    }

    /// The last read error swallowed by `get`, `read_range` or `iter`.
    #[must_use]
    pub fn take_read_error(&self) -> Option<Error<D::Error>> {
        self.read_error.borrow_mut().take()
    }

    /// Entries in `range` that are in the log, in order. A porting helper
    /// shaped like raft-wal's: a read error cuts the result short (it is
    /// kept for [`Wal::take_read_error`]); prefer [`Wal::try_read_range`].
    #[must_use]
    pub fn read_range(&self, range: impl RangeBounds<u64>) -> Vec<(u64, Vec<u8>)> {
        self.iter_range(range)
            .map(|e| (e.index, e.data.into_owned()))
            .collect()
    }

    /// Like [`Wal::read_range`], returning the first error.
    #[must_use = "the entries or the read error are the point of the call"]
    pub fn try_read_range(&self, range: impl RangeBounds<u64>) -> Res<Vec<(u64, Vec<u8>)>, D> {
        let (lo, hi) = self.clamp(range);
        (lo..hi)
            .map(|i| {
                self.try_get(i)
                    .map(|d| (i, d.map(|d| d.into_owned()).unwrap_or_default()))
            })
            .collect()
    }

    /// Iterates over all entries. A porting helper shaped like raft-wal's:
    /// a read error silently ends the iteration (it is kept for
    /// [`Wal::take_read_error`]); prefer [`Wal::try_iter`].
    #[must_use]
    pub fn iter(&self) -> Iter<'_, D> {
        self.iter_range(..)
    }

    /// Iterates over all entries, yielding a read error (device failure,
    /// corruption) as an item; the iteration ends after it.
    #[must_use]
    pub fn try_iter(&self) -> TryIter<'_, D> {
        self.try_iter_range(..)
    }

    /// [`Wal::try_iter`] over the entries in `range`.
    #[must_use]
    pub fn try_iter_range(&self, range: impl RangeBounds<u64>) -> TryIter<'_, D> {
        let (next, end) = self.clamp(range);
        TryIter {
            wal: self,
            next,
            end,
        }
    }

    /// Iterates over the entries in `range`. A porting helper: a read error
    /// ends the iteration early and is kept for [`Wal::take_read_error`];
    /// prefer [`Wal::try_iter_range`].
    #[must_use]
    pub fn iter_range(&self, range: impl RangeBounds<u64>) -> Iter<'_, D> {
        Iter(self.try_iter_range(range))
    }

    /// `range` cut to the log's entries, as `lo..hi`.
    fn clamp(&self, range: impl RangeBounds<u64>) -> (u64, u64) {
        if self.is_empty() {
            return (0, 0);
        }
        let (lo, hi) = half_open(&range);
        let next = self.next.unwrap_or(0);
        (lo.max(self.first), hi.min(next))
    }

    /// Bytes at device offset `off`, from the write buffer where they are
    /// not programmed yet.
    fn read_at(&self, off: u64, buf: &mut [u8]) -> Res<(), D> {
        let end = off + buf.len() as u64;
        let wb_end = self.head.at + self.head.buf.len() as u64;
        let split = if self.head.buf.is_empty() || end <= self.head.at || off >= wb_end {
            end
        } else {
            self.head.at.max(off)
        };
        let (dev_part, buf_part) = buf.split_at_mut((split - off) as usize);
        if !dev_part.is_empty() {
            self.dev_read(off, dev_part).map_err(Error::Device)?;
        }
        if !buf_part.is_empty() {
            let s = (split - self.head.at) as usize;
            buf_part.copy_from_slice(&self.head.buf[s..s + buf_part.len()]);
        }
        Ok(())
    }

    /// Reads one record at `off` in `blk`; `span_hint` bytes are read at
    /// once (one device read when the record's extent is known).
    fn read_record(
        &self,
        blk: &LogBlock,
        off: u32,
        span_hint: usize,
    ) -> Res<(Kind, u64, Vec<u8>), D> {
        let bad = |what| Error::Corrupt {
            block: blk.block,
            offset: off,
            what,
        };
        let bs = self.geo.block_size as usize;
        if (off as usize) < self.hdr || off as usize + REC_LEN > bs {
            return Err(bad("entry offset outside the block"));
        }
        let base = self.geo.block_offset(blk.block) + u64::from(off);
        let mut buf = vec![0u8; span_hint.clamp(REC_LEN, bs - off as usize)];
        self.read_at(base, &mut buf)?;
        let r = RecHeader::decode(&buf).ok_or_else(|| bad("unknown record kind"))?;
        if off as usize + REC_LEN + r.len > bs {
            return Err(bad("record runs past the block"));
        }
        if buf.len() < REC_LEN + r.len {
            let have = buf.len();
            buf.resize(REC_LEN + r.len, 0);
            self.read_at(base + have as u64, &mut buf[have..])?;
        }
        if !format::record_valid(blk.seq, &buf[..REC_LEN], &buf[REC_LEN..REC_LEN + r.len]) {
            return Err(bad("record checksum mismatch"));
        }
        buf.truncate(REC_LEN + r.len);
        buf.drain(..REC_LEN);
        Ok((r.kind, r.index, buf))
    }

    /// Start and end offsets of entry `k` of a block.
    fn entry_extent(&self, blk: &LogBlock, k: usize) -> Res<(u32, u32), D> {
        match &blk.loc {
            Loc::Mem(m) => {
                let start = m.offsets[k];
                let end = m.offsets.get(k + 1).copied().unwrap_or(m.end);
                Ok((start, end))
            }
            // A sealed block's records and summary are on the device, never
            // in the write buffer.
            Loc::Summary { disk_n, table } => {
                let dev = &mut *self.dev.borrow_mut();
                index::summary_extent(dev, &self.geo, blk, *disk_n, table, k)
            }
        }
    }

    /// An entry from the device: its first record where the index points,
    /// then any fragments from the start of the following blocks.
    fn read_entry(&self, index: u64) -> Res<Vec<u8>, D> {
        let pos = index::find(&self.blocks, index).ok_or(Error::Corrupt {
            block: 0,
            offset: 0,
            what: "entry missing from the index",
        })?;
        let blk = &self.blocks[pos];
        let (start, end) = self.entry_extent(blk, (index - blk.first) as usize)?;
        let hint = end.saturating_sub(start) as usize;
        let (kind, got, mut data) = self.read_record(blk, start, hint)?;
        let bad = |b: &LogBlock, what| Error::Corrupt {
            block: b.block,
            offset: start,
            what,
        };
        if got != index || !matches!(kind, Kind::Entry | Kind::First) {
            return Err(bad(
                blk,
                "record does not hold the entry the index points to",
            ));
        }
        let mut kind = kind;
        let mut pos = pos;
        while kind != Kind::Entry && kind != Kind::Last {
            pos += 1;
            let b = self
                .blocks
                .get(pos)
                .ok_or_else(|| bad(blk, "fragmented entry runs past the log"))?;
            let (k, i, part) = self.read_record(b, self.hdr as u32, 0)?;
            if i != index || !matches!(k, Kind::Middle | Kind::Last) {
                return Err(bad(b, "fragment missing"));
            }
            data.extend_from_slice(&part);
            kind = k;
        }
        Ok(data)
    }
}

/// `range` as `lo..hi` (saturating at the ends of `u64`).
pub(crate) fn half_open(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let lo = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let hi = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (lo, hi)
}

/// Iterator over entries yielding read errors; see [`Wal::try_iter`].
pub struct TryIter<'a, D: BlockDevice> {
    wal: &'a Wal<D>,
    next: u64,
    end: u64,
}

impl<'a, D: BlockDevice> Iterator for TryIter<'a, D> {
    type Item = Result<Entry<'a>, Error<D::Error>>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let index = self.next;
        match self.wal.try_get(index) {
            Ok(Some(data)) => {
                self.next += 1;
                Some(Ok(Entry { index, data }))
            }
            Ok(None) => None,
            Err(e) => {
                self.end = index;
                Some(Err(e))
            }
        }
    }
}

/// Iterator over entries; see [`Wal::iter_range`]: a [`TryIter`] that
/// keeps its error for [`Wal::take_read_error`] and ends there.
pub struct Iter<'a, D: BlockDevice>(TryIter<'a, D>);

impl<'a, D: BlockDevice> Iterator for Iter<'a, D> {
    type Item = Entry<'a>;
    fn next(&mut self) -> Option<Entry<'a>> {
        match self.0.next()? {
            Ok(e) => Some(e),
            Err(e) => {
                *self.0.wal.read_error.borrow_mut() = Some(e);
                None
            }
        }
    }
}
