//! On-media encoding: block header, record header, summary trailer, CRC32C.
//! FORMAT.md documents every byte; this file is its executable twin.

/// CRC-32C (Castagnoli) of `parts` one after the other: the one CRC of the
/// format (see [`crc32c_append`]).
#[inline]
pub(crate) fn crc32c(parts: &[&[u8]]) -> u32 {
    parts.iter().fold(0, |crc, p| crc32c_append(crc, p))
}

/// CRC-32C of `bytes` following bytes whose CRC-32C is `crc` (0: none):
/// the one place that picks the implementation. With `std` the `crc32c`
/// crate, which uses the CPU's CRC instructions (SSE4.2, ARMv8; about 17 ns
/// against 30 ns for slice-by-16 tables per 148-byte record here, 47
/// against 190 ns per KiB), with its own table where they are missing;
/// without `std` the `crc` crate's 1 KiB table, for microcontroller flash
/// budgets. A test checks that both agree.
#[inline]
pub(crate) fn crc32c_append(crc: u32, bytes: &[u8]) -> u32 {
    #[cfg(feature = "std")]
    {
        ::crc32c::crc32c_append(crc, bytes)
    }
    #[cfg(not(feature = "std"))]
    {
        table_crc32c_append(crc, bytes)
    }
}

/// [`crc32c_append`] through the `crc` crate's table: no_std builds, and
/// the reference the hardware one is tested against.
#[cfg(any(test, not(feature = "std")))]
fn table_crc32c_append(crc: u32, bytes: &[u8]) -> u32 {
    static CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    // After a CRC `crc` the (reflected) register holds `!crc`; the crate
    // takes a starting register unreflected.
    let mut d = CRC.digest_with_initial((!crc).reverse_bits());
    d.update(bytes);
    d.finalize()
}

/// Block header magic.
pub(crate) const MAGIC: [u8; 4] = *b"BWAL";
/// Format version written and understood.
pub(crate) const VERSION: u8 = 2;
/// Bytes of a block header before padding to the program unit.
pub(crate) const HEADER_LEN: usize = 48;
/// Bytes of the header covered by its CRC (the CRC follows them).
const HEADER_CRC_AT: usize = 44;
/// Sequence numbers are below this (FORMAT.md, "Blocks").
pub(crate) const SEQ_LIMIT: u64 = 1 << 63;
/// Record kind byte: bit 7 says everything before the record in its block
/// was durable when it was written (FORMAT.md, "Records").
pub(crate) const REC_SYNCED: u8 = 0x80;
/// Bytes of a record header.
pub(crate) const REC_LEN: usize = 16;
/// Bytes of the fixed summary trailer.
pub(crate) const TRAILER_LEN: usize = 40;
/// Longest payload one record can carry (24-bit length field).
pub(crate) const MAX_REC_PAYLOAD: usize = (1 << 24) - 1;

/// Block kinds.
pub(crate) const KIND_LOG: u8 = 1;
pub(crate) const KIND_META: u8 = 2;
/// Header flag: the log block begins with continuation fragments.
pub(crate) const FLAG_CONT: u8 = 1;
/// Trailer flag: the block's last entry continues in the next block.
pub(crate) const FLAG_TAIL_OPEN: u8 = 1;

/// Record kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Entry = 1,
    First = 2,
    Middle = 3,
    Last = 4,
    Truncate = 5,
    Compact = 6,
    Set = 7,
    Remove = 8,
    Snapshot = 9,
    Mark = 10,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Kind> {
        Some(match v {
            1 => Kind::Entry,
            2 => Kind::First,
            3 => Kind::Middle,
            4 => Kind::Last,
            5 => Kind::Truncate,
            6 => Kind::Compact,
            7 => Kind::Set,
            8 => Kind::Remove,
            9 => Kind::Snapshot,
            10 => Kind::Mark,
            _ => return None,
        })
    }
}

/// `x` rounded up to a multiple of `p` (a power of two).
#[inline]
pub(crate) fn round_up(x: usize, p: usize) -> usize {
    (x + p - 1) & !(p - 1)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// A block header (see FORMAT.md, "Block header").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockHeader {
    pub kind: u8,
    pub flags: u8,
    pub seq: u64,
    pub prev: u64,
    pub base: u64,
    pub floor: u64,
    pub prev_end: u32,
    pub block_size: u32,
}

