//! The logs compared, behind one interface: the raw-file baseline, blockwal,
//! okaywal, TiKV's raft-engine and Databend's raft-log. Each lives in its own
//! directory; what a log does not offer is said by [`Kind::lacks`], never
//! faked.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};

use blockwal::shared::SharedWal;
use blockwal::{FileDevice, RaftWal, RaftWalOptions, Wal, WalOptions};
use raft_log::api::raft_log_writer::RaftLogWriter;

use super::{err, okay_commit, IoTimed, OkayManager, Raw};

/// One of the logs compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `pwrite` + `fdatasync` into one file whose blocks were already
    /// written (zeros, synced): the physical limit.
    Raw,
    /// This crate (`RaftWal`: one file, `FileDevice`).
    Blockwal,
    /// okaywal 0.3.
    Okaywal,
    /// TiKV's raft-engine 0.4.2 (one Raft group).
    RaftEngine,
    /// Databend's raft-log 0.4.6.
    RaftLog,
}

/// Every log, in table order.
pub const ALL: [Kind; 5] = [
    Kind::Raw,
    Kind::Blockwal,
    Kind::Okaywal,
    Kind::RaftEngine,
    Kind::RaftLog,
];

/// An operation a log may lack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Append without waiting for durability.
    Buffered,
    /// Read one entry by its index.
    Get,
    /// Remove entries from an index on.
    Truncate,
    /// Remove entries up to an index.
    Compact,
    /// Keep a large log and reopen it (open time and memory).
    Reopen,
    /// Many writers each waiting for durability, sharing syncs.
    Group,
}

impl Kind {
    /// The column name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Raw => "raw file",
            Kind::Blockwal => "blockwal",
            Kind::Okaywal => "okaywal",
            Kind::RaftEngine => "raft-engine",
            Kind::RaftLog => "raft-log",
        }
    }

    /// The name on the command line (`--open-peer`).
    pub fn id(self) -> &'static str {
        match self {
            Kind::Raw => "raw",
            Kind::Blockwal => "blockwal",
            Kind::Okaywal => "okaywal",
            Kind::RaftEngine => "raft-engine",
            Kind::RaftLog => "raft-log",
        }
    }

    /// The kind named `id`.
    pub fn from_id(id: &str) -> Option<Kind> {
        ALL.into_iter().find(|k| k.id() == id)
    }

    /// Why this log has no figure for `op` (a table footnote), or None
    /// when it offers it.
    pub fn lacks(self, op: Op) -> Option<&'static str> {
        use Kind::*;
        use Op::*;
        match (self, op) {
            (Raw, Get | Truncate | Compact | Reopen) => {
                Some("the raw file is a baseline for writes only: no index, no reads, no log to open")
            }
            (Raw, Group) => None,
            (Okaywal, Buffered) => {
                Some("okaywal has no buffered append: every committed entry is synced")
            }
            (Okaywal, Get) => Some(
                "okaywal reads by file position only (no index): the caller must keep one",
            ),
            (Okaywal, Truncate) => Some("okaywal cannot remove the newest entries"),
            (Okaywal, Compact | Reopen) => Some(
                "okaywal hands old segments to its checkpointer and recycles them: it keeps no large log to compact or open",
            ),
            (RaftEngine, Truncate) => Some(
                "raft-engine has no truncate call: appending a lower index overwrites the tail",
            ),
            _ => None,
        }
    }
}

/// Entry type for raft-engine (it stores protobuf messages).
pub struct EngineEntries;

impl raft_engine::MessageExt for EngineEntries {
    type Entry = raft_proto::eraftpb::Entry;
    fn index(e: &Self::Entry) -> u64 {
        e.index
    }
}

/// raft-log's types: (term, index) ids, byte payloads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogTypes;

impl raft_log::Types for LogTypes {
    type LogId = (u64, u64);
    type LogPayload = Vec<u8>;
    type Vote = (u64, u64);
    type Callback = SyncSender<io::Result<()>>;
    type UserData = String;
    fn log_index(id: &Self::LogId) -> u64 {
        id.1
    }
    fn payload_size(p: &Self::LogPayload) -> u64 {
        p.len() as u64
    }
}

