//! Checks a log image block by block and record by record: block headers,
//! every record's CRC, every summary (trailer and table) against the block's
//! own replay, and the chain as opening walks it. Read-only, over any
//! [`BlockDevice`]; the `blockwal verify` and `inspect` commands print its
//! [`Report`].
//!
//! What counts as a problem: anything a crash cannot leave behind, in a
//! block the log uses. The categories are recovery's (FORMAT.md, "The record
//! scanner"): records that stop at an invalid record followed by a valid
//! `SYNCED` one are corruption (a problem); a stop with no such record is a
//! torn write (a note: it is also what a flip in the newest write of a chain
//! looks like); a sealed block without its summary is a note; damage in
//! blocks the log no longer uses (freed blocks, stale copies) is listed
//! apart as not live.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::device::{BlockDevice, Geometry};
use crate::format::{
    self, BlockHeader, RecHeader, Trailer, FLAG_CONT, FLAG_TAIL_OPEN, KIND_LOG, REC_LEN,
    TRAILER_LEN,
};
use crate::index::{Loc, MemBlock};

use crate::recovery::{self, Reader, Stop};
use crate::Error;

/// A summary differing from the expected one in at most this many bytes is
/// a damaged summary; more, and it is a stale one (or none at all).
const DAMAGE_BYTES: usize = 4;

/// What a block holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    /// No valid header: never used, freed, or a header torn by a crash.
    Free,
    /// A log block.
    Log,
    /// A metadata block.
    Meta,
}

/// The state of a log block's summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SummaryState {
    /// Not a log block, or no summary written (the head, or a block sealed
    /// just before a crash).
    Absent,
    /// A summary that matches the block's records exactly.
    Valid,
    /// A summary that does not match (see the report's problems).
    Bad,
}

/// One block as found on the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockReport {
    /// Block number.
    pub block: u32,
    /// What the header says it is.
    pub kind: BlockKind,
    /// Sequence number (0 for free blocks).
    pub seq: u64,
    /// Log: `seq` of the previous block of the chain.
    pub prev: u64,
    /// Log: the index the block's first entry had when it was opened.
    pub base: u64,
    /// Log: the first index of the log when the block was opened.
    pub floor: u64,
    /// Log: the block begins with the rest of an entry of an older block.
    pub cont: bool,
    /// Valid records read from the block.
    pub records: u32,
    /// Log: entries starting in the block (`first..next`), by its replay.
    pub entries: (u64, u64),
    /// Offset inside the block where its valid records end.
    pub end: u32,
    /// Log: its summary.
    pub summary: SummaryState,
    /// On the live chain of the log, or the current metadata block.
    pub live: bool,
}

/// A problem or note, located on the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Block number.
    pub block: u32,
    /// Byte offset on the device (not inside the block).
    pub offset: u64,
    /// What is wrong, in words.
    pub what: &'static str,
}

/// Everything [`verify`] found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The device's geometry.
    pub geometry: Option<Geometry>,
    /// Every block, in device order.
    pub blocks: Vec<BlockReport>,
    /// Corruption, sorted by device offset: the first one is the first
    /// problem on the device. Empty: the log is sound.
    pub problems: Vec<Finding>,
    /// What a crash can leave behind (torn last records, missing summaries).
    pub notes: Vec<Finding>,
    /// Damage found in blocks the log no longer uses (freed blocks, stale
    /// copies): not live, so not corruption of the log.
    pub not_live: Vec<Finding>,
    /// The log as opening sees it: first index (if any entry).
    pub first_index: Option<u64>,
    /// Last index (if any entry).
    pub last_index: Option<u64>,
    /// The index the next append must use (`None`: a new log).
    pub next_index: Option<u64>,
    /// Blocks on the live chain, oldest first.
    pub chain: Vec<u32>,
    /// Blocks free for new use.
    pub free_blocks: u32,
    /// The metadata map.
    pub meta: Vec<(String, Vec<u8>)>,
    /// Opening the log failed with this (also listed as a problem).
    pub open_error: Option<&'static str>,
    /// What a strict open found (torn bytes dropped, blocks scanned), when
    /// it succeeded.
    pub recovery: Option<crate::RecoveryReport>,
}

impl Report {
    /// The first problem on the device, if any.
    pub fn first_problem(&self) -> Option<&Finding> {
        self.problems.first()
    }

    /// True when no problem was found.
    pub fn is_sound(&self) -> bool {
        self.problems.is_empty()
    }
}

