//! Opening a device (FORMAT.md, "Opening a log"), as four steps: read
//! headers → load meta → walk the chain → assemble. Each rule of the walk is
//! a pure function in [`rules`]; every block's records are read by the one
//! scanner in [`scan`].

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::device::{BlockDevice, Geometry};
use crate::format::{self, BlockHeader, Kind, FLAG_CONT, FLAG_TAIL_OPEN, KIND_LOG, KIND_META};
use crate::format::{END_LEN, REC_LEN, TRAILER_LEN};
use crate::index::{Loc, LogBlock, Table};
use crate::meta::{self, MetaMap};
use crate::Error;

mod report;
pub(crate) mod rules;
pub(crate) mod scan;

pub use report::{Cut, RecoveryMode, RecoveryReport};
pub(crate) use scan::{drop_incomplete, header_area, is_blank, scan_log, Reader, Stop};

use rules::{End, View};

/// What a damaged header of a live block is called; salvage scrubs such
/// headers so that a strict open of the result no longer sees them.
pub(crate) const DAMAGED_LOG_HEADER: &str = "log block header damaged";
/// The same for a metadata block.
pub(crate) const DAMAGED_META_HEADER: &str = "metadata block header damaged";

/// How far above the highest seq seen a salvaged log continues (below the
/// 2^32 a `prev` link can span).
const SALVAGE_SEQ_GAP: u64 = 1 << 31;

/// The current meta block.
#[derive(Clone, Debug)]
pub(crate) struct MetaBlock {
    pub block: u32,
    pub seq: u64,
    /// Offset where the next record goes.
    pub cursor: u32,
    /// Records may be appended at `cursor` (the rest of the block is erased).
    pub appendable: bool,
    /// A sync covered every record in the block (the next record carries
    /// `SYNCED`). False for a block resumed at open.
    pub synced: bool,
}

/// Everything [`open`] learns.
pub(crate) struct Recovered {
    pub blocks: VecDeque<LogBlock>,
    pub head_appendable: bool,
    /// Where the head's records end (the next block's `prev_end`).
    pub head_end: u32,
    pub floor: u64,
    /// The log's first index (its next index when empty).
    pub first: u64,
    pub next: Option<u64>,
    pub meta: MetaMap,
    pub meta_block: Option<MetaBlock>,
    pub used: Vec<bool>,
    pub next_seq: u64,
    pub report: RecoveryReport,
    /// Salvage cut the log: a new head must be written before any use.
    pub log_cut: bool,
    /// Salvage cut the metadata: a new snapshot must be written.
    pub meta_cut: bool,
}

fn corrupt<E>(block: u32, offset: u32, what: &'static str) -> Error<E> {
    Error::Corrupt {
        block,
        offset,
        what,
    }
}

/// Damage at `block`/`offset`: a strict open fails there; a salvage open
/// records the cut and goes on.
fn cut_or_fail<E>(
    rep: &mut RecoveryReport,
    block: u32,
    offset: u32,
    what: &'static str,
) -> Result<(), Error<E>> {
    if !rep.mode.salvaging() {
        return Err(corrupt(block, offset, what));
    }
    rep.cuts.push(Cut {
        block,
        offset,
        what,
    });
    Ok(())
}

/// The end of a block as step 1 reads it: the summary table's last word
/// (the block's end), then the trailer.
const TAIL_LEN: usize = END_LEN + TRAILER_LEN;

/// Step 1's result: every block's header and the end of every block.
struct Headers {
    headers: Vec<Option<BlockHeader>>,
    tails: Vec<[u8; TAIL_LEN]>,
    /// Damaged headers (one bit from valid) whose block holds a record valid
    /// under the corrected `seq`.
    damaged: Vec<(u32, BlockHeader)>,
    max_seq: u64,
}

