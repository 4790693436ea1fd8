//! The one record scanner (FORMAT.md, "The record scanner"): one loop over a
//! block's valid records, and why it stopped. Recovery, verify and salvage
//! all read records through it.

use alloc::vec::Vec;

use crate::device::{BlockDevice, Geometry};
use crate::format::{self, BlockHeader, Kind, RecHeader, FLAG_CONT, REC_LEN};
use crate::index::MemBlock;
use crate::Error;

/// Reads ahead through a window so a scan costs one device read per window,
/// not two per record. Records larger than the window are read on their own.
pub(crate) struct Reader {
    buf: Vec<u8>,
    at: u64,
    big: Vec<u8>,
    pub(crate) window: usize,
    /// Device reads issued (recovery reports them; tests bound them).
    pub(crate) reads: u64,
}

impl Reader {
    pub fn new(window: usize) -> Self {
        Reader {
            buf: Vec::new(),
            at: 0,
            big: Vec::new(),
            window: window.max(64),
            reads: 0,
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
        self.reads += 1;
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

    /// Bytes from `off` on already in the window (0 if `off` is outside it).
    fn buffered(&self, off: u64) -> usize {
        let end = self.at + self.buf.len() as u64;
        if off >= self.at && off < end {
            (end - off) as usize
        } else {
            0
        }
    }

    /// Reads `buf.len()` bytes at `off` directly (counted).
    pub fn read<D: BlockDevice>(
        &mut self,
        dev: &mut D,
        off: u64,
        buf: &mut [u8],
    ) -> Result<(), Error<D::Error>> {
        self.reads += 1;
        dev.read(off, buf).map_err(Error::Device)
    }
}

/// Why a scan stopped (FORMAT.md, "The record scanner").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// No record header fits before the end of the records area.
    Full,
    /// Blank bytes (erase value, or zeros on devices without erase).
    Blank,
    /// An invalid record with no `SYNCED` record after it: a write lost or
    /// torn by a crash. `bytes`: how far non-blank bytes reach past the end.
    Torn { bytes: u32 },
    /// An invalid record followed by a valid `SYNCED` one at `proof`: the
    /// record at the end was durable and has changed.
    Corrupt { proof: u32 },
    /// Not classified (the caller did not ask).
    Unknown,
}

/// Where a scan ended and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Scanned {
    /// Offset (in the block) where the valid records end.
    pub end: u32,
    /// Valid records read.
    pub records: u32,
    pub stop: Stop,
}

/// CRC bytes the proof search may spend per block, in block sizes.
const PROOF_BUDGET: usize = 8;

/// Scans `block`'s records under `seq` from the header area on. `accept`
/// sees each record whose CRC is valid (offset, header, payload) and returns
/// false to stop before it (it breaks the block's own rules). With
/// `classify`, the stop is classified (a search after the end).
pub(crate) fn scan<D: BlockDevice>(
    dev: &mut D,
    rd: &mut Reader,
    g: &Geometry,
    block: u32,
    seq: u64,
    classify: bool,
    mut accept: impl FnMut(usize, &RecHeader, &[u8]) -> bool,
) -> Result<Scanned, Error<D::Error>> {
    let bs = g.block_size as usize;
    let p = g.program_size as usize;
    let base = g.block_offset(block);
    let limit = base + bs as u64;
    let mut off = header_area(g);
    let mut records = 0;
    loop {
        if off + REC_LEN > bs {
            return Ok(Scanned {
                end: off as u32,
                records,
                stop: Stop::Full,
            });
        }
        let mut hdr = [0u8; REC_LEN];
        hdr.copy_from_slice(rd.fetch(dev, base + off as u64, REC_LEN, limit)?);
        let step = match RecHeader::decode(&hdr) {
            Some(r) if off + r.span(p) <= bs => {
                let payload = rd.fetch(dev, base + (off + REC_LEN) as u64, r.len, limit)?;
                (format::record_valid(seq, &hdr, payload) && accept(off, &r, payload))
                    .then_some(r.span(p))
            }
            _ => None,
        };
        let Some(step) = step else {
            let stop = if classify {
                classify_stop(dev, rd, g, block, seq, off)?
            } else {
                Stop::Unknown
            };
            return Ok(Scanned {
                end: off as u32,
                records,
                stop,
            });
        };
        off += step;
        records += 1;
    }
}

