//! The metadata API (term, vote, any small key/value) and how its records
//! reach the meta block: appended and marked, or a fresh snapshot block.

use alloc::string::String;
use alloc::vec::Vec;

use super::alloc::KEEP_FOR_COMPACT;
use super::{Res, Wal};
use crate::device::BlockDevice;
use crate::error::MetaLimit;
use crate::format::{self, BlockHeader, Kind, KIND_META, MAX_REC_PAYLOAD, REC_LEN};
use crate::meta::{self, MetaMap, MAX_KEY_LEN};
use crate::recovery::MetaBlock;
use crate::Error;

impl<D: BlockDevice> Wal<D> {
    /// Sets a metadata key (durable on return; after a crash the key holds
    /// its old or its new value).
    pub fn set_meta(&mut self, key: &str, value: &[u8]) -> Res<(), D> {
        self.set_meta_with(key, value, true)
    }

    /// Sets a metadata key without a sync of its own: the change is written
    /// now and becomes durable with the log's next sync ([`Wal::sync`], or
    /// any durable change). For values that may lag behind after a crash,
    /// such as openraft's committed log id, never for term or vote: until
    /// that sync a crash keeps the old value, and until a later metadata
    /// change follows it the record is in the residual window (FORMAT.md):
    /// a flipped bit in it reverts the key instead of failing the open.
    /// [`Wal::set_meta`] costs two syncs (the record, then its MARK); this
    /// costs none when it rides on an append's sync.
    pub fn set_meta_deferred(&mut self, key: &str, value: &[u8]) -> Res<(), D> {
        self.set_meta_with(key, value, false)
    }

    fn set_meta_with(&mut self, key: &str, value: &[u8], durable: bool) -> Res<(), D> {
        self.writable()?;
        self.check_meta(key, value)?;
        let klen = [key.len() as u8];
        let old = self.meta.insert(String::from(key), value.to_vec());
        let payload = meta::set_payload(&klen, key, value);
        let r = self.meta_record(Kind::Set, &payload, durable);
        if r.is_err() {
            match old {
                Some(v) => self.meta.insert(String::from(key), v),
                None => self.meta.remove(key),
            };
        }
        r
    }

    /// Removes a metadata key (durable on return). Absent keys: no-op.
    pub fn remove_meta(&mut self, key: &str) -> Res<(), D> {
        self.writable()?;
        let Some(old) = self.meta.remove(key) else {
            return Ok(());
        };
        let klen = [key.len() as u8];
        let r = self.meta_record(Kind::Remove, &[&klen, key.as_bytes()], true);
        if r.is_err() {
            self.meta.insert(String::from(key), old);
        }
        r
    }

    /// A metadata value.
    #[must_use]
    pub fn get_meta(&self, key: &str) -> Option<&[u8]> {
        self.meta.get(key).map(|v| v.as_slice())
    }

    /// All metadata keys, in order.
    pub fn meta_keys(&self) -> impl Iterator<Item = &str> {
        self.meta.keys()
    }

    /// The limits of item 6 (key, value, whole map), checked before
    /// anything is written: the map's SNAPSHOT record, and the MARK after
    /// it, must fit one meta block, and the snapshot one record (24-bit
    /// length).
    fn check_meta(&self, key: &str, value: &[u8]) -> Res<(), D> {
        let too = |len, max, limit| Err(Error::MetaTooLarge { len, max, limit });
        if key.len() > MAX_KEY_LEN {
            return too(key.len(), MAX_KEY_LEN, MetaLimit::Key);
        }
        let bs = self.geo.block_size as usize;
        let mark = format::round_up(REC_LEN, self.p);
        let cap = (bs - self.hdr - mark - REC_LEN).min(MAX_REC_PAYLOAD);
        // A snapshot holding only this key: count, then key/value framing.
        let alone = meta::snapshot_len(&MetaMap::new()) + 5 + key.len();
        let max_value = cap.saturating_sub(alone);
        if value.len() > max_value {
            return too(value.len(), max_value, MetaLimit::Value);
        }
        let old = self.meta.get(key).map_or(0, |v| 5 + key.len() + v.len());
        let snap = meta::snapshot_len(&self.meta) - old + 5 + key.len() + value.len();
        if snap > cap {
            return too(snap, cap, MetaLimit::Map);
        }
        Ok(())
    }

