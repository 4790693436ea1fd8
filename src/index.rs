//! Log index -> location, kept per block (never per entry, except for the
//! head block and blocks still without a summary), and the bounded tail cache.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::OnceCell;

use crate::device::{BlockDevice, Geometry};
use crate::format::{self, BlockHeader, FLAG_TAIL_OPEN};
use crate::recovery::{drop_incomplete, header_area, scan_log, Reader};
use crate::Error;

/// Where the entry offsets of a block live.
#[derive(Clone, Debug)]
pub(crate) enum Loc {
    /// Sealed with a summary holding `disk_n` entries: offsets are read from
    /// its table at the block's end, once `table` is checked.
    Summary { disk_n: u32, table: Table },
    /// Offsets held in memory: the head, and sealed blocks whose summary is
    /// not written yet. This is the block's own replay (FORMAT.md).
    Mem(MemBlock),
}

/// A block's own replay state, as written or as scanned.
#[derive(Clone, Debug, Default)]
pub(crate) struct MemBlock {
    /// Offset of the first record of each entry starting in the block.
    pub offsets: Vec<u32>,
    /// Offset where records end.
    pub end: u32,
    /// Index after the block's last entry.
    pub next: u64,
    /// min(base, TRUNCATE indices in the block).
    pub low: u64,
    /// max(header floor, COMPACT indices in the block).
    pub floor: u64,
    /// The last entry continues in the next block.
    pub tail_open: bool,
}

/// One log block of the live chain.
#[derive(Clone, Debug)]
pub(crate) struct LogBlock {
    pub block: u32,
    pub seq: u64,
    /// First surviving entry starting here (for an empty block: where it sits
    /// in index order, so the list stays sorted).
    pub first: u64,
    /// Surviving entries starting here.
    pub n: u32,
    pub loc: Loc,
}

impl LogBlock {
    /// Index after the last surviving entry that starts here.
    pub fn end(&self) -> u64 {
        self.first + u64::from(self.n)
    }

    /// Drops surviving entries `>= limit`.
    pub fn clip(&mut self, limit: u64) {
        if self.end() > limit {
            self.n = limit.saturating_sub(self.first) as u32;
            if self.n == 0 {
                self.first = self.first.min(limit);
            }
        }
    }
}

/// How far a sealed block's summary table is checked. Opening trusts a
/// summary on its trailer and its end (FORMAT.md, "Summary"), so opening a
/// big log reads no tables; the table (4 bytes per entry) is checked at the
/// first lookup into the block.
#[derive(Clone, Debug, Default)]
pub(crate) struct Table(OnceCell<Checked>);

#[derive(Clone, Debug)]
enum Checked {
    /// The table validates: offsets are read from it.
    Valid,
    /// It does not, and the block's replay agrees with the trailer: the
    /// replayed offsets, then the end.
    Replayed(Vec<u32>),
    /// It does not, and the replay disagrees with the trailer.
    Bad,
}

impl Table {
    /// A table known to validate (checked at open, or just written).
    pub(crate) fn valid() -> Self {
        Table(OnceCell::from(Checked::Valid))
    }
}

/// Start and end offsets of entry `k` of `blk`, sealed with a summary of
/// `disk_n` entries. The first lookup checks the table; one that does not
/// validate is never read: the block is replayed record by record instead
/// (FORMAT.md, "Summary"), and the replay must agree with the trailer.
pub(crate) fn summary_extent<D: BlockDevice>(
    dev: &mut D,
    g: &Geometry,
    blk: &LogBlock,
    disk_n: u32,
    table: &Table,
    k: usize,
) -> Result<(u32, u32), Error<D::Error>> {
    let corrupt = |what| Error::Corrupt {
        block: blk.block,
        offset: 0,
        what,
    };
    // The first lookup reads the whole table to check it, and takes its
    // extent from there: a get stays one table read and one record read.
    let (checked, first) = match table.0.get() {
        Some(c) => (c, None),
        None => {
            let (c, extent) = check(dev, g, blk, disk_n, k)?;
            (table.0.get_or_init(|| c), extent)
        }
    };
    match checked {
        Checked::Valid => {
            if let Some(extent) = first {
                return Ok(extent);
            }
            let bs = g.block_size as usize;
            let tab = format::table_offset(bs, header_area(g), disk_n)
                .ok_or(corrupt("summary larger than its block"))?;
            let mut two = [0u8; 8];
            let at = g.block_offset(blk.block) + (tab + 4 * k) as u64;
            dev.read(at, &mut two).map_err(Error::Device)?;
            Ok((format::table_at(&two, 0), format::table_at(&two, 1)))
        }
        Checked::Replayed(offsets) => match (offsets.get(k), offsets.get(k + 1)) {
            (Some(&start), Some(&end)) => Ok((start, end)),
            _ => Err(corrupt("entry missing from the block's replay")),
        },
        Checked::Bad => Err(corrupt(
            "summary table damaged and the block's records disagree with its trailer",
        )),
    }
}