/// Classifies a stop at `end`: a valid `SYNCED` record at or after it is a
/// proof of corruption; else blank or torn.
fn classify_stop<D: BlockDevice>(
    dev: &mut D,
    rd: &mut Reader,
    g: &Geometry,
    block: u32,
    seq: u64,
    end: usize,
) -> Result<Stop, Error<D::Error>> {
    let found = find_valid_after(dev, rd, g, block, seq, end, true)?;
    if let Some(proof) = found.at {
        return Ok(Stop::Corrupt { proof });
    }
    if found.last_non_blank <= end {
        return Ok(Stop::Blank);
    }
    Ok(Stop::Torn {
        bytes: (found.last_non_blank - end) as u32,
    })
}

/// What [`find_valid_after`] saw.
pub(crate) struct Found {
    /// Offset of the first valid record found.
    pub at: Option<u32>,
    /// End of the last non-blank program unit seen (scanned ones only).
    pub last_non_blank: usize,
}

/// The first `P`-aligned offset at or after `from` where a record valid under
/// `seq` (and carrying `SYNCED`, if `synced_only`) starts, within a budget
/// of CRC bytes (a hostile image cannot make it quadratic).
pub(crate) fn find_valid_after<D: BlockDevice>(
    dev: &mut D,
    rd: &mut Reader,
    g: &Geometry,
    block: u32,
    seq: u64,
    from: usize,
    synced_only: bool,
) -> Result<Found, Error<D::Error>> {
    let bs = g.block_size as usize;
    let p = g.program_size as usize;
    let blank = g.erase_value.unwrap_or(0);
    let base = g.block_offset(block);
    let limit = base + bs as u64;
    let mut budget = PROOF_BUDGET * bs;
    let mut at = format::round_up(from, p);
    let mut last_non_blank = from;
    // A record header of blank bytes is no record (its kind is invalid), so
    // offsets whose header and program unit are all blank are skipped in
    // bulk: the rest of a head block costs a byte compare per byte, not a
    // header decode per offset.
    let span = REC_LEN.max(p);
    let skip_blank = RecHeader::decode(&[blank; REC_LEN]).is_none();
    while at < bs {
        if skip_blank {
            // What the window holds first (no read), else a new window.
            let held = rd.buffered(base + at as u64);
            let n = (bs - at).min(if held >= span { held } else { rd.window });
            let chunk = rd.fetch(dev, base + at as u64, n, limit)?;
            let q = chunk.iter().position(|&b| b != blank).unwrap_or(n);
            if q == bs - at {
                break;
            }
            // Offsets `at + k` with `k + span <= q` hold only blank bytes.
            let skip = (q + 1).saturating_sub(span) / p * p;
            if skip > 0 {
                at += skip;
                continue;
            }
        }
        let n = p.min(bs - at).max(1);
        let unit = rd.fetch(dev, base + at as u64, n, limit)?;
        if unit.iter().any(|&b| b != blank) {
            last_non_blank = at + n;
        }
        if at + REC_LEN <= bs {
            let mut hdr = [0u8; REC_LEN];
            hdr.copy_from_slice(rd.fetch(dev, base + at as u64, REC_LEN, limit)?);
            if let Some(r) = RecHeader::decode(&hdr) {
                if (r.synced || !synced_only) && at + REC_LEN + r.len <= bs && budget >= r.len {
                    budget = budget.saturating_sub(r.len + REC_LEN);
                    let payload = rd.fetch(dev, base + (at + REC_LEN) as u64, r.len, limit)?;
                    if format::record_valid(seq, &hdr, payload) {
                        return Ok(Found {
                            at: Some(at as u32),
                            last_non_blank,
                        });
                    }
                }
            }
        }
        at += p;
    }
    Ok(Found {
        at: None,
        last_non_blank,
    })
}

/// Size of the header area: the header padded to the program unit.
pub(crate) fn header_area(g: &Geometry) -> usize {
    format::round_up(format::HEADER_LEN, g.program_size as usize)
}

/// A log block's replay state while scanning (FORMAT.md, "Replaying a log
/// block"); `accept` is the scanner's rule callback.
pub(crate) struct Replay {
    pub m: MemBlock,
    pending: Option<u64>,
    bs: usize,
    p: usize,
}

