//! The block allocator: which blocks are in use, the round-robin cursor, and
//! the reserve rules that keep a full log able to compact (FORMAT.md,
//! "Space").

use alloc::vec::Vec;

use super::{Res, Wal};
use crate::device::BlockDevice;
use crate::Error;

/// Blocks appends leave free (one more until the first meta block exists):
/// after a reopen on files the head cannot be appended to, so a truncate,
/// compact or metadata snapshot needs a fresh block. Truncations and meta
/// snapshots take one only while another stays free ([`KEEP_FOR_COMPACT`]);
/// a compaction may take the last, so a full log can always be compacted
/// (FORMAT.md, "Space").
pub(super) const RESERVE: u32 = 2;

/// Blocks a truncation or a metadata snapshot leaves free: the compaction's.
pub(super) const KEEP_FOR_COMPACT: u32 = 1;

/// The smallest device a log opens on: the meta block, the head, the block
/// it moves on to, and the reserve; fewer and a full log could never move on.
pub(super) const MIN_BLOCKS: u32 = RESERVE + 3;

/// Which device blocks the log holds (its chain and its meta block).
pub(super) struct Alloc {
    /// One flag per device block: in use by the chain or the meta block.
    used: Vec<bool>,
    /// Blocks not in use, counted so the reserve checks on the append path
    /// cost nothing.
    free: u32,
    /// Where the search for a free block starts: after the last block taken,
    /// so writes go round the device (wear levelling).
    cursor: u32,
}

impl Alloc {
    /// The allocator over the used-block map recovery built; the search
    /// starts at `cursor` (after the head; any value, taken modulo the
    /// block count).
    pub fn new(used: Vec<bool>, cursor: u32) -> Self {
        let free = used.iter().filter(|u| !**u).count() as u32;
        Alloc { used, free, cursor }
    }

    /// Blocks not in use.
    pub fn free(&self) -> u32 {
        self.free
    }

    /// The device now has `count` blocks; the new ones are free.
    pub fn grown(&mut self, count: u32) {
        let added = (count as usize).saturating_sub(self.used.len());
        self.used.resize(count as usize, false);
        self.free += added as u32;
    }

    /// Takes the next free block in round-robin order.
    pub fn take(&mut self) -> Option<u32> {
        let count = self.used.len() as u32;
        for k in 0..count {
            let b = (self.cursor + k) % count;
            if !self.used[b as usize] {
                self.used[b as usize] = true;
                self.free -= 1;
                self.cursor = (b + 1) % count;
                return Some(b);
            }
        }
        None
    }

    /// Gives `block` back (a block already free stays counted once).
    pub fn release(&mut self, block: u32) {
        if core::mem::replace(&mut self.used[block as usize], false) {
            self.free += 1;
        }
    }

    /// Bytes of heap the map holds.
    pub fn memory(&self) -> usize {
        self.used.capacity()
    }
}

impl<D: BlockDevice> Wal<D> {
    /// Free blocks appends leave: the reserve, and the first meta block's.
    pub(super) fn entry_keep(&self) -> u32 {
        RESERVE + u32::from(self.meta_block.is_none())
    }

    /// Makes `n` blocks free beyond `keep` more (the reserve appends leave,
    /// see [`RESERVE`]), growing the device when it can.
    pub(super) fn ensure_free(&mut self, n: u32, keep: u32) -> Res<(), D> {
        let want = n.saturating_add(keep);
        if self.alloc.free() >= want {
            return Ok(());
        }
        let short = want - self.alloc.free();
        let step = short.max((self.geo.block_count / 4).clamp(1, self.opts.max_grow_blocks.max(1)));
        for ask in [step, short] {
            if self.dev_grow(ask)? {
                self.alloc.grown(self.geo.block_count);
                if self.alloc.free() >= want {
                    return Ok(());
                }
            }
        }
        Err(Error::Full)
    }

    /// Takes a free block, leaving `keep` free (growing the device if needed).
    pub(super) fn alloc_block(&mut self, keep: u32) -> Res<u32, D> {
        self.ensure_free(1, keep)?;
        self.alloc.take().ok_or(Error::Full)
    }
}
