//! `Wal<D>`: the Raft log API over a block device.

use alloc::borrow::Cow;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::ops::{Bound, RangeBounds};

use crate::device::{BlockDevice, Geometry};
use crate::error::MetaLimit;
use crate::format::{
    self, BlockHeader, Kind, RecHeader, FLAG_CONT, FLAG_TAIL_OPEN, KIND_LOG, KIND_META,
    MAX_REC_PAYLOAD, REC_LEN,
};
use crate::index::{self, Loc, LogBlock, MemBlock, TailCache};
use crate::meta::{self, MetaMap, MAX_KEY_LEN};
use crate::recovery::{self, MetaBlock, RecoveryMode, RecoveryReport};
use crate::Error;

/// Blocks appends leave free (one more until the first meta block exists):
/// after a reopen on files the head cannot be appended to, so a truncate,
/// compact or metadata snapshot needs a fresh block. Truncations and meta
/// snapshots take one only while another stays free ([`KEEP_FOR_COMPACT`]);
/// a compaction may take the last, so a full log can always be compacted
/// (FORMAT.md, "Space").
const RESERVE: u32 = 2;

/// Blocks a truncation or a metadata snapshot leaves free: the compaction's.
const KEEP_FOR_COMPACT: u32 = 1;

/// The smallest device a log opens on.
const MIN_BLOCKS: u32 = RESERVE + 3;

/// Control records an append leaves room for in the head once the reserve
/// has been dipped into.
const CONTROL_ROOM: usize = 2;

/// Smallest fragment the writer splits an entry into (besides `P`).
const MIN_FRAG: usize = 64;

/// Tuning knobs; [`WalOptions::default`] needs no changes for most uses.
///
/// Build it from [`WalOptions::default`] (or [`WalOptions::large`] /
/// [`WalOptions::small`]) and the builder methods, e.g.
/// `WalOptions::default().cache_bytes(1 << 20)`: fields may be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalOptions {
    /// Most bytes of recent entries kept in memory for reads.
    pub cache_bytes: usize,
    /// Most recent entries kept in memory for reads.
    pub cache_entries: usize,
    /// Appended bytes buffered before they are programmed without a sync.
    pub write_buffer: usize,
    /// Read-ahead window used when scanning blocks at open.
    pub read_window: usize,
    /// Most blocks added by one growth of a growable device.
    pub max_grow_blocks: u32,
}

impl WalOptions {
    /// Sized for servers, desktops and browsers: the `std` default.
    pub const fn large() -> Self {
        WalOptions {
            cache_bytes: 16 << 20,
            cache_entries: usize::MAX,
            write_buffer: 256 << 10,
            read_window: 64 << 10,
            max_grow_blocks: 64,
        }
    }

    /// Sized for microcontrollers: the default without `std`.
    pub const fn small() -> Self {
        WalOptions {
            cache_bytes: 2 << 10,
            cache_entries: 64,
            write_buffer: 1 << 10,
            read_window: 256,
            max_grow_blocks: 4,
        }
    }

    /// Sets [`WalOptions::cache_bytes`]: most bytes of recent entries kept in memory for reads.
    #[must_use]
    pub const fn cache_bytes(mut self, v: usize) -> Self {
        self.cache_bytes = v;
        self
    }

    /// Sets [`WalOptions::cache_entries`]: most recent entries kept in memory for reads.
    #[must_use]
    pub const fn cache_entries(mut self, v: usize) -> Self {
        self.cache_entries = v;
        self
    }

    /// Sets [`WalOptions::write_buffer`]: appended bytes buffered before they are programmed without a sync.
    #[must_use]
    pub const fn write_buffer(mut self, v: usize) -> Self {
        self.write_buffer = v;
        self
    }

    /// Sets [`WalOptions::read_window`]: read-ahead window used when scanning blocks at open.
    #[must_use]
    pub const fn read_window(mut self, v: usize) -> Self {
        self.read_window = v;
        self
    }

    /// Sets [`WalOptions::max_grow_blocks`]: most blocks added by one growth of a growable device.
    #[must_use]
    pub const fn max_grow_blocks(mut self, v: u32) -> Self {
        self.max_grow_blocks = v;
        self
    }
}

impl Default for WalOptions {
    fn default() -> Self {
        if cfg!(feature = "std") {
            Self::large()
        } else {
            Self::small()
        }
    }
}

/// An entry yielded by [`Wal::iter`] and [`Wal::iter_range`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Its log index.
    pub index: u64,
    /// Its bytes (borrowed from the cache, or read from the device).
    pub data: Cow<'a, [u8]>,
}

