//! The head: the open block appends go to. Its write buffer, where the next
//! record goes, the room left, and the one place log records are encoded.

use alloc::vec::Vec;

use super::Wal;
use crate::device::BlockDevice;
use crate::format::{self, Kind, MAX_REC_PAYLOAD, REC_LEN};
use crate::index::{Loc, MemBlock};

/// Control records an append leaves room for in the head once the reserve
/// has been dipped into.
const CONTROL_ROOM: usize = 2;

/// The write side of the head block.
///
/// The head's entry offsets (its replay state, a [`MemBlock`]) stay in its
/// `LogBlock`, the last of `Wal::blocks`: reads find the head's entries
/// through `index::find` like any other block's. Sealing the head is
/// `Wal::open_block` (flush, new header, summaries).
#[derive(Default)]
pub(super) struct Head {
    /// Appends may go into the last block of the chain. False with no
    /// block yet, and after an open whose head cannot take more (on files
    /// its end may hold torn bytes): the next append opens a block.
    pub open: bool,
    /// Records encoded but not programmed yet, starting at device offset
    /// `at`: one `program` per flush, and reads see them (`read_at`).
    pub buf: Vec<u8>,
    /// Device offset of `buf[0]`; after a flush, where the next record goes.
    pub at: u64,
    /// A sync covered every record of the head: the next record written
    /// into it carries `SYNCED` (FORMAT.md, "Records").
    pub synced: bool,
    /// Where the head's records end when the head is described by its
    /// summary (a salvaged head); `Mem` heads keep it in their replay state.
    pub end: u32,
    /// `(seq, format::rec_seed(seq))` of the last record pushed: the CRC of
    /// the `seq` every record of the block starts with, computed once per
    /// block rather than once per record.
    seed: Option<(u64, u32)>,
}

impl Head {
    /// The head as recovery left it: `open` if appends may continue in it,
    /// `end` where a summary-described head's records end.
    pub fn new(open: bool, end: u32) -> Self {
        Head {
            open,
            end,
            ..Head::default()
        }
    }

    /// Offset inside the block at device offset `block_at` where the next
    /// record goes.
    #[inline]
    pub fn cursor(&self, block_at: u64) -> usize {
        (self.at + self.buf.len() as u64 - block_at) as usize
    }

    /// Encodes one log record of block `seq` into the buffer; the first
    /// after a sync carries `SYNCED`.
    #[inline]
    pub fn push(&mut self, p: usize, seq: u64, kind: Kind, index: u64, payload: &[u8]) {
        let synced = core::mem::replace(&mut self.synced, false);
        let seed = match self.seed {
            Some((s, seed)) if s == seq => seed,
            _ => {
                let seed = format::rec_seed(seq);
                self.seed = Some((seq, seed));
                seed
            }
        };
        format::push_record_seeded(&mut self.buf, p, seed, kind, synced, index, &[payload]);
    }
}

impl<D: BlockDevice> Wal<D> {
    /// The common case of `write_entry`: the whole entry fits in the open
    /// head. Encodes it into the write buffer and updates the head's replay
    /// state; `false` (nothing done) otherwise.
    #[inline]
    pub(super) fn append_in_head(&mut self, index: u64, data: &[u8]) -> bool {
        if !self.head.open {
            return false;
        }
        let (p, bs) = (self.p, self.geo.block_size as usize);
        let keep = self.control_room();
        let Some(b) = self.blocks.back_mut() else {
            return false;
        };
        let Loc::Mem(m) = &mut b.loc else {
            return false;
        };
        let at = self.head.cursor(self.geo.block_offset(b.block));
        let span = format::round_up(REC_LEN + data.len(), p);
        if at + span + keep + format::summary_len(m.offsets.len() + 1, p) > bs
            || data.len() > MAX_REC_PAYLOAD
        {
            return false;
        }
        self.head.push(p, b.seq, Kind::Entry, index, data);
        m.offsets.push(at as u32);
        m.next = index + 1;
        m.end = (at + span) as u32;
        m.tail_open = false;
        b.n = m.offsets.len() as u32;
        b.first = m.next - u64::from(b.n);
        true
    }

    /// Encodes a record into the head (a fragment or a control record).
    pub(super) fn push_rec(&mut self, kind: Kind, index: u64, payload: &[u8]) {
        let seq = self.blocks.back().map_or(0, |b| b.seq);
        self.head.push(self.p, seq, kind, index, payload);
    }

    /// Entries starting in the head.
    pub(super) fn head_n(&self) -> usize {
        match self.blocks.back().map(|b| &b.loc) {
            Some(Loc::Mem(m)) => m.offsets.len(),
            _ => 0,
        }
    }

    /// Offset inside the head block where the next record goes.
    pub(super) fn head_cursor(&self) -> usize {
        let b = self.blocks.back().map_or(0, |b| b.block);
        self.head.cursor(self.geo.block_offset(b))
    }

    /// Bytes left in the head for records if it will hold `n` entries.
    pub(super) fn room(&self, n: usize) -> usize {
        if !self.head.open {
            return 0;
        }
        (self.geo.block_size as usize - format::summary_len(n, self.p))
            .saturating_sub(self.head_cursor())
    }

    /// Bytes an entry must leave in the head for control records: once the
    /// reserve was dipped into (a control record took a block), a truncate
    /// or compact may find no fresh block, so the head keeps room for them.
    pub(super) fn control_room(&self) -> usize {
        if self.alloc.free() < self.entry_keep() {
            CONTROL_ROOM * format::round_up(REC_LEN, self.p)
        } else {
            0
        }
    }

    /// Bytes left in the head for an entry's records if it will hold `n`
    /// entries (see [`Wal::control_room`]).
    pub(super) fn entry_room(&self, n: usize) -> usize {
        self.room(n).saturating_sub(self.control_room())
    }

    /// The head's replay state.
    pub(super) fn head_mem(&mut self) -> &mut MemBlock {
        match self.blocks.back_mut().map(|b| &mut b.loc) {
            Some(Loc::Mem(m)) => m,
            _ => unreachable!("the open head always keeps its offsets in memory"),
        }
    }

    /// Re-derives the head's index view from its replay state.
    pub(super) fn head_view(&mut self) {
        if let Some(b) = self.blocks.back_mut() {
            if let Loc::Mem(m) = &b.loc {
                b.n = m.offsets.len() as u32;
                b.first = m.next - u64::from(b.n);
            }
        }
    }
}
