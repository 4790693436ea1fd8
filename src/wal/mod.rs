//! `Wal<D>`: the Raft log API over a block device.
//!
//! The type and its public API live here; the parts it is built from each
//! have a file: `head` (the open block: write buffer, room, record
//! encoding), `write` (placing entries, opening and sealing blocks),
//! `alloc` (free blocks and the reserve), `read` (reads and iterators),
//! `metadata` (the key/value API and meta blocks), `io` (every device call,
//! poisoning, the failed-sync take-back), `options` (`WalOptions`).

mod alloc;
mod head;
mod io;
mod metadata;
mod options;
mod read;
mod write;

use ::alloc::collections::VecDeque;
use ::alloc::vec::Vec;
use core::cell::RefCell;

use crate::device::{BlockDevice, Geometry};
use crate::format::{self, BlockHeader, Kind, REC_LEN};
use crate::index::{Loc, LogBlock, TailCache};
use crate::meta::MetaMap;
use crate::recovery::{self, MetaBlock, RecoveryMode, RecoveryReport};
use crate::Error;

use self::alloc::{Alloc, KEEP_FOR_COMPACT, MIN_BLOCKS};
use self::head::Head;
pub use self::options::WalOptions;
#[cfg(feature = "openraft")]
pub(crate) use self::read::half_open;
pub use self::read::{Entry, Iter, TryIter};

/// Smallest fragment the writer splits an entry into (besides `P`).
const MIN_FRAG: usize = 64;

/// A Raft log over a [`BlockDevice`]. See the crate docs for the contract.
pub struct Wal<D: BlockDevice> {
    /// The device. A `RefCell` because reads go through `&self` and still
    /// need `&mut` for `BlockDevice::read`.
    dev: RefCell<D>,
    /// The device's geometry, kept current when the device grows.
    geo: Geometry,
    /// The program unit in bytes: records and summaries are padded to it.
    p: usize,
    /// Bytes of a block's header area (the header padded to `p`).
    hdr: usize,
    /// The options the log was opened with.
    opts: WalOptions,
    /// Which blocks are in use (see `alloc`).
    alloc: Alloc,
    /// The `seq` the next block header gets (one above every header seen).
    next_seq: u64,
    /// The live chain of log blocks, oldest first; the last is the head.
    blocks: VecDeque<LogBlock>,
    /// The write side of the head block.
    head: Head,
    /// The highest compaction point written: no entry below it survives.
    floor: u64,
    /// The first index (for an empty log, the next one).
    first: u64,
    /// The index the next append must use; `None` for a new log (any).
    next: Option<u64>,
    /// Recent entries, so reads of the tail need no device read.
    cache: TailCache,
    /// The durable key/value map.
    meta: MetaMap,
    /// The current meta block, if one was written.
    meta_block: Option<MetaBlock>,
    /// A write failed: what is durable is unknown, so writes refuse until
    /// the log is reopened.
    poisoned: bool,
    /// Byte ranges programmed since the last good sync (devices without an
    /// erase value; block headers excluded): what a failed sync may have
    /// dropped (see `io::sync_failed`).
    undurable: Vec<(u64, usize)>,
    /// A log block header whose sync has not completed (same devices).
    undurable_header: Option<(u64, BlockHeader)>,
    /// A failed sync took data back: reads refuse (`Poisoned`).
    taken_back: bool,
    /// The last read error swallowed by `get`, `read_range` or `iter`
    /// (see [`Wal::take_read_error`]).
    read_error: RefCell<Option<Error<D::Error>>>,
    /// What opening found and dropped.
    report: RecoveryReport,
}

type Res<T, D> = Result<T, Error<<D as BlockDevice>::Error>>;

impl<D: BlockDevice> Wal<D> {
    /// Opens the log on `device` (an erased or never-used device is an empty
    /// log) with default options.
    pub fn open(device: D) -> Res<Self, D> {
        Self::open_with(device, WalOptions::default())
    }

