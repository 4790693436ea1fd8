//! Opening a device: read block headers, rebuild the metadata map, walk the
//! log chain from the head, find the valid end (FORMAT.md, "Opening a log").

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use crate::device::{BlockDevice, Geometry};
use crate::format::{
    self, BlockHeader, Kind, RecHeader, FLAG_CONT, FLAG_TAIL_OPEN, KIND_LOG, KIND_META, REC_LEN,
    TRAILER_LEN,
};
use crate::index::{Loc, LogBlock, MemBlock};
use crate::meta::{self, MetaMap};
use crate::Error;

/// Reads ahead through a window so a scan costs one device read per window,
/// not two per record. Records larger than the window are read on their own.
pub(crate) struct Reader {
    buf: Vec<u8>,
    at: u64,
    big: Vec<u8>,
    window: usize,
}

impl Reader {
    pub fn new(window: usize) -> Self {
        Reader {
            buf: Vec::new(),
            at: 0,
            big: Vec::new(),
            window: window.max(64),
        }
    }

    /// `len` bytes at `off`, never reading past `limit`.
    pub fn fetch<D: BlockDevice>(
        &mut self,
        dev: &mut D,
        off: u64,
        len: usize,
        limit: u64,
    ) -> Result<&[u8], Error<D::Error>> {
        let end = off + len as u64;
        if off >= self.at && end <= self.at + self.buf.len() as u64 {
            let s = (off - self.at) as usize;
            return Ok(&self.buf[s..s + len]);
        }
        if len > self.window {
            self.big.resize(len, 0);
            dev.read(off, &mut self.big).map_err(Error::Device)?;
            return Ok(&self.big);
        }
        let n = (limit - off).min(self.window as u64).max(len as u64) as usize;
        self.buf.resize(n, 0);
        dev.read(off, &mut self.buf).map_err(Error::Device)?;
        self.at = off;
        Ok(&self.buf[..len])
    }
}

/// Size of the header area: the header padded to the program unit.
pub(crate) fn header_area(g: &Geometry) -> usize {
    format::round_up(format::HEADER_LEN, g.program_size as usize)
}

/// Replays one log block's records (FORMAT.md, "Replaying a log block").
pub(crate) fn scan_log<D: BlockDevice>(
    dev: &mut D,
    rd: &mut Reader,
    g: &Geometry,
    block: u32,
    h: &BlockHeader,
) -> Result<MemBlock, Error<D::Error>> {
    let bs = g.block_size as usize;
    let p = g.program_size as usize;
    let base_off = g.block_offset(block);
    let limit = base_off + bs as u64;
    let mut m = MemBlock {
        offsets: Vec::new(),
        end: header_area(g) as u32,
        next: h.base,
        low: h.base,
        floor: h.floor,
        tail_open: false,
    };
    let mut pending = if h.flags & FLAG_CONT != 0 {
        h.base.checked_sub(1)
    } else {
        None
    };
    loop {
        let off = m.end as usize;
        if off + REC_LEN > bs {
            break;
        }
        let hb = rd.fetch(dev, base_off + off as u64, REC_LEN, limit)?;
        let mut hdr = [0u8; REC_LEN];
        hdr.copy_from_slice(hb);
        let Some(r) = RecHeader::decode(&hdr) else {
            break;
        };
        let starts = matches!(r.kind, Kind::Entry | Kind::First);
        let room = bs.saturating_sub(format::summary_len(m.offsets.len() + starts as usize, p));
        if off + r.span(p) > room {
            break;
        }
        let payload = rd.fetch(dev, base_off + (off + REC_LEN) as u64, r.len, limit)?;
        if !format::record_valid(h.seq, &hdr, payload) {
            break;
        }
        match r.kind {
            Kind::Entry | Kind::First => {
                if pending.is_some() || r.index != m.next || r.index == u64::MAX {
                    break;
                }
                m.offsets.push(off as u32);
                m.next = r.index + 1;
                if r.kind == Kind::First {
                    pending = Some(r.index);
                }
            }
            Kind::Middle | Kind::Last => {
                if pending != Some(r.index) {
                    break;
                }
                if r.kind == Kind::Last {
                    pending = None;
                }
            }
            Kind::Truncate => {
                let t = r.index;
                if t >= m.next {
                    break;
                }
                let first = m.next - m.offsets.len() as u64;
                m.offsets.truncate(t.saturating_sub(first) as usize);
                if pending.is_some_and(|e| e >= t) {
                    pending = None;
                }
                m.next = t;
                m.low = m.low.min(t);
            }
            Kind::Compact => {
                m.floor = m.floor.max(r.index);
                if r.index > m.next {
                    m.offsets.clear();
                    m.next = r.index;
                    pending = None;
                }
            }
            _ => break,
        }
        m.end = (off + r.span(p)) as u32;
    }
    m.tail_open = pending.is_some();
    Ok(m)
}