/// An entry's start and end offsets in its block.
type Extent = (u32, u32);

/// Checks the summary table of `blk`; replays the block if it is invalid.
/// A valid table also gives entry `k`'s extent.
fn check<D: BlockDevice>(
    dev: &mut D,
    g: &Geometry,
    blk: &LogBlock,
    disk_n: u32,
    k: usize,
) -> Result<(Checked, Option<Extent>), Error<D::Error>> {
    let (bs, hdr) = (g.block_size as usize, header_area(g));
    let Some(tab_at) = format::table_offset(bs, hdr, disk_n) else {
        return Ok((Checked::Bad, None));
    };
    let base = g.block_offset(blk.block);
    let mut summary = vec![0u8; bs - tab_at];
    dev.read(base + tab_at as u64, &mut summary)
        .map_err(Error::Device)?;
    let (table, trailer) = summary.split_at(format::table_len(disk_n));
    let Some(t) = format::decode_trailer(blk.seq, trailer) else {
        return Ok((Checked::Bad, None));
    };
    let p = g.program_size as usize;
    if format::summary_trusted(blk.seq, &t, table, hdr, bs, p).is_some() {
        let extent = (4 * (k + 2) <= table.len())
            .then(|| (format::table_at(table, k), format::table_at(table, k + 1)));
        return Ok((Checked::Valid, extent));
    }
    let mut hb = [0u8; format::HEADER_LEN];
    dev.read(base, &mut hb).map_err(Error::Device)?;
    let Some(h) = BlockHeader::decode(&hb).filter(|h| h.seq == blk.seq) else {
        return Ok((Checked::Bad, None));
    };
    let (mut m, _) = scan_log(dev, &mut Reader::new(64 << 10), g, blk.block, &h, false)?;
    let tail_open = t.flags & FLAG_TAIL_OPEN != 0;
    if m.tail_open && !tail_open {
        // Sealed after recovery dropped its unfinished last entry.
        drop_incomplete(&mut m);
    }
    let agrees = m.next == t.next
        && m.low == t.low
        && m.floor == t.floor
        && m.tail_open == tail_open
        && m.offsets.len() == disk_n as usize
        && m.end == format::table_at(table, disk_n as usize);
    if !agrees {
        return Ok((Checked::Bad, None));
    }
    m.offsets.push(m.end);
    Ok((Checked::Replayed(m.offsets), None))
}

/// Position of the block holding the start of `index` in `blocks` (sorted
/// by index), if any.
pub(crate) fn find(blocks: &VecDeque<LogBlock>, index: u64) -> Option<usize> {
    let pos = blocks.partition_point(|b| b.end() <= index);
    let b = blocks.get(pos)?;
    (b.first <= index && index < b.end()).then_some(pos)
}

/// Bookkeeping bytes charged per cached entry (its span), so a flood of empty
/// entries is bounded by `max_bytes` too.
const SPAN_COST: usize = core::mem::size_of::<(u32, u32)>();

/// Smallest ring allocated, so small logs stay small.
const MIN_RING: usize = 4 << 10;