impl Replay {
    pub fn new(g: &Geometry, h: &BlockHeader) -> Self {
        Replay {
            m: MemBlock {
                offsets: Vec::new(),
                end: header_area(g) as u32,
                next: h.base,
                low: h.base,
                floor: h.floor,
                tail_open: false,
            },
            pending: if h.flags & FLAG_CONT != 0 {
                h.base.checked_sub(1)
            } else {
                None
            },
            bs: g.block_size as usize,
            p: g.program_size as usize,
        }
    }

    /// True if the record follows the block's state (and applies it).
    pub fn accept(&mut self, off: usize, r: &RecHeader) -> bool {
        let m = &mut self.m;
        let starts = matches!(r.kind, Kind::Entry | Kind::First);
        let room = self.bs.saturating_sub(format::summary_len(
            m.offsets.len() + starts as usize,
            self.p,
        ));
        if off + r.span(self.p) > room {
            return false;
        }
        match r.kind {
            Kind::Entry | Kind::First => {
                if self.pending.is_some() || r.index != m.next || r.index == u64::MAX {
                    return false;
                }
                m.offsets.push(off as u32);
                m.next = r.index + 1;
                if r.kind == Kind::First {
                    self.pending = Some(r.index);
                }
            }
            Kind::Middle | Kind::Last => {
                if self.pending != Some(r.index) {
                    return false;
                }
                if r.kind == Kind::Last {
                    self.pending = None;
                }
            }
            Kind::Truncate => {
                let t = r.index;
                if t >= m.next {
                    return false;
                }
                let first = m.next - m.offsets.len() as u64;
                m.offsets.truncate(t.saturating_sub(first) as usize);
                if self.pending.is_some_and(|e| e >= t) {
                    self.pending = None;
                }
                m.next = t;
                m.low = m.low.min(t);
            }
            Kind::Compact => {
                m.floor = m.floor.max(r.index);
                if r.index > m.next {
                    m.offsets.clear();
                    m.next = r.index;
                    self.pending = None;
                }
            }
            _ => return false,
        }
        m.end = (off + r.span(self.p)) as u32;
        true
    }

    pub fn finish(mut self, end: u32) -> MemBlock {
        self.m.end = end;
        self.m.tail_open = self.pending.is_some();
        self.m
    }
}

/// Replays one log block's records.
pub(crate) fn scan_log<D: BlockDevice>(
    dev: &mut D,
    rd: &mut Reader,
    g: &Geometry,
    block: u32,
    h: &BlockHeader,
    classify: bool,
) -> Result<(MemBlock, Scanned), Error<D::Error>> {
    let mut replay = Replay::new(g, h);
    let s = scan(dev, rd, g, block, h.seq, classify, |off, r, _| {
        replay.accept(off, r)
    })?;
    Ok((replay.finish(s.end), s))
}

