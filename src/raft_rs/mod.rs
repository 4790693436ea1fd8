//! A [raft-rs](https://docs.rs/raft/0.7) (`raft` 0.7) log store over any
//! [`Wal`] (feature `raft-rs`): [`RaftStorage`] implements [`raft::Storage`]
//! and the write side a `Ready` loop needs. The guide below is
//! `docs/raft-rs.md`; its example runs as a doctest.
//!
#![doc = include_str!("../../docs/raft-rs.md")]
// raft's messages carry hidden fields (and differ between its two codecs):
// `Default` then field assignment is the portable way to build them.
#![allow(clippy::field_reassign_with_default)]

mod codec;

extern crate std;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use std::sync::{Mutex, MutexGuard};

use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, Ready, StorageError};

use self::codec::State;
use crate::{BlockDevice, Wal};

/// Metadata key of the durable state (hard state, conf state, snapshot
/// metadata, compaction point).
pub const STATE_KEY: &str = "raft-rs/state";
/// Metadata keys of the two snapshot data slots.
pub const SNAPSHOT_KEYS: [&str; 2] = ["raft-rs/snapshot-0", "raft-rs/snapshot-1"];

/// What went wrong in a [`RaftStorage`], boxed in
/// `raft::Error::Store(StorageError::Other(..))` (downcast to read it).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The log failed (device error formatted as text): see
    /// [`crate::Error`] for what to do.
    Wal(crate::Error<String>),
    /// Stored raft-rs state does not decode or does not fit together.
    Corrupt(String),
    /// A call the raft-rs contract does not allow; nothing was changed.
    Misuse(String),
    /// A thread panicked while it held the store: reopen the log.
    Poisoned,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Wal(e) => write!(f, "raft-rs store: {e}"),
            StoreError::Corrupt(w) => write!(
                f,
                "raft-rs store: corrupt state: {w}; run `blockwal verify` on the log"
            ),
            StoreError::Misuse(w) => write!(f, "raft-rs store: refused: {w}"),
            StoreError::Poisoned => write!(
                f,
                "raft-rs store: a thread panicked while using it; reopen the log"
            ),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<StoreError> for raft::Error {
    fn from(e: StoreError) -> Self {
        raft::Error::Store(StorageError::Other(Box::new(e)))
    }
}

fn wal_err<E: fmt::Debug>(e: crate::Error<E>) -> raft::Error {
    StoreError::Wal(e.map_device(|d| format!("{d:?}"))).into()
}

fn misuse(what: String) -> raft::Error {
    StoreError::Misuse(what).into()
}

fn corrupt(what: String) -> raft::Error {
    StoreError::Corrupt(what).into()
}

/// A raft-rs [`raft::Storage`] over a [`Wal`], with the write side a `Ready`
/// loop needs (see the [module docs](self) for the order).
///
/// Cloning gives another handle on the same store, as with raft-rs's
/// `MemStorage`: one goes into `RawNode::new`, the application keeps one to
/// write. `Storage`'s methods take `&self`, so the log sits behind a
/// [`Mutex`]: the store is `Send + Sync` when the device is `Send`, so a node
/// can run on its own thread. Every method locks once; nothing blocks inside
/// it but device I/O.
pub struct RaftStorage<D: BlockDevice> {
    core: Arc<Mutex<Core<D>>>,
}

impl<D: BlockDevice> Clone for RaftStorage<D> {
    fn clone(&self) -> Self {
        RaftStorage {
            core: Arc::clone(&self.core),
        }
    }
}

impl<D: BlockDevice> fmt::Debug for RaftStorage<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RaftStorage").finish_non_exhaustive()
    }
}

struct Core<D: BlockDevice> {
    wal: Wal<D>,
    st: State,
    /// Highest index known durable (synced since open).
    durable: u64,
    /// The commit index raft-rs gave last; `st.hs.commit` is its saved copy,
    /// capped at the durable entries.
    commit: u64,
    /// Encoding buffer, reused.
    buf: Vec<u8>,
}

impl<D: BlockDevice> Core<D> {
    fn first(&self) -> u64 {
        self.st.base_index + 1
    }

    fn last(&self) -> u64 {
        self.wal.last_index().unwrap_or(self.st.base_index)
    }