/// Recently appended entries, contiguous, bounded by bytes and by count.
///
/// The payloads live in one ring of bytes (each entry contiguous; an entry
/// that does not fit before the ring's end starts again at 0), so appending
/// allocates nothing once the ring has grown to its working size. The ring
/// grows by doubling up to `max_bytes` and never past it.
#[derive(Debug, Default)]
pub(crate) struct TailCache {
    ring: Vec<u8>,
    /// `(start in ring, len)` of each cached entry, oldest first.
    spans: VecDeque<(u32, u32)>,
    first: u64,
    /// Payload bytes held plus `SPAN_COST` per entry.
    bytes: usize,
    pub max_bytes: usize,
    pub max_entries: usize,
}

impl TailCache {
    pub fn new(max_bytes: usize, max_entries: usize) -> Self {
        TailCache {
            max_bytes,
            max_entries,
            ..Default::default()
        }
    }

    /// Largest ring this cache may allocate.
    fn ring_limit(&self) -> usize {
        self.max_bytes.min(u32::MAX as usize)
    }

    pub fn get(&self, index: u64) -> Option<&[u8]> {
        let k = usize::try_from(index.checked_sub(self.first)?).ok()?;
        let &(s, n) = self.spans.get(k)?;
        Some(&self.ring[s as usize..s as usize + n as usize])
    }

    /// Adds the entry after the last one (a gap empties the cache first).
    #[inline]
    pub fn push(&mut self, index: u64, data: &[u8]) {
        if self.spans.is_empty() || self.first + self.spans.len() as u64 != index {
            self.clear();
            self.first = index;
        }
        let len = data.len();
        if len + SPAN_COST > self.max_bytes || len > self.ring_limit() || self.max_entries == 0 {
            self.clear();
            self.first = index + 1;
            return;
        }
        while self.spans.len() >= self.max_entries || self.bytes + len + SPAN_COST > self.max_bytes
        {
            self.pop_front();
        }
        let at = self.place(len);
        self.ring[at..at + len].copy_from_slice(data);
        self.spans.push_back((at as u32, len as u32));
        self.bytes += len + SPAN_COST;
    }

    /// Where in the ring `len` bytes go after the newest entry, evicting the
    /// oldest entries or growing the ring until they fit.
    fn place(&mut self, len: usize) -> usize {
        loop {
            let (Some(&(hs, _)), Some(&(ts, tn))) = (self.spans.front(), self.spans.back()) else {
                if self.ring.len() < len {
                    self.grow(len);
                }
                return 0;
            };
            let (head, tail) = (hs as usize, ts as usize + tn as usize);
            // Not wrapped iff the newest entry ends past the oldest's start
            // (`ts >= hs` misread an empty newest entry sitting at `head`
            // after a wrap; ending exactly at `head` is taken as wrapped,
            // which at worst evicts an empty entry early).
            if tail > head {
                // Live bytes are head..tail: room at the end, else at the start.
                if tail + len <= self.ring.len() {
                    return tail;
                }
                if len <= head {
                    return 0;
                }
            } else if tail + len <= head {
                // Wrapped: live bytes are head..end and 0..tail.
                return tail;
            }
            if self.ring.len() < self.ring_limit() {
                self.grow(len);
            } else {
                self.pop_front();
            }
        }
    }

    /// Doubles the ring (at least to hold `len` more bytes), moving the live
    /// entries to its start in order.
    fn grow(&mut self, len: usize) {
        let live: usize = self.spans.iter().map(|&(_, n)| n as usize).sum();
        let want = (self.ring.len() * 2)
            .max(live + len)
            .max(MIN_RING)
            .min(self.ring_limit());
        let mut ring = alloc::vec![0u8; want];
        let mut at = 0usize;
        for span in self.spans.iter_mut() {
            let (s, n) = (span.0 as usize, span.1 as usize);
            ring[at..at + n].copy_from_slice(&self.ring[s..s + n]);
            *span = (at as u32, n as u32);
            at += n;
        }
        self.ring = ring;
    }

    fn pop_front(&mut self) {
        if let Some((_, n)) = self.spans.pop_front() {
            self.bytes -= n as usize + SPAN_COST;
            self.first += 1;
        }
    }