/// Step 1: read every header (with the previous block's trailer, adjacent:
/// one device read per block).
fn read_headers<D: BlockDevice>(
    dev: &mut D,
    rd: &mut Reader,
    g: &Geometry,
) -> Result<Headers, Error<D::Error>> {
    let count = g.block_count as usize;
    let mut hs = Headers {
        headers: Vec::with_capacity(count),
        tails: Vec::with_capacity(count),
        damaged: Vec::new(),
        max_seq: 0,
    };
    if g.block_size <= 16 << 10 {
        dev.prefetch(0, g.capacity());
    } else {
        for b in 0..g.block_count {
            dev.prefetch(
                g.block_offset(b).saturating_sub(TAIL_LEN as u64),
                (TAIL_LEN + format::HEADER_LEN) as u64,
            );
        }
    }
    let mut old_version = false;
    let mut both = [0u8; TAIL_LEN + format::HEADER_LEN];
    for b in 0..=g.block_count {
        let (at, buf) = match b {
            0 => (0, &mut both[TAIL_LEN..]),
            b if b == g.block_count => (g.capacity() - TAIL_LEN as u64, &mut both[..TAIL_LEN]),
            b => (g.block_offset(b) - TAIL_LEN as u64, &mut both[..]),
        };
        rd.read(dev, at, buf)?;
        if b > 0 {
            let mut t = [0u8; TAIL_LEN];
            t.copy_from_slice(&both[..TAIL_LEN]);
            hs.tails.push(t);
        }
        if b == g.block_count {
            break;
        }
        let raw = &both[TAIL_LEN..];
        let h = BlockHeader::decode(raw);
        if let Some(h) = &h {
            if h.block_size != g.block_size {
                return Err(Error::Geometry(
                    "the device holds a log written with another block size",
                ));
            }
            rules::header_rule(h).map_err(|w| corrupt(b, 0, w))?;
            hs.max_seq = hs.max_seq.max(h.seq);
        } else {
            old_version |= BlockHeader::is_v1(raw);
            if let Some(d) = BlockHeader::decode_damaged(raw) {
                if d.block_size == g.block_size && d.seq < format::SEQ_LIMIT {
                    hs.damaged.push((b, d));
                }
            }
        }
        hs.headers.push(h);
    }
    if old_version && hs.max_seq == 0 {
        return Err(Error::Geometry(
            "the device holds a format version 1 log; this build reads version 2",
        ));
    }
    // A damaged header counts only if its block holds a record valid under
    // the corrected seq: a header torn by a crash has none.
    let mut kept = Vec::new();
    for (b, d) in core::mem::take(&mut hs.damaged) {
        let at = header_area(g);
        let first = scan::find_valid_after(dev, rd, g, b, d.seq, at, false)?;
        if first.at == Some(at as u32) {
            hs.max_seq = hs.max_seq.max(d.seq);
            kept.push((b, d));
        }
    }
    hs.damaged = kept;
    Ok(hs)
}