/// Turns the replay of a block whose last entry never finished into the
/// replay without that entry, as its summary will record it.
pub(crate) fn drop_incomplete(m: &mut MemBlock) {
    let e = m.next.saturating_sub(1);
    let first = m.next - m.offsets.len() as u64;
    if e >= first {
        let k = (e - first) as usize;
        m.end = m.offsets[k];
        m.offsets.truncate(k);
    }
    m.next = e;
    m.low = m.low.min(e);
    m.tail_open = false;
}

/// Sorts (seq, block) pairs: a heapsort, a fraction of the code size of the
/// standard sorts, which matters on microcontrollers.
fn sort_pairs(v: &mut [(u64, u32)]) {
    fn sift(v: &mut [(u64, u32)], mut root: usize, end: usize) {
        loop {
            let mut child = 2 * root + 1;
            if child >= end {
                return;
            }
            if child + 1 < end && v[child] < v[child + 1] {
                child += 1;
            }
            if v[root] >= v[child] {
                return;
            }
            v.swap(root, child);
            root = child;
        }
    }
    for i in (0..v.len() / 2).rev() {
        sift(v, i, v.len());
    }
    for end in (1..v.len()).rev() {
        v.swap(0, end);
        sift(v, 0, end);
    }
}

/// True if `[from, to)` of the device holds only `value`.
pub(crate) fn is_blank<D: BlockDevice>(
    dev: &mut D,
    rd: &mut Reader,
    from: u64,
    to: u64,
    value: u8,
) -> Result<bool, Error<D::Error>> {
    let mut off = from;
    while off < to {
        let n = (to - off).min(rd.window as u64) as usize;
        if rd.fetch(dev, off, n, to)?.iter().any(|&b| b != value) {
            return Ok(false);
        }
        off += n as u64;
    }
    Ok(true)
}

/// The current meta block.
#[derive(Clone, Debug)]
pub(crate) struct MetaBlock {
    pub block: u32,
    pub seq: u64,
    /// Offset where the next record goes.
    pub cursor: u32,
    /// Records may be appended at `cursor` (the rest of the block is erased).
    pub appendable: bool,
}

/// Everything [`open`] learns.
pub(crate) struct Recovered {
    pub blocks: VecDeque<LogBlock>,
    pub head_appendable: bool,
    pub floor: u64,
    /// The log's first index (its next index when empty).
    pub first: u64,
    pub next: Option<u64>,
    pub meta: MetaMap,
    pub meta_block: Option<MetaBlock>,
    pub used: Vec<bool>,
    pub next_seq: u64,
}

fn corrupt<E>(block: u32, offset: u32, what: &'static str) -> Error<E> {
    Error::Corrupt {
        block,
        offset,
        what,
    }
}