/// A Raft log over a [`BlockDevice`]. See the crate docs for the contract.
pub struct Wal<D: BlockDevice> {
    dev: RefCell<D>,
    geo: Geometry,
    p: usize,
    hdr: usize,
    opts: WalOptions,
    used: Vec<bool>,
    free: u32,
    cursor: u32,
    next_seq: u64,
    blocks: VecDeque<LogBlock>,
    head_open: bool,
    floor: u64,
    first: u64,
    next: Option<u64>,
    wbuf: Vec<u8>,
    wbuf_at: u64,
    cache: TailCache,
    meta: MetaMap,
    meta_block: Option<MetaBlock>,
    poisoned: bool,
    /// Byte ranges programmed since the last good sync (devices without an
    /// erase value; block headers excluded): what a failed sync may have
    /// dropped (see [`Wal::sync_failed`]).
    undurable: Vec<(u64, usize)>,
    /// A log block header whose sync has not completed (same devices).
    undurable_header: Option<(u64, BlockHeader)>,
    /// A failed sync took data back: reads refuse (`Poisoned`).
    taken_back: bool,
    read_error: RefCell<Option<Error<D::Error>>>,
    /// A sync covered every record of the head: the next record written
    /// into it carries `SYNCED` (FORMAT.md, "Records").
    head_synced: bool,
    /// Where the head's records end when the head is described by its
    /// summary (a salvaged head); Mem heads keep it in their replay state.
    head_end: u32,
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
        // The meta block, the head, the block it moves on to, and the
        // reserve (see `RESERVE`): fewer and a full log could never move on.
        if geo.block_count < MIN_BLOCKS
            && !device
                .grow(MIN_BLOCKS - geo.block_count)
                .map_err(Error::Device)?
        {
            return Err(Error::Geometry("a log needs at least 5 blocks"));
        }
        let geo = device.geometry();
        let r = recovery::open(&mut device, opts.read_window, mode)?;
        // Any salvage cut ends in a new head that outranks every block the
        // walk saw, even one it dropped on the way to the salvaged head.
        let (log_cut, meta_cut) = (r.log_cut || r.report.salvaged(), r.meta_cut);
        let free = r.used.iter().filter(|u| !**u).count() as u32;
        let cursor = r
            .blocks
            .back()
            .map_or(0, |b| (b.block + 1) % geo.block_count);
        let mut wal = Wal {
            dev: RefCell::new(device),
            geo,
            p,
            hdr,
            opts,
            used: r.used,
            free,
            cursor,
            next_seq: r.next_seq,
            head_open: r.head_appendable,
            blocks: r.blocks,
            floor: r.floor,
            first: r.first,
            next: r.next,
            wbuf: Vec::new(),
            wbuf_at: 0,
            cache: TailCache::new(opts.cache_bytes, opts.cache_entries),
            meta: r.meta,
            meta_block: r.meta_block,
            poisoned: false,
            undurable: Vec::new(),
            undurable_header: None,
            taken_back: false,
            read_error: RefCell::new(None),
            head_synced: false,
            head_end: r.head_end,
            report: r.report,
        };
        // Appends resume at the end of an appendable head's records.
        match wal.blocks.back() {
            Some(LogBlock {
                block,
                loc: Loc::Mem(m),
                ..
            }) if wal.head_open => {
                wal.wbuf_at = wal.geo.block_offset(*block) + u64::from(m.end);
            }
            _ => wal.head_open = false,
        }
        // Salvage: make the cut durable before anything else happens: the
        // damaged headers it ignored scrubbed (a strict open would still
        // see them), a new head linked to the salvaged one at its end, a
        // fresh meta snapshot.
        let damaged: Vec<u32> = wal
            .report
            .cuts
            .iter()
            .filter(|c| {
                c.what == recovery::DAMAGED_LOG_HEADER || c.what == recovery::DAMAGED_META_HEADER
            })
            .map(|c| c.block)
            .collect();
        if !damaged.is_empty() {
            wal.scrub_headers(&damaged)?;
        }
        if log_cut {
            if let Some(next) = wal.next {
                wal.head_open = false;
                wal.open_block(next, false, 0)?;
            }
        }
        if meta_cut {
            wal.meta_snapshot()?;
        }
        Ok(wal)
    }

    /// Salvage: makes the blocks whose damaged headers it ignored free for
    /// good (erased, or the header zeroed where erase does nothing), synced.
    fn scrub_headers(&mut self, blocks: &[u32]) -> Res<(), D> {
        let zeros = vec![0u8; self.hdr];
        for &b in blocks {
            let dev = self.dev.get_mut();
            let r = match self.geo.erase_value {
                Some(_) => dev.erase(b),
                None => dev.program(self.geo.block_offset(b), &zeros),
            };
            r.map_err(|e| self.poison(e))?;
        }
        self.dev_sync()
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
        if self.wbuf.len() >= self.opts.write_buffer {
            self.flush()?;
        }
        Ok(())
    }

    /// `append` without programming a full write buffer; `reserved`: the
    /// blocks it needs are already free (a batch reserved them).
    #[inline]
    fn append_one(&mut self, index: u64, data: &[u8], reserved: bool) -> Res<(), D> {
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
            if self.wbuf.len() >= self.opts.write_buffer.saturating_mul(4) {
                self.flush()?;
            }
        }
        if self.wbuf.len() >= self.opts.write_buffer {
            self.flush()?;
        }
        Ok(())
    }

    /// The common case of `write_entry`: the whole entry fits in the open
    /// head. Encodes it into the write buffer and updates the head's replay
    /// state; `false` (nothing done) otherwise.
    #[inline]
    fn append_in_head(&mut self, index: u64, data: &[u8]) -> bool {
        if !self.head_open {
            return false;
        }
        let (p, bs) = (self.p, self.geo.block_size as usize);
        let keep = if self.free < self.entry_keep() {
            CONTROL_ROOM * format::round_up(REC_LEN, p)
        } else {
            0
        };
        let Some(b) = self.blocks.back_mut() else {
            return false;
        };
        let Loc::Mem(m) = &mut b.loc else {
            return false;
        };
        let at = (self.wbuf_at + self.wbuf.len() as u64 - self.geo.block_offset(b.block)) as usize;
        let span = format::round_up(REC_LEN + data.len(), p);
        if at + span + keep + format::summary_len(m.offsets.len() + 1, p) > bs
            || data.len() > MAX_REC_PAYLOAD
        {
            return false;
        }
        let synced = core::mem::replace(&mut self.head_synced, false);
        format::push_record(
            &mut self.wbuf,
            p,
            b.seq,
            Kind::Entry,
            synced,
            index,
            &[data],
        );
        m.offsets.push(at as u32);
        m.next = index + 1;
        m.end = (at + span) as u32;
        m.tail_open = false;
        b.n = m.offsets.len() as u32;
        b.first = m.next - u64::from(b.n);
        true
    }

    /// Fresh blocks `write_entry` opens for entries of these lengths,
    /// appended one after the other from the current head: the same
    /// placement rules, played out without writing.
    fn batch_blocks(&self, lens: impl Iterator<Item = usize>) -> u32 {
        let (p, bs, hdr) = (self.p, self.geo.block_size as usize, self.hdr);
        let min_frag = MIN_FRAG.max(p);
        let payload = self.block_payload();
        let mut open = self.head_open;
        let mut cursor = if open { self.head_cursor() } else { 0 };
        let mut n = self.head_n();
        let mut keep = if self.free < self.entry_keep() {
            CONTROL_ROOM * format::round_up(REC_LEN, p)
        } else {
            0
        };
        let mut blocks = 0u32;
        let room = |open: bool, cursor: usize, n: usize, keep: usize| {
            if open {
                (bs - format::summary_len(n, p))
                    .saturating_sub(cursor)
                    .saturating_sub(keep)
            } else {
                0
            }
        };
        for len in lens {
            let span = format::round_up(REC_LEN + len, p);
            let mut avail = room(open, cursor, n + 1, keep);
            if span <= avail && len <= MAX_REC_PAYLOAD {
                cursor += span;
                n += 1;
                continue;
            }
            let small = span <= payload / 8;
            if !open || avail < REC_LEN + min_frag || small {
                blocks = blocks.saturating_add(1);
                (open, cursor, n, keep) = (true, hdr, 0, 0);
                avail = room(open, cursor, 1, keep);
            }
            let whole = span <= avail && len <= MAX_REC_PAYLOAD;
            let chunk = if whole {
                len
            } else {
                (avail - REC_LEN).min(MAX_REC_PAYLOAD)
            };
            cursor += format::round_up(REC_LEN + chunk, p);
            n += 1;
            let mut rest = len - chunk;
            while rest > 0 {
                blocks = blocks.saturating_add(1);
                (cursor, n, keep) = (hdr, 0, 0);
                let avail = room(true, cursor, 0, 0);
                let chunk = if REC_LEN + rest <= avail && rest <= MAX_REC_PAYLOAD {
                    rest
                } else {
                    (avail - REC_LEN).min(MAX_REC_PAYLOAD)
                };
                cursor += format::round_up(REC_LEN + chunk, p);
                rest -= chunk;
            }
        }
        blocks
    }

    fn check_next(&self, index: u64) -> Res<(), D> {
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

    /// Payload bytes one continuation block can carry.
    fn block_payload(&self) -> usize {
        let room =
            self.geo.block_size as usize - self.hdr - format::summary_len(0, self.p) - REC_LEN;
        (room & !(self.p - 1)).min(MAX_REC_PAYLOAD)
    }

    /// Makes sure enough blocks are free (growing the device if it can) for
    /// an entry of `len` bytes, so an entry is never left half-written for
    /// lack of space.
    fn reserve_entry(&mut self, len: usize) -> Res<(), D> {
        let fits = self.head_open
            && format::round_up(REC_LEN + len, self.p) <= self.entry_room(self.head_n() + 1);
        if fits {
            return Ok(());
        }
        let need = self.blocks_for(len);
        self.check_seq(need)?;
        match self.ensure_free(need, self.entry_keep()) {
            Err(Error::Full) => Err(self.too_large(len, need).unwrap_or(Error::Full)),
            r => r,
        }
    }

    /// `SeqExhausted` unless `blocks` more blocks (each possibly followed by
    /// a meta snapshot for wear levelling) can still get a sequence number:
    /// an entry is never cut short by exhaustion.
    fn check_seq(&self, blocks: u32) -> Res<(), D> {
        // Allocated seqs stay below `SEQ_LIMIT - 1`, the highest recovery
        // accepts and can still continue from.
        let left = (format::SEQ_LIMIT - 1).saturating_sub(self.next_seq);
        if left < 2 * u64::from(blocks) {
            return Err(Error::SeqExhausted);
        }
        Ok(())
    }

    /// Fresh blocks an entry of `len` bytes may take (its first fragment
    /// possibly in a block of its own); saturates for absurd lengths.
    fn blocks_for(&self, len: usize) -> u32 {
        let need = len.div_ceil(self.block_payload()) + 1;
        u32::try_from(need).unwrap_or(u32::MAX)
    }

    /// `EntryTooLarge` if `need` fresh blocks exceed what this device could
    /// ever give the log (every block but the meta block and the reserve),
    /// now that it cannot grow.
    fn too_large(&self, len: usize, need: u32) -> Option<Error<D::Error>> {
        let usable = self.geo.block_count.saturating_sub(RESERVE + 1);
        (need > usable).then(|| Error::EntryTooLarge {
            len,
            max: self.block_payload() * usable.saturating_sub(1) as usize,
        })
    }

    fn head_n(&self) -> usize {
        match self.blocks.back().map(|b| &b.loc) {
            Some(Loc::Mem(m)) => m.offsets.len(),
            _ => 0,
        }
    }

    /// Offset inside the head block where the next record goes.
    fn head_cursor(&self) -> usize {
        let b = self.blocks.back().map_or(0, |b| b.block);
        (self.wbuf_at + self.wbuf.len() as u64 - self.geo.block_offset(b)) as usize
    }

    /// Bytes left in the head for an entry's records if it will hold `n`
    /// entries: once the reserve was dipped into (a control record took a
    /// block), appends leave room for control records in the head.
    fn entry_room(&self, n: usize) -> usize {
        let keep = if self.free < self.entry_keep() {
            CONTROL_ROOM * format::round_up(REC_LEN, self.p)
        } else {
            0
        };
        self.room(n).saturating_sub(keep)
    }

    /// Free blocks appends leave: the reserve, and the first meta block's.
    fn entry_keep(&self) -> u32 {
        RESERVE + u32::from(self.meta_block.is_none())
    }

    /// Bytes left in the head for records if it will hold `n` entries.
    fn room(&self, n: usize) -> usize {
        if !self.head_open {
            return 0;
        }
        (self.geo.block_size as usize - format::summary_len(n, self.p))
            .saturating_sub(self.head_cursor())
    }

    fn head_mem(&mut self) -> &mut MemBlock {
        match self.blocks.back_mut().map(|b| &mut b.loc) {
            Some(Loc::Mem(m)) => m,
            _ => unreachable!("the open head always keeps its offsets in memory"),
        }
    }

    /// Re-derives the head's index view from its replay state.
    fn head_view(&mut self) {
        if let Some(b) = self.blocks.back_mut() {
            if let Loc::Mem(m) = &b.loc {
                b.n = m.offsets.len() as u32;
                b.first = m.next - u64::from(b.n);
            }
        }
    }

    fn push_rec(&mut self, kind: Kind, index: u64, payload: &[u8]) {
        let seq = self.blocks.back().map_or(0, |b| b.seq);
        let synced = core::mem::replace(&mut self.head_synced, false);
        format::push_record(&mut self.wbuf, self.p, seq, kind, synced, index, &[payload]);
    }

    fn write_entry(&mut self, index: u64, data: &[u8]) -> Res<(), D> {
        if !self.head_open {
            self.open_block(index, false, self.entry_keep())?;
        }
        let span = format::round_up(REC_LEN + data.len(), self.p);
        let mut avail = self.entry_room(self.head_n() + 1);
        let min_frag = MIN_FRAG.max(self.p);
        // Entries up to 1/8 of a block are never split: a fresh block costs
        // at most that much space, and an uncached read of the entry then
        // stays at two device reads (summary table, record). A fresh block
        // always takes at least a fragment (the geometry is checked at
        // open), so at most one block is opened here.
        let small = span <= self.block_payload() / 8;
        if span > avail && (avail < REC_LEN + min_frag || small) {
            self.open_block(index, false, self.entry_keep())?;
            avail = self.entry_room(1);
        }
        let at = self.head_cursor() as u32;
        // One record carries at most MAX_REC_PAYLOAD bytes (24-bit length).
        let whole = span <= avail && data.len() <= MAX_REC_PAYLOAD;
        let chunk = if whole {
            data.len()
        } else {
            (avail - REC_LEN).min(MAX_REC_PAYLOAD)
        };
        self.push_rec(
            if whole { Kind::Entry } else { Kind::First },
            index,
            &data[..chunk],
        );
        let end = self.head_cursor() as u32;
        let m = self.head_mem();
        m.offsets.push(at);
        m.next = index + 1;
        m.end = end;
        m.tail_open = !whole;
        self.head_view();
        let mut rest = &data[chunk..];
        while !rest.is_empty() {
            self.open_block(index + 1, true, self.entry_keep())?;
            let avail = self.room(0);
            let last = REC_LEN + rest.len() <= avail && rest.len() <= MAX_REC_PAYLOAD;
            let chunk = if last {
                rest.len()
            } else {
                (avail - REC_LEN).min(MAX_REC_PAYLOAD)
            };
            self.push_rec(
                if last { Kind::Last } else { Kind::Middle },
                index,
                &rest[..chunk],
            );
            rest = &rest[chunk..];
            let end = self.head_cursor() as u32;
            let m = self.head_mem();
            m.end = end;
            m.tail_open = !last;
            if self.wbuf.len() >= self.opts.write_buffer {
                self.flush()?;
            }
        }
        Ok(())
    }

    // ----- blocks ----------------------------------------------------------

    /// Makes `n` blocks free beyond `keep` more (the reserve appends leave,
    /// see [`RESERVE`]), growing the device when it can.
    fn ensure_free(&mut self, n: u32, keep: u32) -> Res<(), D> {
        let want = n.saturating_add(keep);
        if self.free >= want {
            return Ok(());
        }
        let short = want - self.free;
        let step = short.max((self.geo.block_count / 4).clamp(1, self.opts.max_grow_blocks.max(1)));
        for ask in [step, short] {
            let grown = self.dev.get_mut().grow(ask).map_err(Error::Device)?;
            if grown {
                let g = self.dev.get_mut().geometry();
                let added = g.block_count - self.geo.block_count;
                self.geo = g;
                self.used.resize(g.block_count as usize, false);
                self.free += added;
                if self.free >= want {
                    return Ok(());
                }
            }
        }
        Err(Error::Full)
    }

    /// Takes the next free block in round-robin order (wear levelling).
    fn alloc(&mut self, keep: u32) -> Res<u32, D> {
        self.ensure_free(1, keep)?;
        let count = self.geo.block_count;
        for k in 0..count {
            let b = (self.cursor + k) % count;
            if !self.used[b as usize] {
                self.used[b as usize] = true;
                self.free -= 1;
                self.cursor = (b + 1) % count;
                return Ok(b);
            }
        }
        Err(Error::Full)
    }

    fn release(&mut self, block: u32) {
        if !core::mem::replace(&mut self.used[block as usize], false) {
            return;
        }
        self.free += 1;
    }

    /// Erases a free block and makes a header durable in it (FORMAT.md,
    /// "Opening a block"): no record ever outlives its header.
    fn start_block(&mut self, h: &BlockHeader, keep: u32) -> Res<u32, D> {
        // Recovery refuses a header at the top of the seq space (nothing
        // could follow it): the writer stops below it, with nothing written.
        if h.seq >= format::SEQ_LIMIT - 1 {
            return Err(Error::SeqExhausted);
        }
        let block = self.alloc(keep)?;
        let mut buf = vec![0u8; self.hdr];
        buf[..format::HEADER_LEN].copy_from_slice(&h.encode());
        let off = self.geo.block_offset(block);
        let dev = self.dev.get_mut();
        let r = dev.erase(block).and_then(|_| dev.program(off, &buf));
        r.map_err(|e| self.poison(e))?;
        if self.geo.erase_value.is_none() && h.kind == KIND_LOG {
            self.undurable_header = Some((off, *h));
        }
        self.dev_sync()?;
        Ok(block)
    }

    /// Seals the head (if any) and opens a new head whose first entry will be
    /// `base`; `cont` when it begins with the rest of entry `base - 1`.
    fn open_block(&mut self, base: u64, cont: bool, keep: u32) -> Res<(), D> {
        self.flush()?;
        self.ensure_free(1, keep)?;
        let seq = self.next_seq;
        let prev_end = match self.blocks.back().map(|b| &b.loc) {
            Some(Loc::Mem(m)) => m.end,
            Some(Loc::Summary { .. }) => self.head_end,
            None => 0,
        };
        let h = BlockHeader {
            kind: KIND_LOG,
            flags: if cont { FLAG_CONT } else { 0 },
            seq,
            prev: self.blocks.back().map_or(0, |b| b.seq),
            base,
            floor: self.floor,
            prev_end,
            block_size: self.geo.block_size,
        };
        if !h.link_fits() {
            return Err(Error::Corrupt {
                block: self.blocks.back().map_or(0, |b| b.block),
                offset: 0,
                what: "more than 2^32 allocations since the head was opened",
            });
        }
        let block = self.start_block(&h, keep)?;
        self.next_seq += 1;
        // The header's sync covered the old head's records; the new head is
        // empty: its first record says so.
        self.head_synced = true;
        self.write_summaries()?;
        let m = MemBlock {
            offsets: Vec::new(),
            end: self.hdr as u32,
            next: base,
            low: base,
            floor: self.floor,
            tail_open: false,
        };
        self.blocks.push_back(LogBlock {
            block,
            seq,
            first: base,
            n: 0,
            loc: Loc::Mem(m),
        });
        self.head_open = true;
        self.wbuf_at = self.geo.block_offset(block) + self.hdr as u64;
        // Static wear levelling (flash): a meta block that has outlived a
        // whole wrap of allocations moves, so rarely changed metadata (term,
        // vote) does not pin one block while the ring wears the others.
        let stale_meta = self
            .meta_block
            .as_ref()
            .is_some_and(|m| self.next_seq - m.seq > u64::from(self.geo.block_count / 2));
        // Only with a free block to spare: it is an optimisation, and must
        // not make a control record fail.
        if self.geo.erase_value.is_some()
            && stale_meta
            && self.free > 0
            && self.next_seq < format::SEQ_LIMIT - 2
        {
            self.meta_snapshot()?;
        }
        Ok(())
    }

    /// Writes the summary of every sealed block that has none yet. Called
    /// right after a sync, so the records they describe are durable.
    fn write_summaries(&mut self) -> Res<(), D> {
        for i in 0..self.blocks.len() {
            let Loc::Mem(m) = &self.blocks[i].loc else {
                continue;
            };
            let b = &self.blocks[i];
            let mut table = m.offsets.clone();
            table.push(m.end);
            let flags = if m.tail_open { FLAG_TAIL_OPEN } else { 0 };
            let t = format::Trailer {
                low: m.low,
                floor: m.floor,
                next: m.next,
                count: m.offsets.len() as u32,
                flags,
                table_crc: 0,
            };
            let bytes = format::encode_summary(b.seq, &table, &t, self.p);
            let end = self.geo.block_offset(b.block) + u64::from(self.geo.block_size);
            let at = end - bytes.len() as u64;
            let disk_n = t.count;
            let dev = self.dev.get_mut();
            if let Some(v) = self.geo.erase_value {
                // A summary attempt torn by an earlier crash: leave the block
                // to be replayed at open rather than program twice.
                // A failed read poisons like a failed write: the new head's
                // header is durable but not yet in `self.blocks`.
                let mut cur = vec![0u8; bytes.len()];
                let r = dev.read(at, &mut cur);
                r.map_err(|e| self.poison(e))?;
                if cur.iter().any(|&x| x != v) {
                    continue;
                }
            }
            self.dev_program(at, &bytes)?;
            self.blocks[i].loc = Loc::Summary {
                disk_n,
                table: index::Table::valid(),
            };
        }
        Ok(())
    }

    /// Appends a TRUNCATE or COMPACT record to the head and syncs; a new
    /// head, if needed, leaves `keep` blocks free.
    fn control_record(&mut self, kind: Kind, index: u64, keep: u32) -> Res<(), D> {
        let base = self.next.unwrap_or(index);
        if !self.head_open || self.room(self.head_n()) < format::round_up(REC_LEN, self.p) {
            self.open_block(base, false, keep)?;
        }
        self.push_rec(kind, index, &[]);
        let end = self.head_cursor() as u32;
        self.head_mem().end = end;
        self.sync()
    }

    fn poison(&mut self, e: D::Error) -> Error<D::Error> {
        self.poisoned = true;
        Error::Device(e)
    }

    /// Programs `data` at `at`, remembered until the next good sync.
    fn dev_program(&mut self, at: u64, data: &[u8]) -> Res<(), D> {
        let r = self.dev.get_mut().program(at, data);
        r.map_err(|e| self.poison(e))?;
        if self.geo.erase_value.is_none() {
            match self.undurable.last_mut() {
                Some((s, n)) if *s + *n as u64 == at => *n += data.len(),
                _ => self.undurable.push((at, data.len())),
            }
        }
        Ok(())
    }

    /// Syncs the device; see [`Wal::sync_failed`] for a failure.
    fn dev_sync(&mut self) -> Res<(), D> {
        match self.dev.get_mut().sync() {
            Ok(()) => {
                self.undurable.clear();
                self.undurable_header = None;
                Ok(())
            }
            Err(e) => Err(self.sync_failed(e)),
        }
    }

    /// A failed sync may have dropped what was written since the last good
    /// one while reads still see it (Linux can mark the dirty pages clean:
    /// "fsyncgate"). A log reopened on that view would link new blocks to
    /// records that never reach the disk, and a later sync would be
    /// acknowledged on top of them. So the log takes them back first: it
    /// programs zeros over every such range (newest first), and turns a log
    /// block header whose sync failed into a meta header of the same `seq`
    /// without a snapshot (a free block to recovery that still counts for
    /// the next `seq`, so no `seq` is ever used twice). Reads then show
    /// what the disk may hold either way. Then the log is poisoned, and its
    /// reads refuse too.
    fn sync_failed(&mut self, e: D::Error) -> Error<D::Error> {
        self.taken_back = true;
        let zeros = vec![0u8; 4096];
        let dev = self.dev.get_mut();
        if let Some((off, h)) = self.undurable_header.take() {
            let t = BlockHeader {
                kind: KIND_META,
                flags: 0,
                prev: 0,
                base: 0,
                floor: 0,
                prev_end: 0,
                ..h
            };
            let mut buf = vec![0u8; self.hdr];
            buf[..format::HEADER_LEN].copy_from_slice(&t.encode());
            let _ = dev.program(off, &buf);
        }
        for (at, n) in self.undurable.drain(..).rev() {
            let mut off = 0;
            while off < n {
                let k = (n - off).min(zeros.len());
                // Best effort: a device that fails this too is broken.
                let _ = dev.program(at + off as u64, &zeros[..k]);
                off += k;
            }
        }
        self.poison(e)
    }

    fn writable(&self) -> Res<(), D> {
        if self.poisoned {
            Err(Error::Poisoned)
        } else {
            Ok(())
        }
    }

    // ----- durability ------------------------------------------------------

    /// Programs buffered records without waiting for durability.
    pub fn flush(&mut self) -> Res<(), D> {
        self.writable()?;
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let wbuf = core::mem::take(&mut self.wbuf);
        let r = self.dev_program(self.wbuf_at, &wbuf);
        self.wbuf = wbuf;
        r?;
        self.wbuf_at += self.wbuf.len() as u64;
        self.wbuf.clear();
        Ok(())
    }

    /// Makes everything appended so far durable with one device sync (group
    /// commit). A failure poisons the log: reopen it to see what is durable
    /// (what this sync should have made durable is taken back first, so a
    /// reopened log never builds on it).
    pub fn sync(&mut self) -> Res<(), D> {
        self.flush()?;
        self.dev_sync()?;
        self.head_synced = true;
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
                self.release(b.block);
            }
        }
        self.cache.compact(floor);
        Ok(())
    }

    // ----- metadata --------------------------------------------------------

    /// Sets a metadata key (durable on return; after a crash the key holds
    /// its old or its new value).
    pub fn set_meta(&mut self, key: &str, value: &[u8]) -> Res<(), D> {
        self.writable()?;
        self.check_meta(key, value)?;
        let klen = [key.len() as u8];
        let old = self.meta.insert(String::from(key), value.to_vec());
        let r = self.meta_record(Kind::Set, &meta::set_payload(&klen, key, value));
        if r.is_err() {
            match old {
                Some(v) => self.meta.insert(String::from(key), v),
                None => self.meta.remove(key),
            };
        }
        r
    }

    /// Removes a metadata key (durable on return). Absent keys: no-op.
    pub fn remove_meta(&mut self, key: &str) -> Res<(), D> {
        self.writable()?;
        let Some(old) = self.meta.remove(key) else {
            return Ok(());
        };
        let klen = [key.len() as u8];
        let r = self.meta_record(Kind::Remove, &[&klen, key.as_bytes()]);
        if r.is_err() {
            self.meta.insert(String::from(key), old);
        }
        r
    }

    /// A metadata value.
    #[must_use]
    pub fn get_meta(&self, key: &str) -> Option<&[u8]> {
        self.meta.get(key).map(|v| v.as_slice())
    }

    /// All metadata keys, in order.
    pub fn meta_keys(&self) -> impl Iterator<Item = &str> {
        self.meta.keys()
    }

    /// The limits of item 6 (key, value, whole map), checked before
    /// anything is written: the map's SNAPSHOT record, and the MARK after
    /// it, must fit one meta block, and the snapshot one record (24-bit
    /// length).
    fn check_meta(&self, key: &str, value: &[u8]) -> Res<(), D> {
        let too = |len, max, limit| Err(Error::MetaTooLarge { len, max, limit });
        if key.len() > MAX_KEY_LEN {
            return too(key.len(), MAX_KEY_LEN, MetaLimit::Key);
        }
        let bs = self.geo.block_size as usize;
        let mark = format::round_up(REC_LEN, self.p);
        let cap = (bs - self.hdr - mark - REC_LEN).min(MAX_REC_PAYLOAD);
        // A snapshot holding only this key: count, then key/value framing.
        let alone = meta::snapshot_len(&MetaMap::new()) + 5 + key.len();
        let max_value = cap.saturating_sub(alone);
        if value.len() > max_value {
            return too(value.len(), max_value, MetaLimit::Value);
        }
        let old = self.meta.get(key).map_or(0, |v| 5 + key.len() + v.len());
        let snap = meta::snapshot_len(&self.meta) - old + 5 + key.len() + value.len();
        if snap > cap {
            return too(snap, cap, MetaLimit::Map);
        }
        Ok(())
    }

    /// Writes a meta record for the change already applied to `self.meta`
    /// (within the limits `check_meta` enforces): appended to the meta
    /// block when it fits, else a fresh snapshot block.
    fn meta_record(&mut self, kind: Kind, payload: &[&[u8]]) -> Res<(), D> {
        let bs = self.geo.block_size as usize;
        let len: usize = payload.iter().map(|s| s.len()).sum();
        let span = format::round_up(REC_LEN + len, self.p);
        let mark = format::round_up(REC_LEN, self.p);
        if let Some(mb) = self
            .meta_block
            .clone()
            .filter(|mb| mb.appendable && mb.cursor as usize + span + mark <= bs)
        {
            let mut buf = Vec::with_capacity(span);
            format::push_record(&mut buf, self.p, mb.seq, kind, mb.synced, 0, payload);
            let at = self.geo.block_offset(mb.block) + u64::from(mb.cursor);
            self.dev_program(at, &buf)?;
            self.dev_sync()?;
            if let Some(m) = self.meta_block.as_mut() {
                m.cursor += span as u32;
                m.synced = true;
            }
            return self.meta_mark();
        }
        self.meta_snapshot()
    }

    /// Programs a MARK (with `SYNCED`) after a synced meta record, and syncs:
    /// a later flip of that record is then corruption, not a torn write
    /// (FORMAT.md, "Meta").
    fn meta_mark(&mut self) -> Res<(), D> {
        let Some(mb) = self.meta_block.clone() else {
            return Ok(());
        };
        let mut buf = Vec::new();
        format::push_record(&mut buf, self.p, mb.seq, Kind::Mark, true, 0, &[]);
        let at = self.geo.block_offset(mb.block) + u64::from(mb.cursor);
        self.dev_program(at, &buf)?;
        self.dev_sync()?;
        if let Some(m) = self.meta_block.as_mut() {
            m.cursor += buf.len() as u32;
        }
        Ok(())
    }

    /// Writes the whole map into a fresh meta block: header durable, then
    /// the snapshot durable, then the old block is free (FORMAT.md, "Meta").
    fn meta_snapshot(&mut self) -> Res<(), D> {
        let seq = self.next_seq;
        let h = BlockHeader {
            kind: KIND_META,
            flags: 0,
            seq,
            prev: 0,
            base: 0,
            floor: 0,
            prev_end: 0,
            block_size: self.geo.block_size,
        };
        // A snapshot that replaces a meta block frees it right after, so it
        // may use the last free block; the first one keeps the compaction's.
        let keep = if self.meta_block.is_some() {
            0
        } else {
            KEEP_FOR_COMPACT
        };
        let block = self.start_block(&h, keep)?;
        self.next_seq += 1;
        let mut buf = Vec::new();
        format::push_record(
            &mut buf,
            self.p,
            seq,
            Kind::Snapshot,
            true,
            0,
            &[&meta::snapshot_payload(&self.meta)],
        );
        self.dev_program(self.geo.block_offset(block) + self.hdr as u64, &buf)?;
        self.dev_sync()?;
        let old = self.meta_block.replace(MetaBlock {
            block,
            seq,
            cursor: (self.hdr + buf.len()) as u32,
            appendable: true,
            synced: true,
        });
        self.meta_mark()?;
        if let Some(old) = old {
            self.release(old.block);
        }
        Ok(())
    }

    // ----- reading ---------------------------------------------------------

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
        let (next, end) = self.clamp(range);
        Iter {
            wal: self,
            next,
            end,
        }
    }

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
        let wb_end = self.wbuf_at + self.wbuf.len() as u64;
        let split = if self.wbuf.is_empty() || end <= self.wbuf_at || off >= wb_end {
            end
        } else {
            self.wbuf_at.max(off)
        };
        let (dev_part, buf_part) = buf.split_at_mut((split - off) as usize);
        if !dev_part.is_empty() {
            self.dev
                .borrow_mut()
                .read(off, dev_part)
                .map_err(Error::Device)?;
        }
        if !buf_part.is_empty() {
            let s = (split - self.wbuf_at) as usize;
            buf_part.copy_from_slice(&self.wbuf[s..s + buf_part.len()]);
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

    // ----- memory ----------------------------------------------------------

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
            + self.used.capacity()
            + self.wbuf.capacity()
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

/// Iterator over entries; see [`Wal::iter_range`].
pub struct Iter<'a, D: BlockDevice> {
    wal: &'a Wal<D>,
    next: u64,
    end: u64,
}

impl<'a, D: BlockDevice> Iterator for Iter<'a, D> {
    type Item = Entry<'a>;
    fn next(&mut self) -> Option<Entry<'a>> {
        if self.next >= self.end {
            return None;
        }
        let index = self.next;
        match self.wal.try_get(index) {
            Ok(Some(data)) => {
                self.next += 1;
                Some(Entry { index, data })
            }
            Ok(None) => None,
            Err(e) => {
                *self.wal.read_error.borrow_mut() = Some(e);
                self.end = index;
                None
            }
        }
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