    fn shrink(&mut self) {
        while self.bytes > self.max_bytes || self.spans.len() > self.max_entries {
            self.pop_front();
        }
    }

    /// Drops entries `>= from`.
    pub fn truncate(&mut self, from: u64) {
        while self.first + self.spans.len() as u64 > from {
            let Some((_, n)) = self.spans.pop_back() else {
                break;
            };
            self.bytes -= n as usize + SPAN_COST;
        }
    }

    /// Drops entries `< to`.
    pub fn compact(&mut self, to: u64) {
        while self.first < to {
            if self.spans.is_empty() {
                self.first = to;
                break;
            }
            self.pop_front();
        }
    }

    pub fn set_limits(&mut self, max_bytes: usize, max_entries: usize) {
        self.max_bytes = max_bytes;
        self.max_entries = max_entries;
        self.shrink();
        if self.ring.len() > self.ring_limit() {
            // Moves the survivors into a ring within the new limit.
            let keep = core::mem::take(&mut self.ring);
            let spans = core::mem::take(&mut self.spans);
            let first = self.first;
            self.bytes = 0;
            self.first = first;
            for (k, (s, n)) in spans.into_iter().enumerate() {
                self.push(first + k as u64, &keep[s as usize..(s + n) as usize]);
            }
        }
    }

    pub fn clear(&mut self) {
        self.spans.clear();
        self.bytes = 0;
    }

    /// Bytes of heap the cache holds (ring plus spans).
    pub fn memory(&self) -> usize {
        self.ring.capacity() + self.spans.capacity() * SPAN_COST
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn entry(i: u64) -> Vec<u8> {
        // Every fifth entry empty (empty entries at a wrap point are the
        // ring's tricky case), the others of varied length.
        let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
        let len = if h % 5 == 0 { 0 } else { (h % 300) as usize };
        vec![i as u8; len]
    }

    #[test]
    fn empty_entry_at_an_exact_wrap_does_not_unwrap_the_ring() {
        let mut c = TailCache::new(300, usize::MAX);
        let sizes = [102usize, 102, 102, 0, 11, 5];
        for (i, &n) in sizes.iter().enumerate() {
            c.push(i as u64, &vec![i as u8; n]);
        }
        for (i, &n) in sizes.iter().enumerate() {
            if let Some(d) = c.get(i as u64) {
                assert_eq!(d, vec![i as u8; n].as_slice(), "entry {i}");
            }
        }
        assert!(c.get(4).is_some() && c.get(5).is_some());
    }

    #[test]
    fn ring_cache_matches_a_model() {
        for (max_bytes, max_entries) in [(5000, usize::MAX), (1 << 16, 50), (300, 3), (0, 10)] {
            let mut c = TailCache::new(max_bytes, max_entries);
            let mut lo = 1u64;
            let mut next = 1u64;
            for step in 0..3000u64 {
                match step % 97 {
                    13 if next > lo + 5 => {
                        next -= 5;
                        c.truncate(next);
                    }
                    41 => {
                        lo = lo.max(next.saturating_sub(3));
                        c.compact(lo);
                    }
                    _ => {
                        c.push(next, &entry(next));
                        next += 1;
                    }
                }
                assert!(c.ring.len() <= max_bytes);
                assert!(c.spans.len() <= max_entries);
                assert!(c.bytes <= max_bytes);
                let mut cached = 0;
                for i in lo..next {
                    if let Some(d) = c.get(i) {
                        assert_eq!(d, entry(i).as_slice(), "entry {i}");
                        cached += 1;
                    }
                }
                assert_eq!(cached, c.spans.len());
                if max_bytes >= 1 << 16 && next > 1 {
                    assert!(c.get(next - 1).is_some());
                }
            }
            c.set_limits(max_bytes / 2, max_entries);
            assert!(c.ring.len() <= max_bytes / 2);
            for i in lo..next {
                if let Some(d) = c.get(i) {
                    assert_eq!(d, entry(i).as_slice());
                }
            }
        }
    }
}