/// Replays a meta block; `None` unless its first record is a valid SNAPSHOT.
fn scan_meta<D: BlockDevice>(
    dev: &mut D,
    rd: &mut Reader,
    g: &Geometry,
    block: u32,
    seq: u64,
) -> Result<Option<(MetaMap, MetaBlock)>, Error<D::Error>> {
    let bs = g.block_size as usize;
    let p = g.program_size as usize;
    let base_off = g.block_offset(block);
    let limit = base_off + bs as u64;
    let mut map = MetaMap::new();
    let mut off = header_area(g);
    let mut first = true;
    while off + REC_LEN <= bs {
        let hb = rd.fetch(dev, base_off + off as u64, REC_LEN, limit)?;
        let mut hdr = [0u8; REC_LEN];
        hdr.copy_from_slice(hb);
        let Some(r) = RecHeader::decode(&hdr) else {
            break;
        };
        if off + r.span(p) > bs || first != (r.kind == Kind::Snapshot) {
            break;
        }
        let payload = rd.fetch(dev, base_off + (off + REC_LEN) as u64, r.len, limit)?;
        if !format::record_valid(seq, &hdr, payload) || !meta::apply(&mut map, r.kind, payload) {
            break;
        }
        first = false;
        off += r.span(p);
    }
    if first {
        return Ok(None);
    }
    let appendable = match g.erase_value {
        Some(v) => is_blank(dev, rd, base_off + off as u64, limit, v)?,
        None => false,
    };
    Ok(Some((
        map,
        MetaBlock {
            block,
            seq,
            cursor: off as u32,
            appendable,
        },
    )))
}

/// Describes a log block by its summary if valid, else by replaying it.
fn describe<D: BlockDevice>(
    dev: &mut D,
    rd: &mut Reader,
    g: &Geometry,
    block: u32,
    h: &BlockHeader,
    tb: &[u8; TRAILER_LEN],
) -> Result<(LogBlock, MemBlockView), Error<D::Error>> {
    let bs = g.block_size as usize;
    if let Some(t) = format::decode_trailer(h.seq, tb) {
        let n = t.count as usize;
        let fits = 4 * (n + 1) + TRAILER_LEN + header_area(g) <= bs;
        // A summary is trusted only with its table: a torn program (NOR: any
        // units; files: any pages) can leave a valid trailer over a stale
        // or blank table.
        let table_ok = fits && {
            let tab = g.block_offset(block) + (bs - TRAILER_LEN - 4 * (n + 1)) as u64;
            let bytes = rd.fetch(dev, tab, 4 * (n + 1), g.block_offset(block) + bs as u64)?;
            format::seeded_crc(h.seq, bytes) == t.table_crc
        };
        if table_ok && t.next >= u64::from(t.count) && t.flags & !FLAG_TAIL_OPEN == 0 {
            let lb = LogBlock {
                block,
                seq: h.seq,
                first: t.next - u64::from(t.count),
                n: t.count,
                loc: Loc::Summary { disk_n: t.count },
            };
            let v = MemBlockView {
                next: t.next,
                low: t.low,
                floor: t.floor,
                tail_open: t.flags & FLAG_TAIL_OPEN != 0,
            };
            return Ok((lb, v));
        }
    }
    let m = scan_log(dev, rd, g, block, h)?;
    let v = MemBlockView {
        next: m.next,
        low: m.low,
        floor: m.floor,
        tail_open: m.tail_open,
    };
    let n = m.offsets.len() as u32;
    let lb = LogBlock {
        block,
        seq: h.seq,
        first: m.next - u64::from(n),
        n,
        loc: Loc::Mem(m),
    };
    Ok((lb, v))
}

/// The replay values the walk needs, whichever way they were obtained.
struct MemBlockView {
    next: u64,
    low: u64,
    floor: u64,
    tail_open: bool,
}