struct Ctx<'a, D: BlockDevice> {
    dev: &'a mut D,
    rd: Reader,
    g: Geometry,
    hdr: usize,
    problems: Vec<Finding>,
    notes: Vec<Finding>,
}

impl<D: BlockDevice> Ctx<'_, D> {
    fn problem(&mut self, block: u32, at: usize, what: &'static str) {
        let offset = self.g.block_offset(block) + at as u64;
        self.problems.push(Finding {
            block,
            offset,
            what,
        });
    }

    fn note(&mut self, block: u32, at: usize, what: &'static str) {
        let offset = self.g.block_offset(block) + at as u64;
        self.notes.push(Finding {
            block,
            offset,
            what,
        });
    }

    fn read(&mut self, off: u64, buf: &mut [u8]) -> Result<(), Error<D::Error>> {
        self.dev.read(off, buf).map_err(Error::Device)
    }

    /// True if a record valid under `seq` starts at `at` in `block`.
    fn record_at(&mut self, block: u32, seq: u64, at: usize) -> Result<bool, Error<D::Error>> {
        let bs = self.g.block_size as usize;
        if at + REC_LEN > bs {
            return Ok(false);
        }
        let base = self.g.block_offset(block);
        let limit = base + bs as u64;
        let mut h = [0u8; REC_LEN];
        h.copy_from_slice(self.rd.fetch(self.dev, base + at as u64, REC_LEN, limit)?);
        let Some(r) = RecHeader::decode(&h) else {
            return Ok(false);
        };
        if at + REC_LEN + r.len > bs {
            return Ok(false);
        }
        let payload = self
            .rd
            .fetch(self.dev, base + (at + REC_LEN) as u64, r.len, limit)?;
        Ok(format::record_valid(seq, &h, payload))
    }
}

/// Checks everything on `dev` (read only). Device errors are returned;
/// everything else that is wrong is in the report.
pub fn verify<D: BlockDevice>(dev: &mut D) -> Result<Report, Error<D::Error>> {
    let g = dev.geometry();
    g.validate().map_err(Error::Geometry)?;
    let mut cx = Ctx {
        dev,
        rd: Reader::new(64 << 10),
        g,
        hdr: recovery::header_area(&g),
        problems: Vec::new(),
        notes: Vec::new(),
    };
    let mut report = Report {
        geometry: Some(g),
        ..Report::default()
    };

    // Headers first: the highest seq and the links tell damaged headers apart.
    let mut raw = vec![[0u8; format::HEADER_LEN]; g.block_count as usize];
    let mut headers = Vec::with_capacity(g.block_count as usize);
    let mut newest = (0u64, 0u64);
    for b in 0..g.block_count {
        let mut hb = [0u8; format::HEADER_LEN];
        cx.read(g.block_offset(b), &mut hb)?;
        let h = BlockHeader::decode(&hb).filter(|h| h.block_size == g.block_size);
        if let Some(h) = &h {
            if h.kind == KIND_LOG {
                newest.0 = newest.0.max(h.seq);
            } else {
                newest.1 = newest.1.max(h.seq);
            }
        }
        raw[b as usize] = hb;
        headers.push(h);
    }

    // Seqs that log blocks link to: a damaged header with one was live.
    let linked: Vec<u64> = headers
        .iter()
        .flatten()
        .filter(|h| h.kind == KIND_LOG)
        .map(|h| h.prev)
        .collect();
    for b in 0..g.block_count {
        let r = match headers[b as usize] {
            None => check_free(&mut cx, b, &raw[b as usize], newest, &linked)?,
            Some(h) if h.kind == KIND_LOG => check_log(&mut cx, b, &h)?,
            Some(h) => check_meta(&mut cx, b, &h)?,
        };
        report.blocks.push(r);
    }

    // The chain, as opening walks it.
    match recovery::open(cx.dev, 64 << 10, recovery::RecoveryMode::Strict) {
        Ok(rec) => {
            report.recovery = Some(rec.report.clone());
            let (first, next) = (rec.first, rec.next);
            let empty = next.is_none_or(|n| first >= n);
            report.first_index = (!empty).then_some(first);
            report.last_index = if empty { None } else { next.map(|n| n - 1) };
            report.next_index = next;
            report.chain = rec.blocks.iter().map(|b| b.block).collect();
            report.free_blocks = rec.used.iter().filter(|u| !**u).count() as u32;
            report.meta = rec
                .meta
                .iter()
                .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), v.clone()))
                .collect();
            for lb in &rec.blocks {
                let br = &mut report.blocks[lb.block as usize];
                br.live = true;
                if br.summary == SummaryState::Absent && matches!(lb.loc, Loc::Summary { .. }) {
                    // Opening trusted a trailer that the records contradict.
                    br.summary = SummaryState::Bad;
                }
            }
            if let Some(mb) = rec.meta_block {
                report.blocks[mb.block as usize].live = true;
            }
            // The log opened: damage outside its live blocks is not live.
            let (live, dead): (Vec<Finding>, Vec<Finding>) = core::mem::take(&mut cx.problems)
                .into_iter()
                .partition(|f| report.blocks[f.block as usize].live);
            cx.problems = live;
            report.not_live = dead;
            // A sealed block of the chain without its summary: a crash
            // between sealing and writing it, or a summary lost since.
            let head = report.chain.last().copied();
            for &b in &report.chain {
                let br = &report.blocks[b as usize];
                if Some(b) != head && br.summary == SummaryState::Absent {
                    cx.note(
                        b,
                        g.block_size as usize - TRAILER_LEN,
                        "sealed block without a summary (read record by record)",
                    );
                }
            }
        }
        Err(Error::Corrupt {
            block,
            offset,
            what,
        }) => {
            report.open_error = Some(what);
            cx.problem(block, offset as usize, what);
        }
        Err(Error::Geometry(what)) => {
            report.open_error = Some(what);
            cx.problem(0, 0, what);
        }
        Err(e) => return Err(e),
    }

    cx.problems.sort_by_key(|f| f.offset);
    cx.notes.sort_by_key(|f| f.offset);
    report.problems = cx.problems;
    report.notes = cx.notes;
    Ok(report)
}