    fn raw(&self, idx: u64) -> raft::Result<alloc::borrow::Cow<'_, [u8]>> {
        match self.wal.try_get(idx) {
            Ok(Some(b)) => Ok(b),
            Ok(None) => Err(corrupt(format!("entry {idx} missing from the log"))),
            Err(e) => Err(wal_err(e)),
        }
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx == self.st.base_index {
            return Ok(self.st.base_term);
        }
        if idx == self.st.snap.index {
            return Ok(self.st.snap.term);
        }
        if idx < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > self.last() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        codec::entry_term(&self.raw(idx)?).map_err(|w| corrupt(format!("entry {idx}: {w}")))
    }

    fn entry(&self, idx: u64) -> raft::Result<Entry> {
        codec::decode_entry(idx, &self.raw(idx)?).map_err(|w| corrupt(format!("entry {idx}: {w}")))
    }

    /// Writes the state, with the commit index capped at the durable
    /// entries (or the new first index), so it never points past the log.
    fn save_state(&mut self, mut st: State) -> raft::Result<()> {
        st.hs.commit = self.commit.min(self.durable.max(st.base_index));
        if st == self.st {
            return Ok(());
        }
        let b = codec::encode_state(&st);
        self.wal.set_meta(STATE_KEY, &b).map_err(wal_err)?;
        self.st = st;
        Ok(())
    }

    /// Makes the entries durable (the commit index stays unsaved).
    fn sync_entries(&mut self) -> raft::Result<()> {
        self.wal.sync().map_err(wal_err)?;
        self.durable = self.last();
        Ok(())
    }

    /// Makes everything durable: the entries, then a commit index not yet saved.
    fn sync(&mut self) -> raft::Result<()> {
        self.sync_entries()?;
        self.save_state(self.st.clone())
    }

    /// The hard state with the current (possibly unsaved) commit index.
    fn hard_state(&self) -> HardState {
        let mut hs = self.st.hs.clone();
        hs.commit = self.commit;
        hs
    }

    fn snapshot_data(&self) -> raft::Result<&[u8]> {
        let key = SNAPSHOT_KEYS[usize::from(self.st.slot)];
        let v = self.wal.get_meta(key).ok_or_else(|| {
            corrupt(format!(
                "snapshot {} has no data ({key} missing)",
                self.st.snap.index
            ))
        })?;
        let (index, term, data) =
            codec::decode_snap_data(v).map_err(|w| corrupt(format!("{key}: {w}")))?;
        if (index, term) != (self.st.snap.index, self.st.snap.term) {
            return Err(corrupt(format!(
                "{key} holds snapshot {index} (term {term}), the state names {} (term {})",
                self.st.snap.index, self.st.snap.term
            )));
        }
        Ok(data)
    }

    /// Writes snapshot data into the slot the state does not name; returns
    /// that slot.
    fn write_snapshot_data(&mut self, index: u64, term: u64, data: &[u8]) -> raft::Result<u8> {
        let slot = 1 - self.st.slot;
        let v = codec::encode_snap_data(index, term, data);
        self.wal
            .set_meta(SNAPSHOT_KEYS[usize::from(slot)], &v)
            .map_err(wal_err)?;
        Ok(slot)
    }

    fn set_hard_state(&mut self, hs: &HardState) -> raft::Result<()> {
        if hs.commit > self.last() {
            return Err(misuse(format!(
                "hard state commits {} past the last entry {}",
                hs.commit,
                self.last()
            )));
        }
        self.commit = hs.commit;
        // Term and vote are durable at once; a new commit index alone waits
        // for the next state write or `sync` (raft's commit index is volatile).
        if (hs.term, hs.vote) == (self.st.hs.term, self.st.hs.vote) {
            return Ok(());
        }
        let mut st = self.st.clone();
        st.hs.term = hs.term;
        st.hs.vote = hs.vote;
        self.save_state(st)
    }

    fn append(&mut self, ents: &[Entry]) -> raft::Result<()> {
        let Some(e0) = ents.first() else {
            return Ok(());
        };
        if e0.index < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if e0.index > self.last() + 1 {
            return Err(misuse(format!(
                "append at {} leaves a gap after the last entry {}",
                e0.index,
                self.last()
            )));
        }
        for w in ents.windows(2) {
            if w[1].index != w[0].index + 1 {
                return Err(misuse(format!(
                    "appended entries jump from index {} to {}",
                    w[0].index, w[1].index
                )));
            }
        }
        if e0.index <= self.last() {
            // A conflicting suffix: gone (durably) before the new entries go in.
            self.wal.truncate(e0.index).map_err(wal_err)?;
            self.durable = self.durable.min(e0.index - 1);
        }
        let mut buf = core::mem::take(&mut self.buf);
        let mut r = Ok(());
        for e in ents {
            codec::encode_entry(e, &mut buf);
            r = self.wal.append(e.index, &buf).map_err(wal_err);
            if r.is_err() {
                break;
            }
        }
        self.buf = buf;
        r
    }

    fn apply_snapshot(&mut self, snap: &Snapshot) -> raft::Result<()> {
        let meta = snap.get_metadata();
        let index = meta.index;
        if self.first() > index {
            return Err(raft::Error::Store(StorageError::SnapshotOutOfDate));
        }
        let slot = self.write_snapshot_data(index, meta.term, &snap.data)?;
        // Entries after it are on a branch the snapshot replaces (raft-rs
        // only applies a snapshot whose index and term its log does not match).
        if self.last() > index {
            self.wal.truncate(index + 1).map_err(wal_err)?;
            self.durable = self.durable.min(index);
        }
        let mut st = self.st.clone();
        st.snap = meta.clone();
        st.slot = slot;
        st.base_index = index;
        st.base_term = meta.term;
        st.hs.term = st.hs.term.max(meta.term);
        st.cs = meta.get_conf_state().clone();
        self.commit = index;
        self.save_state(st)?;
        // A crash before this compaction is finished at open.
        self.wal.compact(index).map_err(wal_err)?;
        self.durable = self.durable.max(index);
        Ok(())
    }

    fn create_snapshot(&mut self, index: u64, cs: &ConfState, data: &[u8]) -> raft::Result<()> {
        if index <= self.st.snap.index {
            return Err(raft::Error::Store(StorageError::SnapshotOutOfDate));
        }
        if index > self.last() {
            return Err(misuse(format!(
                "snapshot at {index} past the last entry {}",
                self.last()
            )));
        }
        let term = self.term(index)?;
        let slot = self.write_snapshot_data(index, term, data)?;
        let mut st = self.st.clone();
        st.snap = SnapshotMetadata::default();
        st.snap.index = index;
        st.snap.term = term;
        st.snap.set_conf_state(cs.clone());
        st.slot = slot;
        self.save_state(st)
    }

    fn compact(&mut self, compact_index: u64) -> raft::Result<()> {
        if compact_index <= self.first() {
            return Ok(());
        }
        if compact_index > self.last() + 1 {
            return Err(misuse(format!(
                "compact to {compact_index} past the last entry {}",
                self.last()
            )));
        }
        if compact_index > self.st.snap.index + 1 {
            return Err(misuse(format!(
                "compact to {compact_index} past the last snapshot ({}): create_snapshot first",
                self.st.snap.index
            )));
        }
        let up_to = compact_index - 1;
        let mut st = self.st.clone();
        st.base_term = self.term(up_to)?;
        st.base_index = up_to;
        self.save_state(st)?;
        // A crash before this compaction is finished at open.
        self.wal.compact(up_to).map_err(wal_err)
    }

    /// Makes the log agree with the state after a crash: finishes a
    /// compaction the state records, refuses a log that does not fit.
    fn recover(&mut self) -> raft::Result<()> {
        let base = self.st.base_index;
        let behind = match (self.wal.first_index(), self.wal.next_index()) {
            (Some(first), _) => first <= base,
            (None, Some(next)) => next <= base,
            (None, None) => base > 0,
        };
        if behind {
            self.wal.compact(base).map_err(wal_err)?;
        }
        if self.wal.first_index().is_none() && self.wal.next_index() > Some(base + 1) {
            return Err(corrupt(format!(
                "the empty log continues at {:?}, the state expects {}",
                self.wal.next_index(),
                base + 1
            )));
        }
        if let Some(first) = self.wal.first_index() {
            if first != base + 1 {
                return Err(corrupt(format!(
                    "the log starts at {first}, the state expects {}",
                    base + 1
                )));
            }
        }
        if self.st.hs.commit > self.last() {
            return Err(corrupt(format!(
                "hard state commits {} past the last entry {}",
                self.st.hs.commit,
                self.last()
            )));
        }
        if self.st.snap.index > 0 {
            self.snapshot_data()?;
        }
        Ok(())
    }
}

