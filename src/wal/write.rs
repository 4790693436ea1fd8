//! The write path: placing an entry (whole in the head, or split over
//! fresh blocks), counting the blocks a batch needs, opening and sealing
//! blocks, and control records.

use alloc::vec;
use alloc::vec::Vec;

use super::alloc::RESERVE;
use super::{Res, Wal, MIN_FRAG};
use crate::device::BlockDevice;
use crate::format::{
    self, BlockHeader, Kind, FLAG_CONT, FLAG_TAIL_OPEN, KIND_LOG, MAX_REC_PAYLOAD, REC_LEN,
};
use crate::index::{Loc, LogBlock, MemBlock, Table};
use crate::Error;

impl<D: BlockDevice> Wal<D> {
    /// Makes sure enough blocks are free (growing the device if it can) for
    /// an entry of `len` bytes, so an entry is never left half-written for
    /// lack of space.
    pub(super) fn reserve_entry(&mut self, len: usize) -> Res<(), D> {
        let fits = self.head.open
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

    /// Places an entry that does not fit the head whole (its blocks are
    /// already reserved): in a fresh block, or split into a first fragment
    /// here and the rest in fresh blocks.
    pub(super) fn write_entry(&mut self, index: u64, data: &[u8]) -> Res<(), D> {
        if !self.head.open {
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
            if self.head.buf.len() >= self.opts.write_buffer {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Fresh blocks `write_entry` opens for entries of these lengths,
    /// appended one after the other from the current head: the same
    /// placement rules, played out without writing.
    pub(super) fn batch_blocks(&self, lens: impl Iterator<Item = usize>) -> u32 {
        let (p, bs, hdr) = (self.p, self.geo.block_size as usize, self.hdr);
        let min_frag = MIN_FRAG.max(p);
        let payload = self.block_payload();
        let mut open = self.head.open;
        let mut cursor = if open { self.head_cursor() } else { 0 };
        let mut n = self.head_n();
        let mut keep = self.control_room();
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

    /// Payload bytes one continuation block can carry.
    pub(super) fn block_payload(&self) -> usize {
        let room =
            self.geo.block_size as usize - self.hdr - format::summary_len(0, self.p) - REC_LEN;
        (room & !(self.p - 1)).min(MAX_REC_PAYLOAD)
    }

    /// Fresh blocks an entry of `len` bytes may take (its first fragment
    /// possibly in a block of its own); saturates for absurd lengths.
    pub(super) fn blocks_for(&self, len: usize) -> u32 {
        let need = len.div_ceil(self.block_payload()) + 1;
        u32::try_from(need).unwrap_or(u32::MAX)
    }

    /// `EntryTooLarge` if `need` fresh blocks exceed what this device could
    /// ever give the log (every block but the meta block and the reserve),
    /// now that it cannot grow.
    pub(super) fn too_large(&self, len: usize, need: u32) -> Option<Error<D::Error>> {
        let usable = self.geo.block_count.saturating_sub(RESERVE + 1);
        (need > usable).then(|| Error::EntryTooLarge {
            len,
            max: self.block_payload() * usable.saturating_sub(1) as usize,
        })
    }

    /// `SeqExhausted` unless `blocks` more blocks (each possibly followed by
    /// a meta snapshot for wear levelling) can still get a sequence number:
    /// an entry is never cut short by exhaustion.
    pub(super) fn check_seq(&self, blocks: u32) -> Res<(), D> {
        // Allocated seqs stay below `SEQ_LIMIT - 1`, the highest recovery
        // accepts and can still continue from.
        let left = (format::SEQ_LIMIT - 1).saturating_sub(self.next_seq);
        if left < 2 * u64::from(blocks) {
            return Err(Error::SeqExhausted);
        }
        Ok(())
    }

    /// Seals the head (if any) and opens a new head whose first entry will be
    /// `base`; `cont` when it begins with the rest of entry `base - 1`.
    pub(super) fn open_block(&mut self, base: u64, cont: bool, keep: u32) -> Res<(), D> {
        self.flush()?;
        self.ensure_free(1, keep)?;
        let seq = self.next_seq;
        // The old head: its block, seq and where its records end.
        let (last, prev, prev_end) = match self.blocks.back() {
            Some(b) => (
                b.block,
                b.seq,
                match &b.loc {
                    Loc::Mem(m) => m.end,
                    Loc::Summary { .. } => self.head.end,
                },
            ),
            None => (0, 0, 0),
        };
        let h = BlockHeader {
            kind: KIND_LOG,
            flags: if cont { FLAG_CONT } else { 0 },
            seq,
            prev,
            base,
            floor: self.floor,
            prev_end,
            block_size: self.geo.block_size,
        };
        if !h.link_fits() {
            return Err(Error::Corrupt {
                block: last,
                offset: 0,
                what: "more than 2^32 allocations since the head was opened",
            });
        }
        let block = self.start_block(&h, keep)?;
        self.next_seq += 1;
        // The header's sync covered the old head's records; the new head is
        // empty: its first record says so.
        self.head.synced = true;
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
        self.head.open = true;
        self.head.at = self.geo.block_offset(block) + self.hdr as u64;
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
            && self.alloc.free() > 0
            && self.next_seq < format::SEQ_LIMIT - 2
        {
            self.meta_snapshot()?;
        }
        Ok(())
    }

    /// Writes the summary of every sealed block that has none yet. Called
    /// right after a sync, so the records they describe are durable.
    pub(super) fn write_summaries(&mut self) -> Res<(), D> {
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
            if let Some(v) = self.geo.erase_value {
                // A summary attempt torn by an earlier crash: leave the block
                // to be replayed at open rather than program twice.
                // A failed read poisons like a failed write: the new head's
                // header is durable but not yet in `self.blocks`.
                let mut cur = vec![0u8; bytes.len()];
                let r = self.dev_read(at, &mut cur);
                r.map_err(|e| self.poison(e))?;
                if cur.iter().any(|&x| x != v) {
                    continue;
                }
            }
            self.dev_program(at, &bytes)?;
            self.blocks[i].loc = Loc::Summary {
                disk_n,
                table: Table::valid(),
            };
        }
        Ok(())
    }

    /// Appends a TRUNCATE or COMPACT record to the head and syncs; a new
    /// head, if needed, leaves `keep` blocks free.
    pub(super) fn control_record(&mut self, kind: Kind, index: u64, keep: u32) -> Res<(), D> {
        let base = self.next.unwrap_or(index);
        if !self.head.open || self.room(self.head_n()) < format::round_up(REC_LEN, self.p) {
            self.open_block(base, false, keep)?;
        }
        self.push_rec(kind, index, &[]);
        let end = self.head_cursor() as u32;
        self.head_mem().end = end;
        self.sync()
    }
}