/// Step 2: the metadata map and its block.
fn load_meta<D: BlockDevice>(
    dev: &mut D,
    rd: &mut Reader,
    g: &Geometry,
    hs: &Headers,
    rep: &mut RecoveryReport,
) -> Result<(MetaMap, Option<MetaBlock>, bool), Error<D::Error>> {
    let salvage = rep.mode.salvaging();
    let mut metas: Vec<(u64, u32)> = hs
        .headers
        .iter()
        .enumerate()
        .filter_map(|(b, h)| h.filter(|h| h.kind == KIND_META).map(|h| (h.seq, b as u32)))
        .collect();
    sort_pairs(&mut metas);
    let mut found = None;
    let mut cut = false;
    for &(seq, b) in metas.iter().rev() {
        let (map, s) = scan_meta(dev, rd, g, b, seq, true)?;
        rep.blocks_scanned += 1;
        if let Stop::Corrupt { .. } = s.stop {
            if !salvage {
                return Err(corrupt(
                    b,
                    s.end,
                    "metadata record damaged (valid records written after it follow)",
                ));
            }
            rep.cuts.push(Cut {
                block: b,
                offset: s.end,
                what: "metadata record damaged",
            });
            rep.dropped_meta_keys
                .extend(keys_after(dev, rd, g, b, seq, s.end as usize)?);
            cut = true;
        }
        if s.records == 0 {
            // No valid snapshot: a block torn before its snapshot's sync
            // (or, cut above, a damaged one: an older block's map rules).
            rep.meta_snapshot_lost |= matches!(s.stop, Stop::Corrupt { .. });
            continue;
        }
        if let Stop::Torn { bytes } = s.stop {
            rep.torn_bytes += u64::from(bytes);
            rep.torn_at.push((b, s.end));
        }
        found = Some((map, b, seq, s));
        break;
    }
    let current = found.as_ref().map_or(0, |f| f.2);
    cut |= damaged_headers(hs, KIND_META, current, rep)?;
    let Some((map, block, seq, s)) = found else {
        return Ok((MetaMap::new(), None, cut));
    };
    if rep.meta_snapshot_lost {
        // Every key of the older map may now hold an older value.
        for k in map.keys() {
            if !rep.dropped_meta_keys.iter().any(|d| d == k) {
                rep.dropped_meta_keys.push(String::from(k));
            }
        }
    }
    let limit = g.block_offset(block) + u64::from(g.block_size);
    let appendable = match (g.erase_value, s.stop) {
        (Some(v), Stop::Blank) => {
            is_blank(dev, rd, g.block_offset(block) + u64::from(s.end), limit, v)?
        }
        _ => false,
    };
    Ok((
        map,
        Some(MetaBlock {
            block,
            seq,
            cursor: s.end,
            appendable: appendable && !cut,
            synced: false,
        }),
        cut,
    ))
}

/// Replays a meta block (SNAPSHOT first, then SET/REMOVE/MARK) through the
/// scanner: the map and where and why the records end.
pub(crate) fn scan_meta<D: BlockDevice>(
    dev: &mut D,
    rd: &mut Reader,
    g: &Geometry,
    block: u32,
    seq: u64,
    classify: bool,
) -> Result<(MetaMap, scan::Scanned), Error<D::Error>> {
    let mut map = MetaMap::new();
    let mut first = true;
    let s = scan::scan(dev, rd, g, block, seq, classify, |_, r, payload| {
        let ok = first == (r.kind == Kind::Snapshot)
            && match r.kind {
                Kind::Mark => payload.is_empty(),
                _ => meta::apply(&mut map, r.kind, payload),
            };
        first &= !ok;
        ok
    })?;
    Ok((map, s))
}

/// Calls `f` with each record valid under `seq` found at or after `from`
/// (P-aligned search; what salvage reports as dropped).
fn each_valid_after<D: BlockDevice>(
    dev: &mut D,
    rd: &mut Reader,
    g: &Geometry,
    block: u32,
    seq: u64,
    from: usize,
    mut f: impl FnMut(&format::RecHeader, &[u8]),
) -> Result<(), Error<D::Error>> {
    let mut at = from;
    let base = g.block_offset(block);
    let limit = base + u64::from(g.block_size);
    let p = g.program_size as usize;
    while let Some(off) = scan::find_valid_after(dev, rd, g, block, seq, at, false)?.at {
        let off = off as usize;
        let mut hdr = [0u8; REC_LEN];
        hdr.copy_from_slice(rd.fetch(dev, base + off as u64, REC_LEN, limit)?);
        let Some(r) = format::RecHeader::decode(&hdr) else {
            break;
        };
        let payload = rd.fetch(dev, base + (off + REC_LEN) as u64, r.len, limit)?;
        f(&r, payload);
        at = off + r.span(p);
    }
    Ok(())
}

/// The index after the highest entry in valid records at or after `from`.
fn entries_after<D: BlockDevice>(
    dev: &mut D,
    rd: &mut Reader,
    g: &Geometry,
    block: u32,
    seq: u64,
    from: usize,
) -> Result<u64, Error<D::Error>> {
    let mut hi = 0u64;
    each_valid_after(dev, rd, g, block, seq, from, |r, _| {
        if matches!(r.kind, Kind::Entry | Kind::First) {
            hi = hi.max(r.index.saturating_add(1));
        }
    })?;
    Ok(hi)
}