    /// Opens the log on `device` with `opts`, strictly: corruption is an
    /// [`Error::Corrupt`] naming block, offset and what.
    pub fn open_with(device: D, opts: WalOptions) -> Res<Self, D> {
        Self::open_mode(device, opts, RecoveryMode::Strict)
    }

    /// Opens the log on `device` with `opts` in `mode`. With
    /// [`RecoveryMode::Salvage`] the longest intact prefix is opened, the
    /// rest is cut off durably before this returns, and
    /// [`Wal::recovery_report`] says exactly what was dropped (what a
    /// `blockwal salvage` command calls).
    pub fn open_mode(mut device: D, opts: WalOptions, mode: RecoveryMode) -> Res<Self, D> {
        if mode == RecoveryMode::Salvage && !mode.salvaging() {
            return Err(Error::Unsupported(
                "salvage: build blockwal with the `salvage` feature",
            ));
        }
        let geo = device.geometry();
        geo.validate().map_err(Error::Geometry)?;
        let p = geo.program_size as usize;
        let hdr = recovery::header_area(&geo);
        // A fresh block takes a header, a one-entry summary and a fragment
        // of the smallest size the writer splits at: every entry can be
        // placed, and `write_entry` never opens a block it cannot use.
        if hdr + format::summary_len(1, p) + format::round_up(REC_LEN + MIN_FRAG.max(p), p)
            > geo.block_size as usize
        {
            return Err(Error::Geometry("block_size too small for program_size"));
        }
        // See `MIN_BLOCKS`.
        if geo.block_count < MIN_BLOCKS
            && !device
                .grow(MIN_BLOCKS - geo.block_count)
                .map_err(Error::Device)?
        {
            return Err(Error::Geometry("a log needs at least 5 blocks"));
        }
        let r = recovery::open(&mut device, opts.read_window, mode)?;
        Self::from_recovered(device, opts, r)
    }

    /// The log over `device` as recovery found it (a function of its own:
    /// its frame, which holds the whole `Wal`, is not on the stack while
    /// recovery runs).
    #[inline(never)]
    fn from_recovered(device: D, opts: WalOptions, r: recovery::Recovered) -> Res<Self, D> {
        let geo = device.geometry();
        let p = geo.program_size as usize;
        let hdr = recovery::header_area(&geo);
        // Any salvage cut ends in a new head that outranks every block the
        // walk saw, even one it dropped on the way to the salvaged head.
        // Only salvage cuts (recovery refuses instead without the feature):
        // stated at compile time, so plain builds carry no cut handling.
        let salvage = cfg!(feature = "salvage");
        let (log_cut, meta_cut) = (
            salvage && (r.log_cut || r.report.salvaged()),
            salvage && r.meta_cut,
        );
        // The search for free blocks starts after the head (`Alloc::take`
        // wraps it round the device).
        let cursor = r.blocks.back().map_or(0, |b| b.block + 1);
        let mut wal = Wal {
            dev: RefCell::new(device),
            geo,
            p,
            hdr,
            opts,
            alloc: Alloc::new(r.used, cursor),
            next_seq: r.next_seq,
            blocks: r.blocks,
            floor: r.floor,
            first: r.first,
            next: r.next,
            head: Head::new(r.head_appendable, r.head_end),
            cache: TailCache::new(opts.cache_bytes, opts.cache_entries),
            meta: r.meta,
            meta_block: r.meta_block,
            poisoned: false,
            undurable: Vec::new(),
            undurable_header: None,
            taken_back: false,
            read_error: RefCell::new(None),
            report: r.report,
        };
        // Appends resume at the end of an appendable head's records.
        match wal.blocks.back() {
            Some(LogBlock {
                block,
                loc: Loc::Mem(m),
                ..
            }) if wal.head.open => {
                wal.head.at = wal.geo.block_offset(*block) + u64::from(m.end);
            }
            _ => wal.head.open = false,
        }
        // Salvage: make the cut durable before anything else happens: the
        // damaged headers it ignored scrubbed (a strict open would still
        // see them), a new head linked to the salvaged one at its end, a
        // fresh meta snapshot.
        // (Compiled out without the feature: no cut is ever recorded then.)
        #[cfg(feature = "salvage")]
        {
            let damaged: Vec<u32> = wal
                .report
                .cuts
                .iter()
                .filter(|c| {
                    c.what == recovery::DAMAGED_LOG_HEADER
                        || c.what == recovery::DAMAGED_META_HEADER
                })
                .map(|c| c.block)
                .collect();
            if !damaged.is_empty() {
                wal.scrub_headers(&damaged)?;
            }
        }
        if log_cut {
            if let Some(next) = wal.next {
                wal.head.open = false;
                wal.open_block(next, false, 0)?;
            }
        }
        if meta_cut {
            wal.meta_snapshot()?;
        }
        Ok(wal)
    }