impl BlockHeader {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4] = VERSION;
        b[5] = self.kind;
        b[6] = self.flags;
        b[8..16].copy_from_slice(&self.seq.to_le_bytes());
        b[16..20].copy_from_slice(&self.prev_back().to_le_bytes());
        b[20..24].copy_from_slice(&self.prev_end.to_le_bytes());
        b[24..32].copy_from_slice(&self.base.to_le_bytes());
        b[32..40].copy_from_slice(&self.floor.to_le_bytes());
        b[40..44].copy_from_slice(&self.block_size.to_le_bytes());
        let crc = crc32c(&[&b[0..HEADER_CRC_AT]]);
        b[HEADER_CRC_AT..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// `seq - prev` as stored (0: no previous block). The writer checks
    /// that it fits ([`BlockHeader::link_fits`]).
    fn prev_back(&self) -> u32 {
        if self.prev == 0 {
            0
        } else {
            (self.seq - self.prev) as u32
        }
    }

    /// True if `prev` can be stored (as `seq - prev` in 32 bits).
    pub fn link_fits(&self) -> bool {
        self.prev == 0 || (self.prev < self.seq && self.seq - self.prev <= u64::from(u32::MAX))
    }

    /// The fields, whatever the CRC says (`None` on a wrong magic/version,
    /// an unknown kind or flag, or a link not below `seq`).
    fn fields(b: &[u8]) -> Option<BlockHeader> {
        if b.len() < HEADER_LEN || b[0..4] != MAGIC || b[4] != VERSION {
            return None;
        }
        let seq = u64_at(b, 8);
        let back = u64::from(u32_at(b, 16));
        let h = BlockHeader {
            kind: b[5],
            flags: b[6],
            seq,
            prev: if back == 0 { 0 } else { seq.checked_sub(back)? },
            prev_end: u32_at(b, 20),
            base: u64_at(b, 24),
            floor: u64_at(b, 32),
            block_size: u32_at(b, 40),
        };
        let known = matches!(h.kind, KIND_LOG | KIND_META) && h.flags & !FLAG_CONT == 0;
        (known && h.seq != 0 && (back == 0 || h.prev != 0) && b[7] == 0).then_some(h)
    }

    /// `None` unless magic, version, kind and CRC are all right. A `seq`
    /// at or above [`SEQ_LIMIT`] decodes: recovery reports it as corruption.
    pub fn decode(b: &[u8]) -> Option<BlockHeader> {
        if b.len() < HEADER_LEN || crc32c(&[&b[0..HEADER_CRC_AT]]) != u32_at(b, HEADER_CRC_AT) {
            return None;
        }
        Self::fields(b)
    }

    /// A header that is not valid but becomes valid by changing one bit
    /// (FORMAT.md, "Damaged headers"): the header as it was. Only headers
    /// whose first 5 bytes are within one bit of magic and version are tried.
    pub fn decode_damaged(b: &[u8]) -> Option<BlockHeader> {
        if b.len() < HEADER_LEN || Self::decode(b).is_some() {
            return None;
        }
        let mut want = [0u8; 5];
        want[..4].copy_from_slice(&MAGIC);
        want[4] = VERSION;
        let near: u32 = (0..5).map(|i| (b[i] ^ want[i]).count_ones()).sum();
        if near > 1 {
            return None;
        }
        let mut c = [0u8; HEADER_LEN];
        c.copy_from_slice(&b[..HEADER_LEN]);
        // A flip in the CRC field itself: the data is intact.
        let stored = u32_at(&c, HEADER_CRC_AT);
        if (crc32c(&[&c[..HEADER_CRC_AT]]) ^ stored).count_ones() == 1 {
            return Self::fields(&c);
        }
        for bit in 0..HEADER_CRC_AT * 8 {
            c[bit / 8] ^= 1 << (bit % 8);
            if crc32c(&[&c[..HEADER_CRC_AT]]) == stored {
                return Self::fields(&c);
            }
            c[bit / 8] ^= 1 << (bit % 8);
        }
        None
    }

    /// The block size a valid header was written with (image detection).
    #[cfg(feature = "std")]
    pub fn block_size_of(b: &[u8]) -> Option<u32> {
        Self::decode(b).map(|h| h.block_size)
    }

    /// A whole, valid version 1 header (48 bytes, its CRC over bytes 0..44
    /// at 44): a log this build refuses to read. Magic and version byte alone
    /// are not enough: a v2 header torn by a crash after its magic can leave
    /// any byte, 1 included, where the version goes.
    pub fn is_v1(b: &[u8]) -> bool {
        const V1_CRC_AT: usize = 44;
        b.len() >= V1_CRC_AT + 4
            && b[0..4] == MAGIC
            && b[4] == 1
            && crc32c(&[&b[..V1_CRC_AT]]) == u32_at(b, V1_CRC_AT)
    }
}