/// Keys named by valid SET/REMOVE records at or after `from` (what salvage
/// drops from a damaged meta block).
fn keys_after<D: BlockDevice>(
    dev: &mut D,
    rd: &mut Reader,
    g: &Geometry,
    block: u32,
    seq: u64,
    from: usize,
) -> Result<Vec<String>, Error<D::Error>> {
    let mut keys: Vec<String> = Vec::new();
    each_valid_after(dev, rd, g, block, seq, from, |r, payload| {
        if matches!(r.kind, Kind::Set | Kind::Remove) {
            let klen = payload.first().copied().unwrap_or(0) as usize;
            if let Some(k) = payload.get(1..1 + klen) {
                let k = String::from_utf8_lossy(k).into_owned();
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
    })?;
    Ok(keys)
}

/// A log block described for the walk.
struct Described {
    lb: LogBlock,
    v: View,
    trusted: bool,
    stop: Stop,
}

/// Describes a log block by its summary if trusted, else by scanning it.
/// `lazy_end`: where a strict open may leave the table unread, the
/// `prev_end` of the newer block's header. The summary is then trusted on
/// its trailer and end when the end equals it (R2 would compare just those),
/// and the table is checked at the first lookup into the block ([`Table`]),
/// so opening reads no tables. Otherwise the table is read and checked here:
/// the head, salvage, an end that differs, and the block below the head
/// (whose scan, if its table is bad, may end short and drop a head that
/// holds no record, R2).
#[allow(clippy::too_many_arguments)]
fn describe<D: BlockDevice>(
    dev: &mut D,
    rd: &mut Reader,
    g: &Geometry,
    block: u32,
    h: &BlockHeader,
    tail: &[u8; TAIL_LEN],
    head: bool,
    lazy_end: Option<u32>,
    rep: &mut RecoveryReport,
) -> Result<Described, Error<D::Error>> {
    let bs = g.block_size as usize;
    let hdr = header_area(g);
    if let Some(t) = format::decode_trailer(h.seq, &tail[END_LEN..]) {
        let p = g.program_size as usize;
        let end = format::table_at(&tail[..END_LEN], 0);
        let lazy = rep.mode == RecoveryMode::Strict
            && lazy_end == Some(end)
            && format::summary_sane(&t, end, hdr, bs, p);
        let checked = match format::table_offset(bs, hdr, t.count) {
            _ if lazy => Some((end, Table::default())),
            Some(tab_at) => {
                let mut table = vec![0u8; format::table_len(t.count)];
                rd.read(dev, g.block_offset(block) + tab_at as u64, &mut table)?;
                format::summary_trusted(h.seq, &t, &table, hdr, bs, p).map(|e| (e, Table::valid()))
            }
            None => None,
        };
        if let Some((end, table)) = checked {
            let lb = LogBlock {
                block,
                seq: h.seq,
                first: t.next - u64::from(t.count),
                n: t.count,
                loc: Loc::Summary {
                    disk_n: t.count,
                    table,
                },
            };
            let v = View {
                next: t.next,
                low: t.low,
                floor: t.floor,
                tail_open: t.flags & FLAG_TAIL_OPEN != 0,
                end,
            };
            return Ok(Described {
                lb,
                v,
                trusted: true,
                stop: Stop::Unknown,
            });
        }
    }
    let (m, s) = scan_log(dev, rd, g, block, h, head)?;
    rep.blocks_scanned += 1;
    let v = View {
        next: m.next,
        low: m.low,
        floor: m.floor,
        tail_open: m.tail_open,
        end: m.end,
    };
    let n = m.offsets.len() as u32;
    let lb = LogBlock {
        block,
        seq: h.seq,
        first: m.next - u64::from(n),
        n,
        loc: Loc::Mem(m),
    };
    Ok(Described {
        lb,
        v,
        trusted: false,
        stop: s.stop,
    })
}

/// Step 3's result.
struct Walked {
    /// Newest first.
    chain: Vec<LogBlock>,
    head_next: u64,
    head_end: u32,
    floor: u64,
    head_appendable: bool,
    cut: bool,
}

/// Why a walk from one head ended early.
enum Restart {
    /// R2: the head is a header without records; drop it.
    DropHead,
    /// Salvage: start again with this block (on the chain) as the head.
    From(u32, u64),
}

/// Step 3: walk the chain from the newest log block.
fn walk<D: BlockDevice>(
    dev: &mut D,
    rd: &mut Reader,
    g: &Geometry,
    hs: &Headers,
    rep: &mut RecoveryReport,
) -> Result<Option<Walked>, Error<D::Error>> {
    let mut logs: Vec<(u64, u32)> = hs
        .headers
        .iter()
        .enumerate()
        .filter_map(|(b, h)| h.filter(|h| h.kind == KIND_LOG).map(|h| (h.seq, b as u32)))
        .collect();
    sort_pairs(&mut logs);
    let Some(&(head_seq, mut head)) = logs.last() else {
        return damaged_headers(hs, KIND_LOG, 0, rep).map(|_| None);
    };
    let damaged_cut = damaged_headers(hs, KIND_LOG, head_seq, rep)?;
    let mut dropped = false;
    let mut cut_at: Option<u64> = None;
    loop {
        match walk_from(dev, rd, g, hs, &logs, head, cut_at.is_some(), rep)? {
            Ok(mut w) => {
                w.cut |= cut_at.is_some() || damaged_cut;
                if let Some(old_next) = cut_at {
                    if old_next > w.head_next {
                        rep.dropped_entries.push((w.head_next, old_next));
                    }
                }
                return Ok(Some(w));
            }
            Err(Restart::DropHead) if !dropped => {
                // The next head is the highest remaining log seq, which must
                // be the dropped head's predecessor.
                dropped = true;
                rep.dropped_header = true;
                let prev = hs.headers[head as usize].map_or(0, |h| h.prev);
                logs.pop();
                match logs.last() {
                    Some(&(s, b)) if s == prev => head = b,
                    _ => {
                        return Err(corrupt(
                            head,
                            0,
                            "the newest log block is a header without records that does not link to the next newest block",
                        ))
                    }
                }
            }
            Err(Restart::DropHead) => {
                return Err(corrupt(head, 0, "more than one log header without records"));
            }
            Err(Restart::From(b, old_next)) => {
                cut_at = Some(cut_at.unwrap_or(old_next).max(old_next));
                head = b;
            }
        }
    }
}

/// Damaged headers of `kind` above `newest` (the head, or the current meta
/// block): the block was live. Strict: corruption. Salvage: a cut; true if
/// one was ignored (what salvage writes must then outrank it).
fn damaged_headers<E>(
    hs: &Headers,
    kind: u8,
    newest: u64,
    rep: &mut RecoveryReport,
) -> Result<bool, Error<E>> {
    let what = if kind == KIND_LOG {
        DAMAGED_LOG_HEADER
    } else {
        DAMAGED_META_HEADER
    };
    let mut cut = false;
    for &(b, d) in &hs.damaged {
        if d.kind == kind && d.seq > newest {
            cut_or_fail(rep, b, 0, what)?;
            cut = true;
        }
    }
    Ok(cut)
}

/// One walk from `head` down the chain. `Err(Restart)` asks [`walk`] to
/// start again from another head.
#[allow(clippy::too_many_arguments)]
fn walk_from<D: BlockDevice>(
    dev: &mut D,
    rd: &mut Reader,
    g: &Geometry,
    hs: &Headers,
    logs: &[(u64, u32)],
    head: u32,
    salvaged_head: bool,
    rep: &mut RecoveryReport,
) -> Result<Result<Walked, Restart>, Error<D::Error>> {
    let salvage = rep.mode.salvaging();
    let count = g.block_count as usize;
    let mut chain: Vec<LogBlock> = Vec::new();
    let mut cur = head;
    let mut limit = u64::MAX;
    let mut need_next = 0u64;
    let mut head_next = 0u64;
    let mut head_end = 0u32;
    let mut floor = 0u64;
    let mut newer: Option<BlockHeader> = None;
    let mut head_appendable = false;
    let mut cut = false;
    let mut cut_hi = 0u64;
    loop {
        let h = hs.headers[cur as usize].ok_or(corrupt(
            cur,
            0,
            "chain link to a block without a header",
        ))?;
        rules::header_rule(&h).map_err(|w| corrupt(cur, 0, w))?;
        let is_head = newer.is_none();
        let lazy_end = newer.filter(|_| chain.len() >= 2).map(|n| n.prev_end);
        let tail = &hs.tails[cur as usize];
        let mut d = describe(dev, rd, g, cur, &h, tail, is_head, lazy_end, rep)?;
        // A rule broken between `newer` and this block: corruption, or in
        // salvage mode a cut with this block as the new head.
        let mut verdict: Result<(), &'static str> = Ok(());
        if let Some(n) = &newer {
            let n_holds = chain.len() == 1 && holds_records(dev, rd, g, &chain[0], n)?;
            match rules::end_rule(d.v.end, n, chain.len() == 1, n_holds) {
                Ok(End::DropHead) => return Ok(Err(Restart::DropHead)),
                Ok(End::Ok) => {}
                Err(w) => verdict = Err(w),
            }
            verdict = verdict
                .and_then(|_| rules::base_rule(&d.v, n))
                .and_then(|_| rules::floor_rule(&d.v, n));
            if d.v.tail_open && n.flags & FLAG_CONT == 0 {
                limit = limit.min(d.v.next.saturating_sub(1));
                if let Loc::Mem(m) = &mut d.lb.loc {
                    drop_incomplete(m);
                }
            }
        } else {
            if let (Err(what), false) = (rules::head_rule(d.trusted), salvaged_head) {
                cut_or_fail(rep, cur, 0, what)?;
                cut = true;
            }
            if let Stop::Corrupt { .. } = d.stop {
                if !salvage {
                    return Err(corrupt(
                        cur,
                        d.v.end,
                        "log record damaged (valid records written after it follow)",
                    ));
                }
                cut = true;
                if !salvaged_head {
                    rep.cuts.push(Cut {
                        block: cur,
                        offset: d.v.end,
                        what: "log record damaged",
                    });
                    cut_hi = entries_after(dev, rd, g, cur, h.seq, d.v.end as usize)?;
                }
            }
            if let Stop::Torn { bytes } = d.stop {
                rep.torn_bytes += u64::from(bytes);
                rep.torn_at.push((cur, d.v.end));
            }
            if d.v.tail_open {
                // The head's last entry never finished.
                limit = d.v.next.saturating_sub(1);
                if let Loc::Mem(m) = &mut d.lb.loc {
                    drop_incomplete(m);
                }
            }
            head_next = d.v.next.min(limit);
            head_end = d.v.end;
            if cut_hi > head_next {
                rep.dropped_entries.push((head_next, cut_hi));
            }
            need_next = head_next;
            if let (Loc::Mem(_), Some(ev), false, Stop::Blank) = (
                &d.lb.loc,
                g.erase_value,
                d.v.tail_open || cut || salvaged_head,
                d.stop,
            ) {
                let start = g.block_offset(cur);
                head_appendable = is_blank(
                    dev,
                    rd,
                    start + u64::from(d.v.end),
                    start + u64::from(g.block_size),
                    ev,
                )?;
            }
        }
        floor = floor.max(d.v.floor);
        d.lb.clip(limit);
        if newer.is_some() {
            verdict = verdict.and_then(|_| rules::gap_rule(d.lb.n, d.lb.end(), need_next));
        }
        if let Err(w) = verdict {
            cut_or_fail(rep, cur, d.v.end, w)?;
            return Ok(Err(Restart::From(cur, head_next)));
        }
        if d.lb.n > 0 {
            need_next = d.lb.first;
        }
        limit = limit.min(d.v.low);
        newer = Some(h);
        chain.push(d.lb);
        if rules::walk_done(need_next, floor, h.prev) || chain.len() >= count {
            break;
        }
        rules::link_rule(&h).map_err(|w| corrupt(cur, 0, w))?;
        let Ok(pos) = logs.binary_search_by(|&(s, _)| s.cmp(&h.prev)) else {
            let what = "an older block of the log is missing (never compacted)";
            // Salvage keeps what the walk reached; the entries below are gone.
            cut_or_fail(rep, cur, 0, what)?;
            rep.dropped_entries.push((floor, need_next));
            floor = need_next;
            cut = true;
            break;
        };
        cur = logs[pos].1;
    }
    if floor > head_next {
        return Err(corrupt(head, 0, "first index above the log's next index"));
    }
    Ok(Ok(Walked {
        chain,
        head_next,
        head_end,
        floor,
        head_appendable,
        cut,
    }))
}

/// True if the head block holds a valid record anywhere (R2).
fn holds_records<D: BlockDevice>(
    dev: &mut D,
    rd: &mut Reader,
    g: &Geometry,
    head: &LogBlock,
    h: &BlockHeader,
) -> Result<bool, Error<D::Error>> {
    if let Loc::Mem(m) = &head.loc {
        if m.end as usize > header_area(g) {
            return Ok(true);
        }
    }
    let f = scan::find_valid_after(dev, rd, g, head.block, h.seq, header_area(g), false)?;
    Ok(f.at.is_some())
}

/// Opens whatever log the device holds (an all-blank device is an empty log).
pub(crate) fn open<D: BlockDevice>(
    dev: &mut D,
    window: usize,
    mode: RecoveryMode,
) -> Result<Recovered, Error<D::Error>> {
    let g = dev.geometry();
    let count = g.block_count as usize;
    let mut rd = Reader::new(window);
    let mut report = RecoveryReport {
        mode,
        ..RecoveryReport::default()
    };
    let hs = read_headers(dev, &mut rd, &g)?;
    if hs.max_seq >= format::SEQ_LIMIT - 1 {
        return Err(corrupt(0, 0, "sequence number space exhausted"));
    }
    let (meta, meta_block, meta_cut) = load_meta(dev, &mut rd, &g, &hs, &mut report)?;
    let walked = walk(dev, &mut rd, &g, &hs, &mut report)?;
    // Step 4: assemble.
    let mut used = vec![false; count];
    if let Some(mb) = &meta_block {
        used[mb.block as usize] = true;
    }
    // After a salvage cut the log continues 2^31 seqs above the highest it
    // saw: damage may have made newer headers unrecognisable (more than one
    // bit), and a seq reused in a block that still holds such a block's
    // records would bring them back (FORMAT.md, "Strict and salvage").
    let next_seq = if report.salvaged() {
        (hs.max_seq + 1).saturating_add(SALVAGE_SEQ_GAP)
    } else {
        hs.max_seq + 1
    };
    let Some(w) = walked else {
        report.device_reads = rd.reads;
        return Ok(Recovered {
            blocks: VecDeque::new(),
            head_appendable: false,
            head_end: 0,
            floor: 0,
            first: 0,
            next: None,
            meta,
            meta_block,
            used,
            next_seq,
            report,
            log_cut: false,
            meta_cut,
        });
    };
    let mut chain = w.chain;
    for b in &chain {
        used[b.block as usize] = true;
    }
    chain.reverse();
    let next = w.head_next;
    let first = chain
        .iter()
        .find(|b| b.n > 0)
        .map_or(next, |b| b.first)
        .max(w.floor);
    report.device_reads = rd.reads;
    Ok(Recovered {
        blocks: chain.into(),
        head_appendable: w.head_appendable,
        head_end: w.head_end,
        floor: w.floor,
        first,
        next: Some(next),
        meta,
        meta_block,
        used,
        next_seq,
        report,
        log_cut: w.cut,
        meta_cut,
    })
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