impl<D: BlockDevice> RaftStorage<D> {
    /// Opens the store on a log: reads the durable state, finishes a
    /// compaction a crash interrupted, and checks that state and log fit.
    /// A new (empty) log is an empty store, like `MemStorage::new()`.
    pub fn open(wal: Wal<D>) -> raft::Result<Self> {
        let st = match wal.get_meta(STATE_KEY) {
            Some(b) => codec::decode_state(b).map_err(|w| corrupt(format!("{STATE_KEY}: {w}")))?,
            None => State::default(),
        };
        let mut core = Core {
            wal,
            durable: st.base_index,
            commit: st.hs.commit,
            st,
            buf: Vec::new(),
        };
        core.recover()?;
        // What survived is made durable, so the durable index starts at the end.
        core.sync_entries()?;
        Ok(RaftStorage {
            core: Arc::new(Mutex::new(core)),
        })
    }

    fn lock(&self) -> raft::Result<MutexGuard<'_, Core<D>>> {
        self.core.lock().map_err(|_| StoreError::Poisoned.into())
    }

    /// Gives the log back if this is the last handle (else the store itself).
    /// Nothing is synced: call [`RaftStorage::sync`] first.
    pub fn into_wal(self) -> Result<Wal<D>, Self> {
        match Arc::try_unwrap(self.core) {
            Ok(m) => Ok(m.into_inner().unwrap_or_else(|p| p.into_inner()).wal),
            Err(core) => Err(RaftStorage { core }),
        }
    }

    /// Sets the conf state of a new store (every node of a new cluster with
    /// the same one), like `MemStorage::initialize_with_conf_state`.
    /// Refused once the store has a conf state or entries.
    pub fn initialize_with_conf_state(&self, cs: impl Into<ConfState>) -> raft::Result<()> {
        let mut c = self.lock()?;
        if c.st.cs != ConfState::default() || c.last() > 0 {
            return Err(misuse("initialize an already initialized store".into()));
        }
        let mut st = c.st.clone();
        st.cs = cs.into();
        c.save_state(st)
    }

    /// Appends entries, truncating first the entries from the first one's
    /// index on (a conflicting suffix). Readable at once, durable after
    /// [`RaftStorage::sync`]. The first index must be in
    /// `first_index()..=last_index() + 1` (below: `Compacted`).
    pub fn append(&self, entries: &[Entry]) -> raft::Result<()> {
        self.lock()?.append(entries)
    }

    /// Saves the hard state: a new term or vote is durable on return; a new
    /// commit index alone is kept in memory and saved with the next state
    /// write or [`RaftStorage::sync`], capped at the durable entries (raft's
    /// commit index is volatile: after a crash it may be older, never past
    /// the log). Refused past the last entry.
    pub fn set_hard_state(&self, hs: &HardState) -> raft::Result<()> {
        self.lock()?.set_hard_state(hs)
    }

    /// Sets a new commit index (a `LightReady`'s `commit_index()`), as
    /// [`RaftStorage::set_hard_state`] does: saved with the next state write
    /// or [`RaftStorage::sync`].
    pub fn commit_to(&self, index: u64) -> raft::Result<()> {
        let mut c = self.lock()?;
        let mut hs = c.hard_state();
        hs.commit = index;
        c.set_hard_state(&hs)
    }

    /// Saves the conf state (durable on return), after applying a conf change.
    pub fn set_conf_state(&self, cs: &ConfState) -> raft::Result<()> {
        let mut c = self.lock()?;
        let mut st = c.st.clone();
        st.cs = cs.clone();
        c.save_state(st)
    }

    /// Installs a snapshot received from the leader (durable on return): the
    /// log is emptied and continues after the snapshot's index, whose term,
    /// conf state and data are kept; the hard state commits to it.
    /// `SnapshotOutOfDate` if the log already starts after its index.
    pub fn apply_snapshot(&self, snapshot: &Snapshot) -> raft::Result<()> {
        self.lock()?.apply_snapshot(snapshot)
    }

    /// Keeps a snapshot of the application's state machine at `index`
    /// (applied, so committed) with the conf state at that index (durable on
    /// return). It is what [`raft::Storage::snapshot`] returns from now on.
    /// `SnapshotOutOfDate` if it is not newer than the last one.
    pub fn create_snapshot(&self, index: u64, cs: &ConfState, data: &[u8]) -> raft::Result<()> {
        self.lock()?.create_snapshot(index, cs, data)
    }

    /// Discards the entries before `compact_index` (durable on return), like
    /// `MemStorage::compact`; at or below the first index: nothing to do.
    /// Refused past `last_index() + 1` and past the last snapshot's index + 1.
    pub fn compact(&self, compact_index: u64) -> raft::Result<()> {
        self.lock()?.compact(compact_index)
    }

    /// Makes everything durable: the appended entries (one device sync) and
    /// a commit index not yet saved (one metadata write, only if there is one).
    pub fn sync(&self) -> raft::Result<()> {
        self.lock()?.sync()
    }

    /// Steps 2 and 3 of the `Ready` loop (see the [module docs](self)):
    /// applies the snapshot if there is one, appends the entries, saves the
    /// hard state, syncs the entries (one device sync; a new term or vote
    /// adds a metadata write). The persisted messages may be sent after it
    /// returns.
    pub fn persist_ready(&self, rd: &Ready) -> raft::Result<()> {
        let mut c = self.lock()?;
        if !rd.snapshot().is_empty() {
            c.apply_snapshot(rd.snapshot())?;
        }
        c.append(rd.entries())?;
        if let Some(hs) = rd.hs() {
            c.set_hard_state(hs)?;
        }
        if c.durable < c.last() {
            c.sync_entries()?;
        }
        Ok(())
    }

    /// The hard state (its commit index possibly not saved yet).
    pub fn hard_state(&self) -> raft::Result<HardState> {
        Ok(self.lock()?.hard_state())
    }

    /// The last conf state saved.
    pub fn conf_state(&self) -> raft::Result<ConfState> {
        Ok(self.lock()?.st.cs.clone())
    }

    /// Highest log index known durable (0 if a thread panicked in the store).
    pub fn durable_index(&self) -> u64 {
        self.lock().map_or(0, |c| c.durable)
    }

    /// The last snapshot created or applied, with its data (`None`: none yet).
    pub fn latest_snapshot(&self) -> raft::Result<Option<Snapshot>> {
        let c = self.lock()?;
        if c.st.snap.index == 0 {
            return Ok(None);
        }
        let mut s = Snapshot::default();
        s.data = c.snapshot_data()?.to_vec().into();
        s.set_metadata(c.st.snap.clone());
        Ok(Some(s))
    }

    /// Runs `f` on the log (for statistics: memory, geometry, metadata).
    /// The store is locked meanwhile: `f` must not call the store.
    pub fn with_wal<R>(&self, f: impl FnOnce(&Wal<D>) -> R) -> raft::Result<R> {
        Ok(f(&self.lock()?.wal))
    }
}