/// The raft-engine group every entry goes to (one Raft group, as blockwal's one log).
const REGION: u64 = 1;

fn engine_entry(index: u64, data: &[u8]) -> raft_proto::eraftpb::Entry {
    let mut e = raft_proto::eraftpb::Entry {
        index,
        term: 1,
        ..Default::default()
    };
    e.set_data(data.to_vec().into());
    e
}

fn raft_log_flush(rl: &mut raft_log::RaftLog<LogTypes>) -> io::Result<()> {
    let (tx, rx) = sync_channel(1);
    rl.flush(true, Some(tx))?;
    rx.recv()
        .map_err(|_| io::Error::other("raft-log flush worker gone"))?
}

/// The raw-file baseline (its file handling is the crate's `Raw`).
pub struct RawLog(Raw);

/// One open log of any kind. Indexes start at 1 and follow each other.
// A few live at a time: their sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum Peer {
    /// The baseline.
    Raw(RawLog),
    /// blockwal.
    Blockwal(Wal<IoTimed<FileDevice>>),
    /// okaywal.
    Okaywal(okaywal::WriteAheadLog),
    /// raft-engine.
    RaftEngine(raft_engine::Engine, raft_engine::LogBatch),
    /// raft-log.
    RaftLog(Box<raft_log::RaftLog<LogTypes>>),
}

/// Where `kind` keeps its files under `dir`.
pub fn dir_of(dir: &Path, kind: Kind) -> PathBuf {
    dir.join(kind.id())
}

/// A blockwal log with block size `bs` in `dir`.
pub fn open_blockwal(dir: &Path, bs: u32) -> io::Result<RaftWal> {
    RaftWal::open_with(dir, RaftWalOptions::default().block_size(bs)).map_err(err)
}

/// The log [`open_blockwal`] opens (`RaftWal::open_with`'s device and
/// options), its device calls timed into [`crate::io_cpu`].
pub fn open_blockwal_timed(dir: &Path, bs: u32) -> io::Result<Wal<IoTimed<FileDevice>>> {
    let o = RaftWalOptions::default().block_size(bs);
    let dev = FileDevice::open(dir, o.block_size, 4, u32::MAX).map_err(err)?;
    let wo = WalOptions::default()
        .cache_bytes(o.cache_bytes)
        .cache_entries(o.cache_entries);
    Wal::open_with(IoTimed(dev), wo).map_err(err)
}

/// raft-engine with its defaults, in `dir`.
pub fn open_engine(dir: &Path) -> io::Result<raft_engine::Engine> {
    let cfg = raft_engine::Config {
        dir: dir.to_string_lossy().into_owned(),
        ..Default::default()
    };
    raft_engine::Engine::open(cfg).map_err(err)
}

/// raft-log with its defaults (or a payload cache of `cache_items` entries), in `dir`.
pub fn open_raft_log(
    dir: &Path,
    cache_items: Option<usize>,
) -> io::Result<raft_log::RaftLog<LogTypes>> {
    let mut cfg = raft_log::Config::new(dir.to_string_lossy());
    cfg.log_cache_max_items = cache_items;
    raft_log::RaftLog::open(Arc::new(cfg))
}

impl Peer {
    /// Opens (creating) `kind`'s log in `dir_of(dir, kind)`.
    pub fn open(kind: Kind, dir: &Path, bs: u32) -> io::Result<Peer> {
        let d = dir_of(dir, kind);
        std::fs::create_dir_all(&d)?;
        Ok(match kind {
            Kind::Raw => Peer::Raw(RawLog(Raw::new(&d, 64 << 20)?)),
            Kind::Blockwal => Peer::Blockwal(open_blockwal_timed(&d, bs)?),
            Kind::Okaywal => Peer::Okaywal(okaywal::WriteAheadLog::recover(&d, OkayManager)?),
            Kind::RaftEngine => {
                Peer::RaftEngine(open_engine(&d)?, raft_engine::LogBatch::default())
            }
            Kind::RaftLog => Peer::RaftLog(Box::new(open_raft_log(&d, None)?)),
        })
    }