/// Opens whatever log the device holds (an all-blank device is an empty log).
pub(crate) fn open<D: BlockDevice>(
    dev: &mut D,
    window: usize,
) -> Result<Recovered, Error<D::Error>> {
    let g = dev.geometry();
    let count = g.block_count as usize;
    let mut rd = Reader::new(window);
    let mut headers: Vec<Option<BlockHeader>> = Vec::with_capacity(count);
    // The summary trailer of every block, read together with the next
    // block's header (they are adjacent): one device read per block.
    let mut trailers: Vec<[u8; TRAILER_LEN]> = Vec::with_capacity(count);
    let mut max_seq = 0u64;
    if g.block_size <= 16 << 10 {
        // Small blocks: nearly every page is needed; one hint for all.
        dev.prefetch(0, g.capacity());
    } else {
        for b in 0..g.block_count {
            dev.prefetch(
                g.block_offset(b).saturating_sub(TRAILER_LEN as u64),
                (TRAILER_LEN + format::HEADER_LEN) as u64,
            );
        }
    }
    let mut both = [0u8; TRAILER_LEN + format::HEADER_LEN];
    for b in 0..=g.block_count {
        let (at, buf) = match b {
            0 => (0, &mut both[TRAILER_LEN..]),
            b if b == g.block_count => {
                (g.capacity() - TRAILER_LEN as u64, &mut both[..TRAILER_LEN])
            }
            b => (g.block_offset(b) - TRAILER_LEN as u64, &mut both[..]),
        };
        dev.read(at, buf).map_err(Error::Device)?;
        if b > 0 {
            let mut t = [0u8; TRAILER_LEN];
            t.copy_from_slice(&both[..TRAILER_LEN]);
            trailers.push(t);
        }
        if b == g.block_count {
            break;
        }
        let h = BlockHeader::decode(&both[TRAILER_LEN..]);
        if let Some(h) = &h {
            if h.block_size != g.block_size {
                return Err(Error::Geometry(
                    "the device holds a log written with another block size",
                ));
            }
            max_seq = max_seq.max(h.seq);
        }
        headers.push(h);
    }
    if max_seq == u64::MAX {
        return Err(corrupt(0, 0, "sequence number space exhausted"));
    }
    let mut used = vec![false; count];

    // Meta: the highest-seq meta block with a valid snapshot rules.
    let mut metas: Vec<(u64, u32)> = headers
        .iter()
        .enumerate()
        .filter_map(|(b, h)| h.filter(|h| h.kind == KIND_META).map(|h| (h.seq, b as u32)))
        .collect();
    sort_pairs(&mut metas);
    let mut meta = MetaMap::new();
    let mut meta_block = None;
    for &(seq, b) in metas.iter().rev() {
        if let Some((m, mb)) = scan_meta(dev, &mut rd, &g, b, seq)? {
            used[b as usize] = true;
            meta = m;
            meta_block = Some(mb);
            break;
        }
    }

    // Log: walk the chain from the head (FORMAT.md, step 3).
    let mut logs: Vec<(u64, u32)> = headers
        .iter()
        .enumerate()
        .filter_map(|(b, h)| h.filter(|h| h.kind == KIND_LOG).map(|h| (h.seq, b as u32)))
        .collect();
    sort_pairs(&mut logs);
    let Some(&(_, head_block)) = logs.last() else {
        return Ok(Recovered {
            blocks: VecDeque::new(),
            head_appendable: false,
            floor: 0,
            first: 0,
            next: None,
            meta,
            meta_block,
            used,
            next_seq: max_seq + 1,
        });
    };
    // A broken link below blocks that hold no entry means the head's header
    // reached the device without its sync, the one that would have made the
    // older records durable (files keep any subset of unsynced writes). Only
    // the head can be such a block (every other header was synced before
    // the next one was written), and it holds no record: recovery drops it
    // and starts again from its predecessor. The break may show only deeper
    // down, below blocks left empty by lost records or truncation. A break
    // below a block holding entries is corruption (its records were
    // programmed after a sync that covered the break).
    let mut head = head_block;
    let (mut chain, head_next, floor, head_appendable) = 'walk: loop {
        let mut chain: Vec<LogBlock> = Vec::new();
        let mut cur = head;
        let mut limit = u64::MAX;
        let mut need_next = 0u64;
        let mut head_next = 0u64;
        let mut floor = 0u64;
        let mut newer_cont = false;
        let mut newer_base = 0u64;
        let mut head_appendable = false;
        loop {
            let h = headers[cur as usize].ok_or(corrupt(
                cur,
                0,
                "chain link to a block without a header",
            ))?;
            let (mut lb, v) = describe(dev, &mut rd, &g, cur, &h, &trailers[cur as usize])?;
            let broken_link = if v.tail_open && !newer_cont {
                // The block's last entry never finished (no newer block
                // carries its continuation): it is not part of the log.
                limit = limit.min(v.next.saturating_sub(1));
                if let Loc::Mem(m) = &mut lb.loc {
                    drop_incomplete(m);
                }
                None
            } else if newer_cont && (!v.tail_open || v.next != newer_base) {
                // The newer block continues entry `base - 1`: this block must
                // leave exactly that entry open.
                Some("next block continues an entry this block does not start")
            } else {
                None
            };
            // The newer block was opened when the log's next index was its
            // `base`: this block must reach it (it may go beyond: recovery
            // or a truncate cut it back). Falling short means records of
            // this block were lost, which even blocks without entries show.
            let ends = if v.tail_open && !newer_cont {
                v.next.saturating_sub(1)
            } else {
                v.next
            };
            let broken_link = broken_link.or((!chain.is_empty() && ends < newer_base)
                .then_some("this block ends before the next one of the log begins"));
            if chain.is_empty() {
                if matches!(lb.loc, Loc::Summary { .. }) {
                    // A summary is only written once the next block's header
                    // is durable: a sealed head means the newest block was lost.
                    return Err(corrupt(
                        cur,
                        0,
                        "the newest log block is missing (its predecessor is sealed)",
                    ));
                }
                head_next = v.next.min(limit);
                need_next = head_next;
                if let (Loc::Mem(m), Some(ev), false) = (&lb.loc, g.erase_value, v.tail_open) {
                    let start = g.block_offset(cur);
                    head_appendable = is_blank(
                        dev,
                        &mut rd,
                        start + u64::from(m.end),
                        start + u64::from(g.block_size),
                        ev,
                    )?;
                }
            }
            floor = floor.max(v.floor);
            lb.clip(limit);
            let gap = lb.n > 0 && lb.end() != need_next;
            if let Some(what) =
                broken_link.or(gap.then_some("gap between this block and the next one of the log"))
            {
                if chain.iter().all(|b| b.n == 0) {
                    head = chain.get(1).map_or(cur, |b| b.block);
                    continue 'walk;
                }
                return Err(corrupt(cur, 0, what));
            }
            if lb.n > 0 {
                need_next = lb.first;
            }
            limit = limit.min(v.low);
            newer_cont = h.flags & FLAG_CONT != 0;
            newer_base = h.base;
            chain.push(lb);
            if need_next <= floor || h.prev == 0 || chain.len() >= count {
                break 'walk (chain, head_next, floor, head_appendable);
            }
            // Links always point to a lower seq: walks and restarts descend,
            // so a hostile image cannot make them loop.
            if h.prev >= h.seq {
                return Err(corrupt(
                    cur,
                    0,
                    "chain link does not point to an older block",
                ));
            }
            let Ok(pos) = logs.binary_search_by(|&(s, _)| s.cmp(&h.prev)) else {
                return Err(corrupt(
                    cur,
                    0,
                    "an older block of the log is missing (never compacted)",
                ));
            };
            cur = logs[pos].1;
        }
    };
    for b in &chain {
        used[b.block as usize] = true;
    }
    chain.reverse();
    let next = head_next.max(floor);
    let first = chain
        .iter()
        .find(|b| b.n > 0)
        .map_or(next, |b| b.first)
        .max(floor);
    Ok(Recovered {
        blocks: chain.into(),
        head_appendable,
        floor,
        first,
        next: Some(next),
        meta,
        meta_block,
        used,
        next_seq: max_seq + 1,
    })
}