fn blank_report(block: u32, kind: BlockKind) -> BlockReport {
    BlockReport {
        block,
        kind,
        seq: 0,
        prev: 0,
        base: 0,
        floor: 0,
        cont: false,
        records: 0,
        entries: (0, 0),
        end: 0,
        summary: SummaryState::Absent,
        live: false,
    }
}

/// A block without a valid header is free, unless its header is one bit
/// from valid and its records are valid under that header's `seq`: then the
/// header is damaged. Above the newest block of its kind, or linked to by a
/// log block, it was live (corruption); else it is a freed block (not live:
/// a note).
fn check_free<D: BlockDevice>(
    cx: &mut Ctx<'_, D>,
    b: u32,
    raw: &[u8; format::HEADER_LEN],
    newest: (u64, u64),
    linked: &[u64],
) -> Result<BlockReport, Error<D::Error>> {
    let r = blank_report(b, BlockKind::Free);
    if BlockHeader::decode(raw).is_some() {
        cx.problem(b, 0, "block header written with another block size");
        return Ok(r);
    }
    let Some(d) = BlockHeader::decode_damaged(raw) else {
        return Ok(r);
    };
    let hdr = cx.hdr;
    if d.seq != 0 && cx.record_at(b, d.seq, hdr)? {
        let newest = if d.kind == KIND_LOG {
            newest.0
        } else {
            newest.1
        };
        if d.seq > newest || linked.contains(&d.seq) {
            cx.problem(b, 0, "block header damaged: the block holds valid records");
        } else {
            cx.note(b, 0, "damaged header of a freed block (not live)");
        }
    }
    Ok(r)
}