/// Turns the replay of a block whose last entry never finished into the
/// replay without that entry, as its summary will record it. The block's
/// end (where its records end) stays: the FIRST record is still there.
pub(crate) fn drop_incomplete(m: &mut MemBlock) {
    let e = m.next.saturating_sub(1);
    let first = m.next - m.offsets.len() as u64;
    if e >= first {
        let k = (e - first) as usize;
        m.offsets.truncate(k);
    }
    m.next = e;
    m.low = m.low.min(e);
    m.tail_open = false;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::mem::MemDevice;
    use crate::format::{push_record, KIND_LOG};

    const G: Geometry = Geometry {
        block_size: 512,
        program_size: 4,
        block_count: 4,
        erase_value: Some(0xFF),
    };

    /// Block 1: a header, then records (synced flag per record), then
    /// erased space. Returns the device and each record's offset.
    fn block(flags: &[bool]) -> (MemDevice, Vec<usize>) {
        let h = BlockHeader {
            kind: KIND_LOG,
            flags: 0,
            seq: 9,
            prev: 0,
            base: 1,
            floor: 1,
            prev_end: 0,
            block_size: 512,
        };
        let mut img = vec![0xFFu8; 512 * 4];
        img[512..512 + 48].copy_from_slice(&h.encode());
        let mut recs = Vec::new();
        let mut offs = Vec::new();
        for (i, &s) in flags.iter().enumerate() {
            offs.push(header_area(&G) + recs.len());
            push_record(&mut recs, 4, 9, Kind::Entry, s, i as u64 + 1, &[b"payload"]);
        }
        let at = 512 + header_area(&G);
        img[at..at + recs.len()].copy_from_slice(&recs);
        (MemDevice::from_image(G, img), offs)
    }

    fn stop_after_flip(flags: &[bool], flip: Option<usize>) -> (u32, Stop) {
        let (mut dev, offs) = block(flags);
        if let Some(k) = flip {
            dev.image_mut()[512 + offs[k] + 18] ^= 1;
        }
        let hdr = BlockHeader::decode(&dev.image()[512..560]).unwrap();
        let mut rd = Reader::new(64);
        let (_, s) = scan_log(&mut dev, &mut rd, &G, 1, &hdr, true).unwrap();
        (s.end, s.stop)
    }

    /// FORMAT.md, "The record scanner": why a scan stopped.
    #[test]
    fn stop_reasons_table() {
        let (_, offs) = block(&[true, false, true, false]);
        let cases: [(&[bool], Option<usize>, usize, &str); 5] = [
            (&[true, false, true], None, 3, "blank"),
            // A flip before a SYNCED record: it was durable.
            (&[true, false, true], Some(0), 0, "corrupt"),
            (&[true, false, true], Some(1), 1, "corrupt"),
            // A flip in the newest write: torn.
            (&[true, false, true, false], Some(2), 2, "torn"),
            (&[true, false, true, false], Some(3), 3, "torn"),
        ];
        for (flags, flip, at, want) in cases {
            let (end, stop) = stop_after_flip(flags, flip);
            let end_at = if at < offs.len() {
                offs[at] as u32
            } else {
                (offs[2] + (offs[1] - offs[0])) as u32
            };
            assert_eq!(end, end_at, "{flags:?} flip {flip:?}");
            let got = match stop {
                Stop::Blank => "blank",
                Stop::Corrupt { .. } => "corrupt",
                Stop::Torn { .. } => "torn",
                Stop::Full => "full",
                Stop::Unknown => "unknown",
            };
            assert_eq!(got, want, "{flags:?} flip {flip:?}");
        }
    }

    /// The search after a stop, against a byte-by-byte reference, on flash
    /// (erased 0xFF, 4-byte units) and files (zeros, 1-byte units): a
    /// SYNCED record at any offset after a blank stretch, with or without a
    /// stray non-blank byte before it; and blank or stray-only tails.
    #[test]
    fn find_valid_after_matches_a_byte_by_byte_search() {
        let file = Geometry {
            program_size: 1,
            erase_value: None,
            ..G
        };
        for g in [G, file] {
            let (p, blank) = (g.program_size as usize, g.erase_value.unwrap_or(0));
            // Any record, and one whose CRC begins with a blank byte (its
            // first non-blank byte is not its first byte).
            let with = |k: u16| {
                let mut rec = Vec::new();
                push_record(&mut rec, p, 9, Kind::Entry, true, 5, &[&k.to_le_bytes()]);
                rec
            };
            let lead = (0..=u16::MAX).map(with).find(|r| r[0] == blank);
            for rec in [with(7), lead.expect("a CRC with a blank first byte")] {
                let from = header_area(&g) + 20;
                let places = (from..512 - rec.len()).step_by(p).map(Some);
                for at in places.chain([None]) {
                    for stray in [None, Some(from + 3), Some(300)] {
                        let mut img = vec![blank; 512 * 4];
                        if let Some(s) = stray {
                            img[512 + s] = 0x42;
                        }
                        if let Some(a) = at {
                            img[512 + a..512 + a + rec.len()].copy_from_slice(&rec);
                        }
                        // The reference: every unit, every offset, in order.
                        let (mut want_at, mut want_nb) = (None, from);
                        let mut o = from;
                        while o < 512 && want_at.is_none() {
                            if img[512 + o..512 + o + p].iter().any(|&b| b != blank) {
                                want_nb = o + p;
                            }
                            if at == Some(o) {
                                want_at = Some(o as u32);
                            }
                            o += p;
                        }
                        let mut dev = MemDevice::from_image(g, img);
                        let mut rd = Reader::new(64);
                        let f = find_valid_after(&mut dev, &mut rd, &g, 1, 9, from, true).unwrap();
                        let case = (p, at, stray);
                        assert_eq!(f.at, want_at, "{case:?}");
                        assert_eq!(f.last_non_blank, want_nb, "{case:?}");
                    }
                }
            }
        }
    }
}