    /// What opening found and dropped (torn bytes, blocks scanned, and in
    /// salvage mode what was cut off).
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// Gives the device back. Nothing is flushed: call [`Wal::sync`] first.
    pub fn into_device(self) -> D {
        self.dev.into_inner()
    }

    /// The device's geometry.
    #[must_use]
    pub fn geometry(&self) -> Geometry {
        self.geo
    }

    // ----- appending -------------------------------------------------------

    /// Appends one entry. It is readable at once and durable after [`Wal::sync`].
    /// An empty log accepts any index; then each index must follow the last.
    pub fn append(&mut self, index: u64, data: &[u8]) -> Res<(), D> {
        self.append_one(index, data, false)?;
        if self.head.buf.len() >= self.opts.write_buffer {
            self.flush()?;
        }
        Ok(())
    }

    /// `append` without programming a full write buffer; `reserved`: the
    /// blocks it needs are already free (a batch reserved them).
    #[inline]
    pub(super) fn append_one(&mut self, index: u64, data: &[u8], reserved: bool) -> Res<(), D> {
        self.writable()?;
        self.check_next(index)?;
        if !self.append_in_head(index, data) {
            if !reserved {
                self.reserve_entry(data.len())?;
            }
            self.write_entry(index, data)?;
        }
        if self.is_empty() {
            self.first = index;
        }
        self.next = Some(index + 1);
        self.cache.push(index, data);
        Ok(())
    }

    /// Appends entries in order (each index following the previous), all or
    /// nothing: if the indices are not contiguous, an entry is too large or
    /// the space for the whole batch cannot be found (`Full`), nothing is
    /// appended. (A device failure while writing poisons the log as usual.)
    pub fn append_batch<V: AsRef<[u8]>>(&mut self, entries: &[(u64, V)]) -> Res<(), D> {
        self.writable()?;
        if let Some((i, _)) = entries.first() {
            self.check_next(*i)?;
        }
        for w in entries.windows(2) {
            if w[1].0 != w[0].0.wrapping_add(1) || w[1].0 == u64::MAX {
                return Err(Error::NonContiguous {
                    expected: w[0].0.wrapping_add(1),
                    got: w[1].0,
                });
            }
        }
        // Every block the batch takes is found before anything is written.
        let need = self.batch_blocks(entries.iter().map(|(_, v)| v.as_ref().len()));
        self.check_seq(need)?;
        if need > 0 {
            if let Err(e) = self.ensure_free(need, self.entry_keep()) {
                let too = entries
                    .iter()
                    .map(|(_, v)| v.as_ref().len())
                    .find_map(|len| self.too_large(len, self.blocks_for(len)));
                return Err(match e {
                    Error::Full => too.unwrap_or(Error::Full),
                    e => e,
                });
            }
        }
        // The batch goes out in one write at the next sync (or when it
        // outgrows four write buffers: memory stays bounded).
        for (i, v) in entries {
            self.append_one(*i, v.as_ref(), true)?;
            if self.head.buf.len() >= self.opts.write_buffer.saturating_mul(4) {
                self.flush()?;
            }
        }
        if self.head.buf.len() >= self.opts.write_buffer {
            self.flush()?;
        }
        Ok(())
    }

