//! The demo node's durable Raft storage: raft-rs's `Storage` over
//! blockwal's [`Wal`] on an [`OpfsDevice`], plus the writes a `Ready` loop
//! makes (append with conflict truncation, hard state, conf state,
//! snapshot, sync).
//!
//! Entries are stored whole (protobuf) at their own index; the hard state,
//! conf state and last snapshot's metadata are durable meta keys.

use blockwal::devices::opfs::{OpfsDevice, OpfsError};
use blockwal::{Error, Wal};
use protobuf::Message as _;
use raft::prelude::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, StorageError};

const HARD_STATE: &str = "raft.hard_state";
const CONF_STATE: &str = "raft.conf_state";
const SNAPSHOT: &str = "raft.snapshot";

/// A blockwal error as a raft-rs storage error.
fn storage_err(e: Error<OpfsError>) -> raft::Error {
    raft::Error::Store(StorageError::Other(e.to_string().into()))
}

fn decode<M: protobuf::Message>(bytes: &[u8]) -> raft::Result<M> {
    M::parse_from_bytes(bytes).map_err(raft::Error::CodecError)
}

/// Meta key `key` decoded; the default when absent (a new node).
fn meta<M: protobuf::Message>(wal: &Wal<OpfsDevice>, key: &str) -> raft::Result<M> {
    wal.get_meta(key).map_or_else(|| Ok(M::new()), decode)
}

/// The node's log and Raft state, durable in one OPFS file.
pub struct Store {
    wal: Wal<OpfsDevice>,
    hard: HardState,
    conf: ConfState,
    snap: SnapshotMetadata,
}

impl Store {
    /// Recovers the state in `wal` (an empty log: a new node).
    pub fn open(wal: Wal<OpfsDevice>) -> raft::Result<Store> {
        let hard: HardState = meta(&wal, HARD_STATE)?;
        let conf: ConfState = meta(&wal, CONF_STATE)?;
        let snap: SnapshotMetadata = meta(&wal, SNAPSHOT)?;
        Ok(Store {
            wal,
            hard,
            conf,
            snap,
        })
    }

    /// The durable hard state.
    pub fn hard_state(&self) -> &HardState {
        &self.hard
    }

    /// The durable conf state.
    pub fn conf_state(&self) -> &ConfState {
        &self.conf
    }

    /// Persists the hard state (durable on return).
    pub fn set_hard_state(&mut self, hs: &HardState) -> raft::Result<()> {
        let bytes = hs.write_to_bytes().map_err(raft::Error::CodecError)?;
        self.wal.set_meta(HARD_STATE, &bytes).map_err(storage_err)?;
        self.hard = hs.clone();
        Ok(())
    }

    /// Persists the conf state (durable on return).
    pub fn set_conf_state(&mut self, cs: &ConfState) -> raft::Result<()> {
        let bytes = cs.write_to_bytes().map_err(raft::Error::CodecError)?;
        self.wal.set_meta(CONF_STATE, &bytes).map_err(storage_err)?;
        self.conf = cs.clone();
        Ok(())
    }

    /// Appends `entries`, first removing any suffix they replace; durable
    /// after [`Store::sync`].
    pub fn append(&mut self, entries: &[Entry]) -> raft::Result<()> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        if first.index <= self.snap.index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if first.index > self.last() + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        self.wal.truncate(first.index).map_err(storage_err)?;
        for e in entries {
            let bytes = e.write_to_bytes().map_err(raft::Error::CodecError)?;
            self.wal.append(e.index, &bytes).map_err(storage_err)?;
        }
        Ok(())
    }

    /// Installs a snapshot: the log restarts after it.
    pub fn apply_snapshot(&mut self, snap: &Snapshot) -> raft::Result<()> {
        let meta = snap.get_metadata();
        if meta.index <= self.snap.index {
            return Err(raft::Error::Store(StorageError::SnapshotOutOfDate));
        }
        let bytes = meta.write_to_bytes().map_err(raft::Error::CodecError)?;
        self.wal.set_meta(SNAPSHOT, &bytes).map_err(storage_err)?;
        self.wal.compact(meta.index).map_err(storage_err)?;
        self.snap = meta.clone();
        self.set_conf_state(meta.get_conf_state())?;
        let mut hs = self.hard.clone();
        hs.term = hs.term.max(meta.term);
        hs.commit = hs.commit.max(meta.index);
        self.set_hard_state(&hs)
    }

    /// Makes every append durable (`FileSystemSyncAccessHandle.flush`).
    pub fn sync(&mut self) -> raft::Result<()> {
        self.wal.sync().map_err(storage_err)
    }

    fn first(&self) -> u64 {
        self.snap.index + 1
    }

    fn last(&self) -> u64 {
        self.wal.last_index().unwrap_or(0).max(self.snap.index)
    }

    fn entry(&self, index: u64) -> raft::Result<Entry> {
        match self.wal.try_get(index).map_err(storage_err)? {
            Some(bytes) => decode(&bytes),
            None => Err(raft::Error::Store(StorageError::Unavailable)),
        }
    }
}

impl raft::Storage for Store {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState {
            hard_state: self.hard.clone(),
            conf_state: self.conf.clone(),
        })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last() + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let max = max_size.into();
        let mut out = Vec::new();
        let mut size = 0u64;
        for i in low..high {
            let e = self.entry(i)?;
            size += u64::from(e.compute_size());
            // At least one entry, then only while under `max`.
            if !out.is_empty() && max.is_some_and(|m| size > m) {
                break;
            }
            out.push(e);
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx == self.snap.index {
            return Ok(self.snap.term);
        }
        if idx < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > self.last() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(self.entry(idx)?.term)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        // The demo never compacts its log, so a lagging peer can always be
        // sent entries instead.
        Err(raft::Error::Store(
            StorageError::SnapshotTemporarilyUnavailable,
        ))
    }
}
