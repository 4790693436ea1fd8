//! Shared by the raft_rs tests: entry and snapshot builders, the devices the
//! generic test bodies run on, and a comparable picture of a store.
#![allow(dead_code, clippy::field_reassign_with_default)]

use blockwal::raft_rs::RaftStorage;
use blockwal::{BlockDevice, FileDevice, MemDevice, Wal, WalOptions};
use raft::prelude::*;
use raft::GetEntriesContext;

/// An entry at `index` of `term` with some data derived from both.
pub fn ent(index: u64, term: u64) -> Entry {
    let mut e = Entry::default();
    e.index = index;
    e.term = term;
    e
}

/// An entry with data.
pub fn ent_data(index: u64, term: u64, data: &[u8]) -> Entry {
    let mut e = ent(index, term);
    e.data = data.to_vec().into();
    e
}

/// A snapshot (metadata only, like raft-rs's tests) with these voters.
pub fn snap(index: u64, term: u64, voters: &[u64]) -> Snapshot {
    let mut s = Snapshot::default();
    s.mut_metadata().index = index;
    s.mut_metadata().term = term;
    s.mut_metadata().mut_conf_state().voters = voters.to_vec();
    s
}

/// A conf state with these voters.
pub fn voters(v: &[u64]) -> ConfState {
    let mut cs = ConfState::default();
    cs.voters = v.to_vec();
    cs
}

/// A hard state.
pub fn hs(term: u64, vote: u64, commit: u64) -> HardState {
    let mut h = HardState::default();
    h.term = term;
    h.vote = vote;
    h.commit = commit;
    h
}

/// The caller context raft-rs's own storage tests use.
pub fn ctx() -> GetEntriesContext {
    GetEntriesContext::empty(false)
}

/// A device the generic test bodies run on: a fresh log, and the same log
/// reopened as a restarted process would see it.
pub trait Bench {
    /// Its device.
    type D: BlockDevice;
    /// For messages.
    fn name(&self) -> &'static str;
    /// A new, empty log.
    fn fresh(&mut self) -> Wal<Self::D>;
    /// The log on `wal`'s device, closed and opened again.
    fn reopen(&mut self, wal: Wal<Self::D>) -> Wal<Self::D>;
}

/// Small blocks so compaction frees blocks and metadata blocks roll over.
const BLOCK: u32 = 4096;

fn opts() -> WalOptions {
    WalOptions::default().cache_bytes(512).cache_entries(4)
}

/// Logs in memory.
pub struct MemBench;

impl Bench for MemBench {
    type D = MemDevice;
    fn name(&self) -> &'static str {
        "MemDevice"
    }
    fn fresh(&mut self) -> Wal<MemDevice> {
        Wal::open_with(MemDevice::new(BLOCK, 8, 256), opts()).unwrap()
    }
    fn reopen(&mut self, wal: Wal<MemDevice>) -> Wal<MemDevice> {
        Wal::open_with(wal.into_device(), opts()).unwrap()
    }
}

/// Logs in files in a temporary directory (one per fresh log).
pub struct FileBench {
    /// Keeps the directories alive.
    pub dirs: Vec<tempfile::TempDir>,
}

impl FileBench {
    /// No logs yet.
    pub fn new() -> Self {
        FileBench { dirs: Vec::new() }
    }
}

impl Bench for FileBench {
    type D = FileDevice;
    fn name(&self) -> &'static str {
        "FileDevice"
    }
    fn fresh(&mut self) -> Wal<FileDevice> {
        let d = tempfile::tempdir().unwrap();
        let dev = FileDevice::open(d.path(), BLOCK, 8, 256).unwrap();
        self.dirs.push(d);
        Wal::open_with(dev, opts()).unwrap()
    }
    fn reopen(&mut self, wal: Wal<FileDevice>) -> Wal<FileDevice> {
        let path = wal.into_device().path().to_path_buf();
        let dev = FileDevice::open_file(path, BLOCK, 8, 256).unwrap();
        Wal::open_with(dev, opts()).unwrap()
    }
}

/// Everything a store shows through its API, to compare two stores.
#[derive(Debug, PartialEq)]
pub struct Picture {
    /// `first_index()`, `last_index()`.
    pub first: u64,
    /// Last index.
    pub last: u64,
    /// `term(first - 1)`.
    pub base_term: raft::Result<u64>,
    /// All entries.
    pub entries: Vec<Entry>,
    /// `initial_state()`.
    pub hs: HardState,
    /// Its conf state.
    pub cs: ConfState,
    /// `latest_snapshot()`.
    pub snapshot: Option<Snapshot>,
}

/// What `s` shows.
pub fn picture<D: BlockDevice>(s: &RaftStorage<D>) -> Picture {
    let first = s.first_index().unwrap();
    let last = s.last_index().unwrap();
    let rs = s.initial_state().unwrap();
    Picture {
        first,
        last,
        base_term: s.term(first - 1),
        entries: s.entries(first, last + 1, None, ctx()).unwrap(),
        hs: rs.hard_state,
        cs: rs.conf_state,
        snapshot: s.latest_snapshot().unwrap(),
    }
}

/// Closes `s` (the last handle) and opens the store on the same log again.
pub fn reopen<B: Bench>(b: &mut B, s: RaftStorage<B::D>) -> RaftStorage<B::D> {
    let wal = s.into_wal().expect("last handle");
    RaftStorage::open(b.reopen(wal)).unwrap()
}

/// A raft-rs `StorageError` as a raft error.
pub fn store_err(e: raft::StorageError) -> raft::Error {
    raft::Error::Store(e)
}

/// True if `e` is the store's `Misuse` error.
pub fn is_misuse(e: &raft::Error) -> bool {
    match e {
        raft::Error::Store(raft::StorageError::Other(b)) => matches!(
            b.downcast_ref::<blockwal::raft_rs::StoreError>(),
            Some(blockwal::raft_rs::StoreError::Misuse(_))
        ),
        _ => false,
    }
}