    /// `NonContiguous` unless `index` is the next one (any for a new log;
    /// never `u64::MAX`, which would leave no next index).
    pub(super) fn check_next(&self, index: u64) -> Res<(), D> {
        match self.next {
            Some(n) if n != index => Err(Error::NonContiguous {
                expected: n,
                got: index,
            }),
            _ if index == u64::MAX => Err(Error::NonContiguous {
                expected: self.next.unwrap_or(0),
                got: index,
            }),
            _ => Ok(()),
        }
    }

    /// `Poisoned` once a write failed: what is durable is unknown.
    pub(super) fn writable(&self) -> Res<(), D> {
        if self.poisoned {
            Err(Error::Poisoned)
        } else {
            Ok(())
        }
    }

    /// Programs buffered records without waiting for durability.
    pub fn flush(&mut self) -> Res<(), D> {
        self.writable()?;
        if self.head.buf.is_empty() {
            return Ok(());
        }
        let wbuf = core::mem::take(&mut self.head.buf);
        let r = self.dev_program(self.head.at, &wbuf);
        self.head.buf = wbuf;
        r?;
        self.head.at += self.head.buf.len() as u64;
        self.head.buf.clear();
        Ok(())
    }

    /// Makes everything appended so far durable with one device sync (group
    /// commit). A failure poisons the log: reopen it to see what is durable
    /// (what this sync should have made durable is taken back first, so a
    /// reopened log never builds on it).
    pub fn sync(&mut self) -> Res<(), D> {
        self.flush()?;
        self.dev_sync()?;
        self.head.synced = true;
        Ok(())
    }

    // ----- truncate / compact ----------------------------------------------

    /// Removes entries `from..` (durable on return). Out of range: no-op.
    pub fn truncate(&mut self, from: u64) -> Res<(), D> {
        self.writable()?;
        let Some(next) = self.next else { return Ok(()) };
        if self.is_empty() || from >= next {
            return Ok(());
        }
        let from = from.max(self.first);
        self.control_record(Kind::Truncate, from, KEEP_FOR_COMPACT)?;
        let m = self.head_mem();
        let first = m.next - m.offsets.len() as u64;
        m.offsets.truncate(from.saturating_sub(first) as usize);
        m.next = from;
        m.low = m.low.min(from);
        m.tail_open = false;
        for b in self.blocks.iter_mut() {
            b.clip(from);
        }
        self.head_view();
        self.next = Some(from);
        self.cache.truncate(from);
        Ok(())
    }

    /// Removes entries `..=up_to` (durable on return) and frees whole blocks.
    /// `up_to >= last_index` empties the log and makes `up_to + 1` the next
    /// index (installing a snapshot). Below the first index: no-op.
    pub fn compact(&mut self, up_to: u64) -> Res<(), D> {
        self.writable()?;
        let floor = up_to.saturating_add(1).min(u64::MAX - 1);
        let next = self.next.unwrap_or(0);
        let moves = floor > self.first || self.next.is_none();
        if !moves || (self.is_empty() && self.next.is_some() && floor <= next) {
            return Ok(());
        }
        // A compaction that frees a block may take the last free one (it
        // gives one back); any other keeps one for the next compaction.
        let frees = self
            .blocks
            .front()
            .is_some_and(|b| b.end() <= self.floor.max(floor));
        let keep = if frees { 0 } else { KEEP_FOR_COMPACT };
        if self.next.is_none() {
            self.open_block(floor, false, keep)?;
            self.next = Some(floor);
        }
        self.control_record(Kind::Compact, floor, keep)?;
        self.floor = self.floor.max(floor);
        let floor = self.floor;
        let m = self.head_mem();
        m.floor = m.floor.max(floor);
        if floor > m.next {
            m.offsets.clear();
            m.next = floor;
        }
        self.head_view();
        if floor > next {
            self.next = Some(floor);
        }
        self.first = self.first.max(floor);
        while self.blocks.len() > 1 && self.blocks[0].end() <= floor {
            if let Some(b) = self.blocks.pop_front() {
                self.alloc.release(b.block);
            }
        }
        self.cache.compact(floor);
        Ok(())
    }