impl<D: BlockDevice> raft::Storage for RaftStorage<D> {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let c = self.lock()?;
        let mut hs = c.hard_state();
        // Entries up to the snapshot were applied, so committed; raft-rs
        // wants the commit index at least `first_index() - 1`.
        hs.commit = hs.commit.max(c.st.snap.index).max(c.st.base_index);
        Ok(RaftState::new(hs, c.st.cs.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let max = max_size.into().unwrap_or(raft::NO_LIMIT);
        let c = self.lock()?;
        if low < c.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > c.last() + 1 {
            return Err(misuse(format!(
                "entries up to {high} past the last entry {}",
                c.last()
            )));
        }
        // Like raft's `limit_size`: the first entry always, then while the
        // encoded (protobuf) size stays within `max`.
        let mut out = Vec::new();
        let mut size = 0u64;
        for idx in low..high {
            let e = c.entry(idx)?;
            size = size.saturating_add(u64::from(e.compute_size()));
            if !out.is_empty() && max != raft::NO_LIMIT && size > max {
                break;
            }
            out.push(e);
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.lock()?.term(idx)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.lock()?.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.lock()?.last())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        match self.latest_snapshot()? {
            Some(s) if s.get_metadata().index >= request_index => Ok(s),
            _ => Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            )),
        }
    }
}