    /// Which log this is.
    pub fn kind(&self) -> Kind {
        match self {
            Peer::Raw(_) => Kind::Raw,
            Peer::Blockwal(_) => Kind::Blockwal,
            Peer::Okaywal(_) => Kind::Okaywal,
            Peer::RaftEngine(..) => Kind::RaftEngine,
            Peer::RaftLog(_) => Kind::RaftLog,
        }
    }

    /// Appends entry `index` without waiting for durability: blockwal's
    /// `append` (buffered in memory), raft-engine's `write(batch, false)`
    /// (written to the file, not synced), raft-log's `append` (queued for
    /// its flush worker), the raw file's copy into a 256 KiB buffer. The
    /// raw record is the payload behind a 16-byte header, as blockwal's.
    pub fn append(&mut self, index: u64, data: &[u8]) -> io::Result<()> {
        match self {
            Peer::Raw(RawLog(r)) => {
                let mut h = [0u8; 16];
                h[8..].copy_from_slice(&index.to_le_bytes());
                r.push(&h)?;
                r.push(data)
            }
            Peer::Blockwal(w) => w.append(index, data).map_err(err),
            Peer::Okaywal(_) => Err(io::Error::other("okaywal has no buffered append")),
            Peer::RaftEngine(e, b) => {
                b.add_entries::<EngineEntries>(REGION, &[engine_entry(index, data)])
                    .map_err(err)?;
                e.write(b, false).map(drop).map_err(err)
            }
            Peer::RaftLog(l) => l.append([((1, index), data.to_vec())]).map(drop),
        }
    }

    /// Appends `entries` from `first` on as one batch and waits until they
    /// are durable (one sync).
    pub fn commit(&mut self, first: u64, entries: &[&[u8]]) -> io::Result<()> {
        match self {
            Peer::Raw(RawLog(r)) => {
                for (i, d) in entries.iter().enumerate() {
                    let mut h = [0u8; 16];
                    h[8..].copy_from_slice(&(first + i as u64).to_le_bytes());
                    r.push(&h)?;
                    r.push(d)?;
                }
                r.flush()?;
                r.sync()
            }
            Peer::Blockwal(w) => {
                let batch: Vec<(u64, &[u8])> = entries
                    .iter()
                    .enumerate()
                    .map(|(i, d)| (first + i as u64, *d))
                    .collect();
                w.append_batch(&batch).map_err(err)?;
                w.sync().map_err(err)
            }
            Peer::Okaywal(o) => {
                let mut w = o.begin_entry()?;
                for d in entries {
                    w.write_chunk(d)?;
                }
                w.commit().map(drop)
            }
            Peer::RaftEngine(e, b) => {
                let v: Vec<_> = entries
                    .iter()
                    .enumerate()
                    .map(|(i, d)| engine_entry(first + i as u64, d))
                    .collect();
                b.add_entries::<EngineEntries>(REGION, &v).map_err(err)?;
                e.write(b, true).map(drop).map_err(err)
            }
            Peer::RaftLog(l) => {
                l.append(
                    entries
                        .iter()
                        .enumerate()
                        .map(|(i, d)| ((1, first + i as u64), d.to_vec())),
                )?;
                raft_log_flush(l)
            }
        }
    }

    /// Makes everything appended durable.
    pub fn sync(&mut self) -> io::Result<()> {
        match self {
            Peer::Raw(RawLog(r)) => {
                r.flush()?;
                r.sync()
            }
            Peer::Blockwal(w) => w.sync().map_err(err),
            Peer::Okaywal(_) => Ok(()),
            Peer::RaftEngine(e, b) => {
                // `Engine::sync` writes an empty batch, which returns before
                // syncing: sync with a (tiny) real write instead.
                b.put(REGION, b"sync".to_vec(), vec![1]).map_err(err)?;
                e.write(b, true).map(drop).map_err(err)
            }
            Peer::RaftLog(l) => raft_log_flush(l),
        }
    }