fn check_log<D: BlockDevice>(
    cx: &mut Ctx<'_, D>,
    b: u32,
    h: &BlockHeader,
) -> Result<BlockReport, Error<D::Error>> {
    let g = cx.g;
    let (bs, p) = (g.block_size as usize, g.program_size as usize);
    let (m, scanned) = recovery::scan_log(cx.dev, &mut cx.rd, &g, b, h, true)?;
    let stop = scanned.stop;
    let n = m.offsets.len();
    let mut r = blank_report(b, BlockKind::Log);
    r.seq = h.seq;
    r.prev = h.prev;
    r.base = h.base;
    r.floor = h.floor;
    r.cont = h.flags & FLAG_CONT != 0;
    r.entries = (m.next - n as u64, m.next);
    r.end = m.end;
    r.records = scanned.records;

    // The summary this replay calls for, compared byte for byte. A block
    // whose last entry never finished (a crash) is sealed without it.
    let want = expected_summary(&m, h.seq, p);
    let at = bs - want.len();
    let mut have = vec![0u8; want.len()];
    cx.read(g.block_offset(b) + at as u64, &mut have)?;
    let mut diff: Vec<usize> = (0..want.len()).filter(|&i| want[i] != have[i]).collect();
    if !diff.is_empty() && m.tail_open {
        let mut cut = m.clone();
        recovery::drop_incomplete(&mut cut);
        let alt = expected_summary(&cut, h.seq, p);
        let mut alt_have = vec![0u8; alt.len()];
        cx.read(g.block_offset(b) + (bs - alt.len()) as u64, &mut alt_have)?;
        if alt == alt_have {
            diff.clear();
        }
    }
    let mut tb = [0u8; TRAILER_LEN];
    cx.read(g.block_offset(b) + (bs - TRAILER_LEN) as u64, &mut tb)?;
    let trailer = format::decode_trailer(h.seq, &tb);
    if diff.is_empty() {
        r.summary = SummaryState::Valid;
        return Ok(r);
    }
    if diff.len() <= DAMAGE_BYTES {
        r.summary = SummaryState::Bad;
        cx.problem(
            b,
            at + diff[0],
            "summary damaged (differs from the block's records)",
        );
        return Ok(r);
    }
    if let Some(t) = trailer {
        // A summary written under this block's seq: it was written over
        // durable records, so the records must run exactly to its end.
        r.summary = SummaryState::Bad;
        let table_len = 4 * (t.count as usize + 1);
        let ok_len = table_len + TRAILER_LEN + cx.hdr <= bs;
        let tab_at = bs - TRAILER_LEN - table_len.min(bs - TRAILER_LEN);
        let mut tab = vec![0u8; if ok_len { table_len } else { 0 }];
        cx.read(g.block_offset(b) + tab_at as u64, &mut tab)?;
        if !ok_len || format::seeded_crc(h.seq, &tab) != t.table_crc {
            cx.problem(
                b,
                tab_at.min(bs - TRAILER_LEN),
                "summary table checksum mismatch",
            );
        } else {
            let end = format::table_at(&tab, t.count as usize) as usize;
            if end > m.end as usize {
                cx.problem(
                    b,
                    m.end as usize,
                    "invalid record before the end the summary records",
                );
            } else {
                cx.problem(
                    b,
                    bs - TRAILER_LEN,
                    "summary does not match the block's records",
                );
            }
        }
        return Ok(r);
    }
    // No summary: the head, or a block sealed just before a crash. A valid
    // SYNCED record after the point where the scan stopped means a damaged
    // record (FORMAT.md, "The record scanner").
    match stop {
        Stop::Corrupt { .. } => cx.problem(
            b,
            m.end as usize,
            "invalid record followed by valid ones written after a sync (damaged record)",
        ),
        Stop::Torn { .. } => cx.note(
            b,
            m.end as usize,
            "records end in an invalid record (torn last write, or the newest write damaged)",
        ),
        _ => {}
    }
    let _ = n;
    Ok(r)
}

/// The summary area a block with replay `m` gets when it is sealed.
fn expected_summary(m: &MemBlock, seq: u64, p: usize) -> Vec<u8> {
    let mut table = m.offsets.clone();
    table.push(m.end);
    let t = Trailer {
        low: m.low,
        floor: m.floor,
        next: m.next,
        count: m.offsets.len() as u32,
        flags: if m.tail_open { FLAG_TAIL_OPEN } else { 0 },
        table_crc: 0,
    };
    format::encode_summary(seq, &table, &t, p)
}

fn check_meta<D: BlockDevice>(
    cx: &mut Ctx<'_, D>,
    b: u32,
    h: &BlockHeader,
) -> Result<BlockReport, Error<D::Error>> {
    let g = cx.g;
    let mut r = blank_report(b, BlockKind::Meta);
    r.seq = h.seq;
    let (_, s) = recovery::scan_meta(cx.dev, &mut cx.rd, &g, b, h.seq, true)?;
    r.records = s.records;
    r.end = s.end;
    let at = s.end as usize;
    match s.stop {
        Stop::Corrupt { .. } => cx.problem(
            b,
            at,
            "invalid metadata record followed by valid ones written after a sync (damaged record)",
        ),
        _ if r.records == 0 => cx.note(
            b,
            at,
            "metadata block without a valid snapshot (torn by a crash, or damaged)",
        ),
        Stop::Torn { .. } => cx.note(
            b,
            at,
            "metadata records end in an invalid record (torn last write)",
        ),
        _ => {}
    }
    Ok(r)
}