/// A decoded record header; the payload follows it on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecHeader {
    pub crc: u32,
    pub kind: Kind,
    /// Everything before this record in its block was durable when it was
    /// written (FORMAT.md, `SYNCED`).
    pub synced: bool,
    pub len: usize,
    pub index: u64,
}

impl RecHeader {
    /// Parses the 16 header bytes; `None` for an unknown kind. The CRC is
    /// checked separately, once the payload is at hand.
    pub fn decode(b: &[u8]) -> Option<RecHeader> {
        if b.len() < REC_LEN {
            return None;
        }
        Some(RecHeader {
            crc: u32_at(b, 0),
            kind: Kind::from_u8(b[4] & !REC_SYNCED)?,
            synced: b[4] & REC_SYNCED != 0,
            len: (u32_at(b, 4) >> 8) as usize,
            index: u64_at(b, 8),
        })
    }

    /// Bytes the whole record takes on the device, padding included.
    pub fn span(&self, p: usize) -> usize {
        round_up(REC_LEN + self.len, p)
    }
}

/// The record CRC: `seq`, the 12 header bytes after the CRC field, then the
/// payload (FORMAT.md, "Records").
fn rec_crc(seq: u64, fields: &[u8], payload: &[u8]) -> u32 {
    crc32c(&[&seq.to_le_bytes(), &fields[..12], payload])
}

/// The first 4 CRC-covered header bytes after the CRC field (the index
/// follows): length and kind with its `SYNCED` bit.
#[inline]
fn rec_word(kind: Kind, synced: bool, len: usize) -> u32 {
    debug_assert!(len <= MAX_REC_PAYLOAD);
    let k = kind as u32 | if synced { u32::from(REC_SYNCED) } else { 0 };
    ((len as u32) << 8) | k
}

/// The CRC of a record's first covered bytes, its block's `seq`: every
/// record of a block continues from it, so a writer computes it once per
/// block ([`push_record_seeded`]).
#[inline]
pub(crate) fn rec_seed(seq: u64) -> u32 {
    crc32c_append(0, &seq.to_le_bytes())
}

/// Appends one record (header, payload pieces, zero padding to `p`) to `out`.
/// The payload is given in pieces so meta records need no temporary buffer.
/// `synced`: the record is the first of a write issued after a sync.
pub(crate) fn push_record(
    out: &mut alloc::vec::Vec<u8>,
    p: usize,
    seq: u64,
    kind: Kind,
    synced: bool,
    index: u64,
    payload: &[&[u8]],
) {
    push_record_seeded(out, p, rec_seed(seq), kind, synced, index, payload);
}

/// [`push_record`] for a block whose [`rec_seed`] is `seed`: the one record
/// encoder. Inlined into the append path under `std` (speed); one shared
/// copy without it (code size on microcontrollers).
#[cfg_attr(feature = "std", inline)]
#[cfg_attr(not(feature = "std"), inline(never))]
pub(crate) fn push_record_seeded(
    out: &mut alloc::vec::Vec<u8>,
    p: usize,
    seed: u32,
    kind: Kind,
    synced: bool,
    index: u64,
    payload: &[&[u8]],
) {
    let len: usize = payload.iter().map(|s| s.len()).sum();
    let start = out.len();
    let span = round_up(REC_LEN + len, p);
    out.reserve(span);
    // Stored field by field: a header assembled on the stack and copied as
    // one 16-byte load stalled on store forwarding (measured).
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&rec_word(kind, synced, len).to_le_bytes());
    out.extend_from_slice(&index.to_le_bytes());
    for s in payload {
        out.extend_from_slice(s);
    }
    // The covered bytes after `seq` (fields, payload) lie together in
    // `out`: one CRC pass, where a call costs most on short records.
    let crc = crc32c_append(seed, &out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
    out.resize(start + span, 0);
}

/// True if `payload` matches the header's CRC under the block's `seq`.
pub(crate) fn record_valid(seq: u64, hdr_bytes: &[u8], payload: &[u8]) -> bool {
    rec_crc(seq, &hdr_bytes[4..REC_LEN], payload) == u32_at(hdr_bytes, 0)
}

/// Size of the summary of a block with `n` entries starting in it.
#[inline]
pub(crate) fn summary_len(n: usize, p: usize) -> usize {
    round_up(4 * (n + 1) + TRAILER_LEN, p)
}