    /// Drops entries up to `upto` so a long run does not fill the disk.
    pub fn trim(&mut self, upto: u64) -> io::Result<()> {
        match self {
            Peer::Raw(_) | Peer::Okaywal(_) => Ok(()),
            Peer::Blockwal(w) => w.compact(upto).map_err(err),
            Peer::RaftEngine(e, _) => {
                e.compact_to(REGION, upto + 1);
                e.purge_expired_files().map(drop).map_err(err)
            }
            Peer::RaftLog(l) => l.purge((1, upto)).map(drop),
        }
    }
}

fn poisoned<T>(_: T) -> io::Error {
    io::Error::other("a writer panicked")
}

/// A log many threads write to, each append waiting for durability.
#[allow(clippy::large_enum_variant)]
pub enum Group {
    /// Each thread `write` + `fdatasync` in turn under one lock (no sharing).
    Raw(Mutex<RawLog>),
    /// [`SharedWal`]: one thread syncs for every writer waiting.
    Blockwal(SharedWal<FileDevice>),
    /// okaywal's own group commit (a cloned handle per thread).
    Okaywal(okaywal::WriteAheadLog),
    /// raft-engine's write barrier groups concurrent `write(.., true)`; one
    /// Raft group per thread (its model: many groups, one engine).
    RaftEngine(raft_engine::Engine),
    /// raft-log under a lock: append + `flush(true, callback)`, then wait on
    /// the callback outside the lock; its flush worker batches the syncs.
    RaftLog(Mutex<(raft_log::RaftLog<LogTypes>, u64)>),
}

impl Group {
    /// Opens `kind`'s shared log in `dir_of(dir, kind)`; None when it has none.
    pub fn open(kind: Kind, dir: &Path, bs: u32) -> io::Result<Option<Group>> {
        if kind.lacks(Op::Group).is_some() {
            return Ok(None);
        }
        let d = dir_of(dir, kind);
        std::fs::create_dir_all(&d)?;
        Ok(Some(match kind {
            Kind::Raw => Group::Raw(Mutex::new(RawLog(Raw::new(&d, 64 << 20)?))),
            Kind::Blockwal => Group::Blockwal(SharedWal::new(open_blockwal(&d, bs)?.into_inner())),
            Kind::Okaywal => Group::Okaywal(okaywal::WriteAheadLog::recover(&d, OkayManager)?),
            Kind::RaftEngine => Group::RaftEngine(open_engine(&d)?),
            Kind::RaftLog => Group::RaftLog(Mutex::new((open_raft_log(&d, None)?, 1))),
        }))
    }

    /// Writer `thread`'s `seq`-th entry (seq from 1), returning once durable.
    pub fn write_durable(&self, thread: u64, seq: u64, data: &[u8]) -> io::Result<()> {
        match self {
            Group::Raw(r) => {
                let mut r = r.lock().map_err(poisoned)?;
                r.0.write(data)?;
                r.0.sync()
            }
            Group::Blockwal(w) => {
                let (_, t) = w.append_next(data).map_err(err)?;
                w.wait_durable(t).map_err(err)
            }
            Group::Okaywal(o) => okay_commit(o, &[data.to_vec()]),
            Group::RaftEngine(e) => {
                let mut b = raft_engine::LogBatch::default();
                b.add_entries::<EngineEntries>(thread + 1, &[engine_entry(seq, data)])
                    .map_err(err)?;
                e.write(&mut b, true).map(drop).map_err(err)
            }
            Group::RaftLog(l) => {
                let (tx, rx) = sync_channel(1);
                {
                    let mut g = l.lock().map_err(poisoned)?;
                    let index = g.1;
                    g.1 += 1;
                    g.0.append([((1, index), data.to_vec())])?;
                    g.0.flush(true, Some(tx))?;
                }
                rx.recv()
                    .map_err(|_| io::Error::other("raft-log flush worker gone"))?
            }
        }
    }
}