    /// Writes a meta record for the change already applied to `self.meta`
    /// (within the limits `check_meta` enforces): appended to the meta
    /// block when it fits (`durable`: synced, then marked; else programmed
    /// only, for the next sync to cover), else a fresh snapshot block
    /// (always durable).
    fn meta_record(&mut self, kind: Kind, payload: &[&[u8]], durable: bool) -> Res<(), D> {
        let bs = self.geo.block_size as usize;
        let len: usize = payload.iter().map(|s| s.len()).sum();
        let span = format::round_up(REC_LEN + len, self.p);
        let mark = format::round_up(REC_LEN, self.p);
        if let Some(mb) = self
            .meta_block
            .clone()
            .filter(|mb| mb.appendable && mb.cursor as usize + span + mark <= bs)
        {
            self.meta_write(mb.block, mb.cursor, mb.seq, kind, mb.synced, payload)?;
            if durable {
                self.dev_sync()?;
            }
            if let Some(m) = self.meta_block.as_mut() {
                m.cursor += span as u32;
                // Not synced yet: the next record must not claim that its
                // predecessor was (a sync sets it, see `dev_sync`).
                m.synced = durable;
            }
            return if durable { self.meta_mark() } else { Ok(()) };
        }
        self.meta_snapshot()
    }

    /// Programs a MARK (with `SYNCED`) after a synced meta record, and syncs:
    /// a later flip of that record is then corruption, not a torn write
    /// (FORMAT.md, "Meta").
    fn meta_mark(&mut self) -> Res<(), D> {
        let Some(mb) = self.meta_block.clone() else {
            return Ok(());
        };
        let span = self.meta_write(mb.block, mb.cursor, mb.seq, Kind::Mark, true, &[])?;
        self.dev_sync()?;
        if let Some(m) = self.meta_block.as_mut() {
            m.cursor += span as u32;
        }
        Ok(())
    }

    /// Writes the whole map into a fresh meta block: header durable, then
    /// the snapshot durable, then the old block is free (FORMAT.md, "Meta").
    pub(super) fn meta_snapshot(&mut self) -> Res<(), D> {
        let seq = self.next_seq;
        let h = BlockHeader {
            kind: KIND_META,
            flags: 0,
            seq,
            prev: 0,
            base: 0,
            floor: 0,
            prev_end: 0,
            block_size: self.geo.block_size,
        };
        // A snapshot that replaces a meta block frees it right after, so it
        // may use the last free block; the first one keeps the compaction's.
        let keep = if self.meta_block.is_some() {
            0
        } else {
            KEEP_FOR_COMPACT
        };
        let block = self.start_block(&h, keep)?;
        self.next_seq += 1;
        let snapshot = meta::snapshot_payload(&self.meta);
        let span = self.meta_write(
            block,
            self.hdr as u32,
            seq,
            Kind::Snapshot,
            true,
            &[&snapshot],
        )?;
        self.dev_sync()?;
        let old = self.meta_block.replace(MetaBlock {
            block,
            seq,
            cursor: (self.hdr + span) as u32,
            appendable: true,
            synced: true,
        });
        self.meta_mark()?;
        if let Some(old) = old {
            self.alloc.release(old.block);
        }
        Ok(())
    }

    /// Encodes one meta record at `cursor` in meta block `block` (of
    /// `seq`) and programs it; the caller syncs (or leaves it to the next
    /// sync: `synced` says whether everything before it is durable).
    /// Returns the bytes it took.
    fn meta_write(
        &mut self,
        block: u32,
        cursor: u32,
        seq: u64,
        kind: Kind,
        synced: bool,
        payload: &[&[u8]],
    ) -> Res<usize, D> {
        let mut buf = Vec::new();
        format::push_record(&mut buf, self.p, seq, kind, synced, 0, payload);
        let at = self.geo.block_offset(block) + u64::from(cursor);
        self.dev_program(at, &buf)?;
        Ok(buf.len())
    }
}