    // ----- the log's range and memory ---------------------------------------

    /// True when the log holds no entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.next.is_none_or(|n| self.first >= n)
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        if self.is_empty() {
            0
        } else {
            (self.next.unwrap_or(0) - self.first) as usize
        }
    }

    /// Index of the first entry, if any.
    #[must_use]
    pub fn first_index(&self) -> Option<u64> {
        (!self.is_empty()).then_some(self.first)
    }

    /// Index of the last entry, if any.
    #[must_use]
    pub fn last_index(&self) -> Option<u64> {
        (!self.is_empty()).then(|| self.next.unwrap_or(1) - 1)
    }

    /// The index the next `append` must use (`None`: any, the log is new).
    #[must_use]
    pub fn next_index(&self) -> Option<u64> {
        self.next
    }

    /// Bytes of memory the log holds (cache, index, buffers, metadata).
    #[must_use]
    pub fn estimated_memory(&self) -> usize {
        let blocks = self.blocks.capacity() * core::mem::size_of::<LogBlock>()
            + self
                .blocks
                .iter()
                .map(|b| {
                    if let Loc::Mem(m) = &b.loc {
                        m.offsets.capacity() * 4
                    } else {
                        0
                    }
                })
                .sum::<usize>();
        let meta = self
            .meta
            .iter()
            .map(|(k, v)| k.capacity() + v.capacity() + 48)
            .sum::<usize>();
        core::mem::size_of::<Self>()
            + self.cache.memory()
            + blocks
            + meta
            + self.alloc.memory()
            + self.head.buf.capacity()
    }

    /// Bounds the tail cache to `n` entries.
    pub fn set_max_cache_entries(&mut self, n: usize) {
        self.cache.set_limits(self.cache.max_bytes, n);
    }

    /// Bounds the tail cache to `bytes` bytes of entries.
    pub fn set_max_cache_bytes(&mut self, bytes: usize) {
        self.cache.set_limits(bytes, self.cache.max_entries);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::mem::MemDevice;

    /// Issue 10: `next_seq += 1` in `open_block` overflowed on an image
    /// whose newest seq was 2^64 - 2 (in release the seq wrapped to 0 and
    /// every later open failed). Exhaustion is now a typed error with
    /// nothing written, and the log still opens with everything it held.
    #[test]
    fn regression_seq_exhaustion_is_a_typed_error() {
        let mut w = Wal::open(MemDevice::new(256, 8, 64)).unwrap();
        w.next_seq = format::SEQ_LIMIT - 9;
        let mut i = 1u64;
        let err = loop {
            match w.append(i, &[7; 40]) {
                Ok(()) => i += 1,
                Err(e) => break e,
            }
            assert!(i < 100, "never exhausted");
        };
        assert_eq!(err, Error::SeqExhausted);
        assert!(i > 4, "{i}");
        assert_eq!(
            w.next_index(),
            Some(i),
            "the refused entry is not in the log"
        );
        w.sync().unwrap();
        let mut w = Wal::open(w.into_device()).unwrap();
        assert_eq!(w.last_index(), Some(i - 1));
        assert_eq!(w.get(1).as_deref(), Some(&[7u8; 40][..]));
        assert!(matches!(w.append(i, &[1; 300]), Err(Error::SeqExhausted)));
    }
}
