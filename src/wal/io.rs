//! Every device call the log makes, in one place: program, erase, sync,
//! read, grow; the poisoning of a failed write and the take-back of a failed
//! sync.

use alloc::vec;

use super::{Res, Wal};
use crate::device::BlockDevice;
use crate::format::{self, BlockHeader, KIND_LOG, KIND_META};
use crate::Error;

impl<D: BlockDevice> Wal<D> {
    /// Marks the log poisoned (what is durable is unknown) and wraps `e`.
    pub(super) fn poison(&mut self, e: D::Error) -> Error<D::Error> {
        self.poisoned = true;
        Error::Device(e)
    }

    /// Programs `data` at `at`, remembered until the next good sync.
    pub(super) fn dev_program(&mut self, at: u64, data: &[u8]) -> Res<(), D> {
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
    pub(super) fn dev_sync(&mut self) -> Res<(), D> {
        match self.dev.get_mut().sync() {
            Ok(()) => {
                self.undurable.clear();
                self.undurable_header = None;
                // A deferred meta record is durable now: the next one may
                // say so (`SYNCED`).
                if let Some(m) = self.meta_block.as_mut() {
                    m.synced = true;
                }
                Ok(())
            }
            Err(e) => Err(self.sync_failed(e)),
        }
    }

    /// Reads device bytes at `off`. Through `&self` (reads serve `&self`
    /// getters), so the device sits in a `RefCell`. The caller decides
    /// whether a failure poisons (it does while sealing blocks).
    pub(super) fn dev_read(&self, off: u64, buf: &mut [u8]) -> Result<(), D::Error> {
        self.dev.borrow_mut().read(off, buf)
    }

    /// Asks a growable device for `blocks` more; on success `self.geo`
    /// follows.
    pub(super) fn dev_grow(&mut self, blocks: u32) -> Res<bool, D> {
        let dev = self.dev.get_mut();
        let grown = dev.grow(blocks).map_err(Error::Device)?;
        if grown {
            self.geo = dev.geometry();
        }
        Ok(grown)
    }

    /// Erases a free block and makes a header durable in it (FORMAT.md,
    /// "Opening a block"): no record ever outlives its header.
    pub(super) fn start_block(&mut self, h: &BlockHeader, keep: u32) -> Res<u32, D> {
        // Recovery refuses a header at the top of the seq space (nothing
        // could follow it): the writer stops below it, with nothing written.
        if h.seq >= format::SEQ_LIMIT - 1 {
            return Err(Error::SeqExhausted);
        }
        let block = self.alloc_block(keep)?;
        let mut buf = h.encode().to_vec();
        buf.resize(self.hdr, 0);
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

    /// Salvage: makes the blocks whose damaged headers it ignored free for
    /// good (erased, or the header zeroed where erase does nothing), synced.
    #[cfg(feature = "salvage")]
    pub(super) fn scrub_headers(&mut self, blocks: &[u32]) -> Res<(), D> {
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
            let mut buf = t.encode().to_vec();
            buf.resize(self.hdr, 0);
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
}