/// The fixed part of a summary (FORMAT.md, "Summary").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Trailer {
    pub low: u64,
    pub floor: u64,
    pub next: u64,
    pub count: u32,
    pub flags: u8,
    pub table_crc: u32,
}

/// Encodes a whole summary area (`summary_len(table.len() - 1, p)` bytes).
pub(crate) fn encode_summary(
    seq: u64,
    table: &[u32],
    t: &Trailer,
    p: usize,
) -> alloc::vec::Vec<u8> {
    let n = table.len() - 1;
    let total = summary_len(n, p);
    let mut out = alloc::vec![0u8; total];
    let tab_at = total - TRAILER_LEN - 4 * table.len();
    for (i, off) in table.iter().enumerate() {
        out[tab_at + 4 * i..tab_at + 4 * i + 4].copy_from_slice(&off.to_le_bytes());
    }
    let table_crc = seeded_crc(seq, &out[tab_at..total - TRAILER_LEN]);
    let tr = &mut out[total - TRAILER_LEN..];
    tr[0..8].copy_from_slice(&t.low.to_le_bytes());
    tr[8..16].copy_from_slice(&t.floor.to_le_bytes());
    tr[16..24].copy_from_slice(&t.next.to_le_bytes());
    tr[24..28].copy_from_slice(&t.count.to_le_bytes());
    tr[28] = t.flags;
    tr[32..36].copy_from_slice(&table_crc.to_le_bytes());
    let crc = seeded_crc(seq, &tr[..TRAILER_LEN - 4]);
    tr[36..40].copy_from_slice(&crc.to_le_bytes());
    out
}

/// CRC over `seq` then `bytes`.
pub(crate) fn seeded_crc(seq: u64, bytes: &[u8]) -> u32 {
    crc32c(&[&seq.to_le_bytes(), bytes])
}

/// Parses and checks the last `TRAILER_LEN` bytes of a block. The table is
/// not read at open; its own CRC (`table_crc`) is checked by `verify`.
pub(crate) fn decode_trailer(seq: u64, b: &[u8]) -> Option<Trailer> {
    if seeded_crc(seq, &b[..TRAILER_LEN - 4]) != u32_at(b, TRAILER_LEN - 4) {
        return None;
    }
    Some(Trailer {
        low: u64_at(b, 0),
        floor: u64_at(b, 8),
        next: u64_at(b, 16),
        count: u32_at(b, 24),
        flags: b[28],
        table_crc: u32_at(b, 32),
    })
}

/// Reads table entry `i` from table bytes.
pub(crate) fn table_at(table: &[u8], i: usize) -> u32 {
    u32_at(table, 4 * i)
}

/// Offset inside the block of the table of a summary of `n` entries; `None`
/// if such a summary cannot fit behind a header area of `hdr` bytes.
pub(crate) fn table_offset(block_size: usize, hdr: usize, n: u32) -> Option<usize> {
    let len = 4 * (n as usize + 1) + TRAILER_LEN;
    (len + hdr <= block_size).then(|| block_size - len)
}

/// Bytes of the table of a summary of `n` entries.
pub(crate) fn table_len(n: u32) -> usize {
    4 * (n as usize + 1)
}

/// Bytes before the trailer that hold the table's last word, the block's
/// end: recovery reads them with the trailer ([`summary_sane`]).
pub(crate) const END_LEN: usize = 4;

/// The checks of a summary that need only its trailer and the block's end
/// (the table's last word): the trailer's own fields and where the end may
/// lie. Part of [`summary_trusted`]; recovery trusts a summary on these when
/// the end also equals the newer block's `prev_end`, and the table is
/// checked at the first lookup into the block (FORMAT.md, "Summary").
pub(crate) fn summary_sane(t: &Trailer, end: u32, hdr: usize, block_size: usize, p: usize) -> bool {
    let end = end as usize;
    t.flags & !FLAG_TAIL_OPEN == 0
        && t.next >= u64::from(t.count)
        && t.low <= t.next
        && t.floor <= t.next
        && end >= hdr
        && end + summary_len(t.count as usize, p) <= block_size
}

/// A summary is trusted only if everything it describes validates
/// (FORMAT.md, "Summary"): the table's CRC, offsets increasing from the
/// header area, the end before the summary area, and sane indices.
/// Returns the block's end (the table's last offset).
pub(crate) fn summary_trusted(
    seq: u64,
    t: &Trailer,
    table: &[u8],
    hdr: usize,
    block_size: usize,
    p: usize,
) -> Option<u32> {
    let n = t.count as usize;
    if table.len() != 4 * (n + 1) || seeded_crc(seq, table) != t.table_crc {
        return None;
    }
    let end = table_at(table, n);
    if !summary_sane(t, end, hdr, block_size, p) {
        return None;
    }
    let end = end as usize;
    let mut last = hdr;
    for i in 0..n {
        let off = table_at(table, i) as usize;
        if off < last || (i > 0 && off == last) || off + REC_LEN > end {
            return None;
        }
        last = off;
    }
    Some(end as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn header_round_trip_and_crc() {
        let h = BlockHeader {
            kind: KIND_LOG,
            flags: FLAG_CONT,
            seq: 7,
            prev: 6,
            base: 100,
            floor: 3,
            prev_end: 200,
            block_size: 4096,
        };
        let mut b = h.encode();
        assert_eq!(BlockHeader::decode(&b), Some(h));
        for bit in [0, 37, 8 * 20 + 3, 8 * 45] {
            let mut d = b;
            d[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(BlockHeader::decode(&d), None);
            assert_eq!(BlockHeader::decode_damaged(&d), Some(h), "bit {bit}");
        }
        assert_eq!(BlockHeader::decode_damaged(&b), None);
        b[20] ^= 1;
        b[30] ^= 1;
        assert_eq!(BlockHeader::decode_damaged(&b), None);
    }

    #[test]
    fn record_crc_is_seeded_by_seq() {
        let mut out = Vec::new();
        push_record(&mut out, 4, 9, Kind::Entry, true, 42, &[b"hello"]);
        assert_eq!(out.len(), 24);
        let h = RecHeader::decode(&out).unwrap();
        assert_eq!(
            (h.kind, h.synced, h.len, h.index),
            (Kind::Entry, true, 5, 42)
        );
        assert_eq!(out[4], 0x81);
        assert!(record_valid(9, &out[..16], &out[16..21]));
        assert!(!record_valid(10, &out[..16], &out[16..21]));
        // FORMAT.md: CRC over seq, header bytes 4..16, then the payload.
        let mut plain = Vec::from(9u64.to_le_bytes());
        plain.extend_from_slice(&out[4..21]);
        assert_eq!(table_crc32c_append(0, &plain), u32_at(&out, 0));
    }

    /// The implementation `crc32c` picks computes the table's CRC-32C on
    /// every length around the hardware's 8-byte steps, at every alignment,
    /// and over any split into parts; and the standard check value.
    #[test]
    fn crc32c_agrees_with_the_table() {
        assert_eq!(crc32c(&[b"123456789"]), 0xE306_9283);
        assert_eq!(table_crc32c_append(0, b"123456789"), 0xE306_9283);
        let bytes: Vec<u8> = (0..400u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        for len in 0..300 {
            for start in 0..8 {
                let b = &bytes[start..start + len];
                let want = table_crc32c_append(0, b);
                assert_eq!(crc32c(&[b]), want, "len {len} at {start}");
                let cut = (len * 3 + start) / 7 % (len + 1);
                assert_eq!(crc32c(&[&b[..cut], &b[cut..]]), want, "len {len} cut {cut}");
                let table_cut = table_crc32c_append(table_crc32c_append(0, &b[..cut]), &b[cut..]);
                assert_eq!(table_cut, want, "table continued at {cut}");
                assert_eq!(crc32c(&[&[], b, &[]]), want);
            }
        }
    }

    #[test]
    fn summary_round_trip() {
        let mut t = Trailer {
            low: 5,
            floor: 1,
            next: 9,
            count: 2,
            flags: FLAG_TAIL_OPEN,
            table_crc: 0,
        };
        let s = encode_summary(3, &[48, 100, 160], &t, 8);
        assert_eq!(s.len(), summary_len(2, 8));
        let tr = &s[s.len() - TRAILER_LEN..];
        let tab = &s[s.len() - TRAILER_LEN - 12..s.len() - TRAILER_LEN];
        t.table_crc = seeded_crc(3, tab);
        assert_eq!(decode_trailer(3, tr), Some(t));
        assert_eq!(decode_trailer(4, tr), None);
        assert_eq!(table_at(tab, 1), 100);
        assert_eq!(summary_trusted(3, &t, tab, 48, 512, 8), Some(160));
        let mut bad = tab.to_vec();
        bad[0] ^= 1;
        assert_eq!(summary_trusted(3, &t, &bad, 48, 512, 8), None);
        // An erased table under a valid trailer (a torn NOR summary).
        let erased = [0xFFu8; 12];
        assert_eq!(summary_trusted(3, &t, &erased, 48, 512, 8), None);
    }
}
