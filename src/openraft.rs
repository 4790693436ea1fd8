//! An [openraft](https://docs.rs/openraft/0.9) log store over any [`Wal`]
//! (feature `openraft`, openraft 0.9 with `storage-v2`).
//!
//! [`LogStore`] implements openraft's [`RaftLogStorage`] and [`RaftLogReader`]
//! for any application [`RaftTypeConfig`] whose entries, node ids and nodes
//! serialize with serde (enable openraft's `serde` feature, which this
//! feature does). Entries are stored one per log index, encoded with
//! [postcard](https://docs.rs/postcard) behind a one-byte format version. The
//! vote, the committed log id and the last purged log id live in the log's
//! durable metadata ([`Wal::set_meta`]) under keys starting with `openraft/`.
//!
//! # Group commit
//!
//! `append` stages the entries in memory (readable at once) and returns
//! without touching the device. A flusher thread owned by the store moves
//! everything staged into the log and makes it durable with one
//! [`Wal::sync`], then calls the `LogFlushed` callbacks in order; appends
//! that arrive during that sync are staged meanwhile and share the next one.
//! Every other write (`save_vote`, `truncate`, `purge`, a durable
//! `save_committed`) first makes staged appends durable and completes their
//! callbacks, so writes become durable in the order openraft issued them.
//! (openraft 0.9's `RaftCore` waits for each append's callback before it
//! goes on, so there a node syncs once per append call; the sharing pays off
//! with callers that keep appends in flight.)
//!
//! # Purge and recovery
//!
//! `purge(id)` records `id` durably in the metadata, then compacts the log up
//! to `id.index`; purging past the last entry leaves an empty log that
//! continues at `id.index + 1`. On open, [`LogStore::new`] finishes a purge
//! that a crash interrupted, so `get_log_state` always agrees with the log.
//!
//! ```no_run
//! # #[cfg(unix)] {
//! use std::io::Cursor; // `declare_raft_types!` names it
//! openraft::declare_raft_types!(pub Config);
//! let store: blockwal::openraft::LogStore<Config, _> =
//!     blockwal::openraft::LogStore::open_dir("/var/lib/mynode/raft").unwrap();
//! // Raft::new(node_id, config, network, store, state_machine)
//! # drop(store); }
//! ```
//!
//! Application data must not rely on self-describing serde features
//! (`#[serde(untagged)]`, `flatten`, `deserialize_any`): postcard does not
//! support them, so such entries would fail to decode when read back (a
//! `StorageError`, never a panic).

// openraft's traits fix the error type (`StorageError`, ~190 bytes).
#![allow(clippy::result_large_err)]

use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::{self, Debug, Display};
use core::marker::PhantomData;
use core::ops::RangeBounds;
use std::io;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use ::openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use ::openraft::{
    AnyError, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogId, RaftLogReader,
    RaftTypeConfig, StorageError, StorageIOError, Vote,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{BlockDevice, Wal};

/// Metadata key of the vote.
pub const VOTE_KEY: &str = "openraft/vote";
/// Metadata key of the committed log id.
pub const COMMITTED_KEY: &str = "openraft/committed";
/// Metadata key of the last purged log id.
pub const PURGED_KEY: &str = "openraft/purged";

/// Format version byte in front of every encoded entry and metadata value.
const FORMAT_V1: u8 = 1;

/// How long a deferred committed log id waits for a log sync to share.
const COMMITTED_IDLE: std::time::Duration = std::time::Duration::from_millis(20);

type NodeIdOf<C> = <C as RaftTypeConfig>::NodeId;
type LogIdOf<C> = LogId<NodeIdOf<C>>;
type StoreResult<T, C> = Result<T, StorageError<NodeIdOf<C>>>;

/// When [`RaftLogStorage::save_committed`] makes the committed log id durable.
///
/// openraft treats the saved committed log id as a hint: after a restart it
/// re-applies entries up to it. A value older than the newest saved one is
/// safe (openraft learns the rest from the leader), so it may be deferred.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CommittedMode {
    /// Durable when `save_committed` returns (one metadata write each time
    /// the commit index moves, sharing the sync of staged entries, else
    /// one sync of its own).
    #[default]
    Durable,
    /// `save_committed` returns at once; the flusher writes the newest value
    /// after its next log sync. After a crash `read_committed` may return an
    /// older committed log id (never one whose entry was not durable).
    Deferred,
}

/// Settings for [`LogStore::with_options`]. Start from
/// [`LogStoreOptions::default`] and change what you need; new settings may
/// be added without a breaking release.
///
/// ```
/// use blockwal::openraft::{CommittedMode, LogStoreOptions};
/// let opts = LogStoreOptions::default().committed(CommittedMode::Deferred);
/// assert_eq!(opts.committed, CommittedMode::Deferred);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogStoreOptions {
    /// When the committed log id is made durable. Default
    /// [`CommittedMode::Durable`].
    pub committed: CommittedMode,
}

impl LogStoreOptions {
    /// Sets when the committed log id is made durable.
    pub fn committed(mut self, mode: CommittedMode) -> Self {
        self.committed = mode;
        self
    }
}

/// An openraft log store (`RaftLogStorage` + `RaftLogReader`) over a [`Wal`].
///
/// Owns a flusher thread that makes appended entries durable (group commit)
/// and calls openraft's flush callbacks. Dropping the store makes pending
/// appends durable, stops the thread and closes the log; [`LogReader`]s
/// still alive then return errors.
pub struct LogStore<C: RaftTypeConfig, D: BlockDevice> {
    shared: Arc<Shared<C, D>>,
    flusher: Option<JoinHandle<()>>,
}

/// A cheap, cloneable reader of a [`LogStore`]'s entries, used by openraft's
/// replication tasks. Fails once the store is closed.
pub struct LogReader<C: RaftTypeConfig, D: BlockDevice> {
    shared: Arc<Shared<C, D>>,
}

impl<C: RaftTypeConfig, D: BlockDevice> Clone for LogReader<C, D> {
    fn clone(&self) -> Self {
        LogReader {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<C: RaftTypeConfig, D: BlockDevice> Debug for LogStore<C, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogStore").finish_non_exhaustive()
    }
}

impl<C: RaftTypeConfig, D: BlockDevice> Debug for LogReader<C, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogReader").finish_non_exhaustive()
    }
}

/// Lock order: `inner`, then `stage`; never the other way round.
struct Shared<C: RaftTypeConfig, D: BlockDevice> {
    /// The log and the durable state; `None` once the store is closed.
    inner: Mutex<Option<Inner<C, D>>>,
    /// Appends not yet durable. Appenders take only this lock, so they never
    /// wait for a sync.
    stage: Mutex<Stage<C>>,
    /// Wakes the flusher (paired with `stage`).
    wake: Condvar,
    _d: PhantomData<fn() -> D>,
}

struct Inner<C: RaftTypeConfig, D: BlockDevice> {
    wal: Wal<D>,
    opts: LogStoreOptions,
    /// Log id of the last entry in the WAL; meaningful while it is not empty.
    last: Option<LogIdOf<C>>,
    purged: Option<LogIdOf<C>>,
    vote: Option<Vote<NodeIdOf<C>>>,
    committed: Option<LogIdOf<C>>,
    /// `committed` is newer than its durable copy: written with the next log
    /// sync once its entry is durable.
    committed_dirty: bool,
    /// Highest index known durable in the log.
    durable_last: Option<u64>,
    /// Set after a failed write: the store refuses further writes.
    failed: Option<String>,
}

struct Stage<C: RaftTypeConfig> {
    /// Appended entries not yet durable, oldest first: index, encoded bytes.
    entries: VecDeque<(u64, Vec<u8>)>,
    /// How many of `entries` are already in the WAL (a sync is under way).
    in_wal: usize,
    /// Log id of the newest entry in `entries`.
    last: Option<LogIdOf<C>>,
    /// Callbacks of appends not yet handed to a sync, oldest first.
    callbacks: Vec<LogFlushed<C>>,
    /// Index the next append must start at (`None`: any, the log is new).
    next: Option<u64>,
    /// Last purged index: appended entries at or below it are dropped.
    floor: Option<u64>,
    /// Copy of `Inner::failed`, so appends fail without the inner lock.
    failed: Option<String>,
    /// The store is closed.
    closed: bool,
    /// The store is closing: the flusher finishes staged work and exits.
    stop: bool,
    /// A committed log id waits for a log sync to share (or an idle moment).
    committed_waiting: bool,
}

impl<C: RaftTypeConfig> Stage<C> {
    fn has_work(&self) -> bool {
        !self.callbacks.is_empty() || self.entries.len() > self.in_wal
    }
}

// ----- errors ---------------------------------------------------------------

fn sto_err<C: RaftTypeConfig>(
    subject: ErrorSubject<NodeIdOf<C>>,
    verb: ErrorVerb,
    msg: impl Display,
) -> StorageError<NodeIdOf<C>> {
    StorageIOError::new(
        subject,
        verb,
        AnyError::error(alloc::format!("blockwal: {msg}")),
    )
    .into()
}

fn closed<C: RaftTypeConfig>() -> StorageError<NodeIdOf<C>> {
    sto_err::<C>(
        ErrorSubject::Store,
        ErrorVerb::Read,
        "the log store is closed (dropped or shut down): reopen it",
    )
}

// ----- encoding -------------------------------------------------------------

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    postcard::to_extend(value, alloc::vec![FORMAT_V1])
        .map_err(|e| alloc::format!("cannot encode: {e}"))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match bytes.split_first() {
        Some((&FORMAT_V1, body)) => match postcard::take_from_bytes::<T>(body) {
            Ok((v, [])) => Ok(v),
            Ok((_, rest)) => Err(alloc::format!(
                "cannot decode: {} trailing bytes after the value",
                rest.len()
            )),
            Err(e) => Err(alloc::format!("cannot decode: {e}")),
        },
        Some((v, _)) => Err(alloc::format!(
            "cannot decode: unknown format version {v} (written by a newer blockwal?)"
        )),
        None => Err("cannot decode: empty value".to_string()),
    }
}

// ----- the store --------------------------------------------------------------

impl<C, D> Inner<C, D>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
    D: BlockDevice,
    D::Error: Debug,
{
    fn writable(&self) -> StoreResult<(), C> {
        match &self.failed {
            Some(why) => Err(sto_err::<C>(
                ErrorSubject::Store,
                ErrorVerb::Write,
                alloc::format!(
                    "the log store refuses writes after an earlier failure ({why}): reopen it"
                ),
            )),
            None => Ok(()),
        }
    }

    fn fail(&mut self, why: impl Display) -> String {
        let why = why.to_string();
        if self.failed.is_none() {
            self.failed = Some(why.clone());
        }
        why
    }

    fn load_meta<T: DeserializeOwned>(&self, key: &str) -> StoreResult<Option<T>, C> {
        match self.wal.get_meta(key) {
            None => Ok(None),
            Some(bytes) => decode(bytes).map(Some).map_err(|e| {
                sto_err::<C>(
                    ErrorSubject::Store,
                    ErrorVerb::Read,
                    alloc::format!("metadata `{key}`: {e}"),
                )
            }),
        }
    }

    fn save_meta<T: Serialize>(
        &mut self,
        key: &str,
        value: &T,
        subject: ErrorSubject<NodeIdOf<C>>,
    ) -> StoreResult<(), C> {
        let bytes = encode(value).map_err(|e| {
            sto_err::<C>(
                subject.clone(),
                ErrorVerb::Write,
                alloc::format!("metadata `{key}`: {e}"),
            )
        })?;
        self.wal.set_meta(key, &bytes).map_err(|e| {
            let why = self.fail(alloc::format!("writing metadata `{key}`: {e}"));
            sto_err::<C>(subject, ErrorVerb::Write, why)
        })
    }

    fn read_entry(&self, index: u64) -> StoreResult<Option<C::Entry>, C> {
        let bytes = self
            .wal
            .try_get(index)
            .map_err(|e| sto_err::<C>(ErrorSubject::LogIndex(index), ErrorVerb::Read, e))?;
        match bytes {
            None => Ok(None),
            Some(b) => decode::<C::Entry>(&b).map(Some).map_err(|e| {
                sto_err::<C>(
                    ErrorSubject::LogIndex(index),
                    ErrorVerb::Read,
                    alloc::format!("entry {index}: {e}"),
                )
            }),
        }
    }

    /// Re-reads the log id of the last entry from the log.
    fn refresh_last(&mut self) -> StoreResult<(), C> {
        self.last = match self.wal.last_index() {
            None => None,
            Some(i) => self.read_entry(i)?.map(|e| e.get_log_id().clone()),
        };
        Ok(())
    }

    fn last_log_id(&self) -> Option<LogIdOf<C>> {
        if self.wal.is_empty() {
            self.purged.clone()
        } else {
            self.last.clone()
        }
    }

    /// Makes every staged append durable and completes the callbacks in
    /// order (with the error, if it fails).
    fn sync_pending(&mut self, stage: &Mutex<Stage<C>>) -> StoreResult<(), C> {
        self.sync_pending_with(stage, false)
    }

    /// Like [`Inner::sync_pending`]; with `with_committed`, a committed log id
    /// that is due is written in the same device sync: the buffered entries
    /// are programmed, then the metadata record, whose sync covers both.
    fn sync_pending_with(
        &mut self,
        stage: &Mutex<Stage<C>>,
        with_committed: bool,
    ) -> StoreResult<(), C> {
        // Move the staged entries into the WAL (appenders wait only for
        // this copy, not for the sync).
        let (callbacks, log_work, moved) = {
            let mut st = lock_stage::<C>(stage)?;
            let log_work = st.has_work() || st.in_wal > 0;
            let callbacks = core::mem::take(&mut st.callbacks);
            let mut moved = Ok(());
            if st.entries.len() > st.in_wal {
                moved = match self.writable() {
                    Err(_) => Err(self.failed.clone().unwrap_or_default()),
                    Ok(()) => {
                        let mut r = Ok(());
                        for (i, b) in st.entries.range(st.in_wal..) {
                            if let Err(e) = self.wal.append(*i, b) {
                                r = Err(self.fail(alloc::format!("append {i}: {e}")));
                                break;
                            }
                        }
                        r
                    }
                };
                if moved.is_ok() {
                    st.in_wal = st.entries.len();
                    self.last = st.last.clone();
                } else {
                    let _ = self.refresh_last();
                    st.failed = self.failed.clone();
                }
            }
            (callbacks, log_work, moved)
        };
        let with_c = with_committed && self.committed_due();
        if !log_work {
            return if with_c {
                self.persist_committed()
            } else {
                Ok(())
            };
        }
        let r = moved.and_then(|()| match self.writable() {
            Err(_) => Err(self.failed.clone().unwrap_or_default()),
            Ok(()) if with_c => match self.wal.flush() {
                // The committed id rides on the entries' sync: a hint needs
                // no sync (nor MARK) of its own.
                Ok(()) => match encode(&self.committed) {
                    Ok(bytes) => self
                        .wal
                        .set_meta_deferred(COMMITTED_KEY, &bytes)
                        .and_then(|()| self.wal.sync())
                        .map_err(|e| {
                            self.fail(alloc::format!(
                                "sync with metadata `{COMMITTED_KEY}` failed: {e}"
                            ))
                        }),
                    Err(e) => Err(self.fail(alloc::format!("metadata `{COMMITTED_KEY}`: {e}"))),
                },
                Err(e) => Err(self.fail(alloc::format!("sync failed: {e}"))),
            },
            Ok(()) => self
                .wal
                .sync()
                .map_err(|e| self.fail(alloc::format!("sync failed: {e}"))),
        });
        if let Ok(mut st) = stage.lock() {
            if r.is_ok() {
                let n = st.in_wal;
                st.entries.drain(..n);
                st.in_wal = 0;
            } else {
                st.failed = self.failed.clone();
            }
        }
        match r {
            Ok(()) => {
                self.durable_last = self.wal.last_index();
                if with_c {
                    self.committed_dirty = false;
                }
                for cb in callbacks {
                    cb.log_io_completed(Ok(()));
                }
                Ok(())
            }
            Err(why) => {
                for cb in callbacks {
                    cb.log_io_completed(Err(io::Error::other(alloc::format!("blockwal: {why}"))));
                }
                Err(sto_err::<C>(ErrorSubject::Logs, ErrorVerb::Write, why))
            }
        }
    }

    /// The committed log id changed and may be written: its entry is
    /// durable (or purged), so a crash can never leave a committed id whose
    /// entry is missing.
    fn committed_due(&self) -> bool {
        self.committed_dirty
            && self.failed.is_none()
            && self.committed.as_ref().is_none_or(|c| {
                self.durable_last.is_some_and(|d| c.index <= d)
                    || self.purged.as_ref().is_some_and(|p| c.index <= p.index)
            })
    }

    /// Writes the committed id alone: one sync (a hint needs no MARK,
    /// see [`Wal::set_meta_deferred`]).
    fn persist_committed(&mut self) -> StoreResult<(), C> {
        let bytes = encode(&self.committed).map_err(|e| {
            sto_err::<C>(
                ErrorSubject::Store,
                ErrorVerb::Write,
                alloc::format!("metadata `{COMMITTED_KEY}`: {e}"),
            )
        })?;
        self.wal
            .set_meta_deferred(COMMITTED_KEY, &bytes)
            .and_then(|()| self.wal.sync())
            .map_err(|e| {
                let why = self.fail(alloc::format!("writing metadata `{COMMITTED_KEY}`: {e}"));
                sto_err::<C>(ErrorSubject::Store, ErrorVerb::Write, why)
            })?;
        self.committed_dirty = false;
        Ok(())
    }
}

fn lock_stage<C: RaftTypeConfig>(
    stage: &Mutex<Stage<C>>,
) -> StoreResult<MutexGuard<'_, Stage<C>>, C> {
    stage.lock().map_err(|_| poisoned::<C>())
}

fn poisoned<C: RaftTypeConfig>() -> StorageError<NodeIdOf<C>> {
    sto_err::<C>(
        ErrorSubject::Store,
        ErrorVerb::Read,
        "the log store's lock is poisoned (a thread panicked holding it): reopen the store",
    )
}

impl<C, D> Shared<C, D>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
    D: BlockDevice,
    D::Error: Debug,
{
    fn lock(&self) -> StoreResult<MutexGuard<'_, Option<Inner<C, D>>>, C> {
        self.inner.lock().map_err(|_| poisoned::<C>())
    }

    /// Runs `f` on the open store; a failure it records also stops appends.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Inner<C, D>, &Mutex<Stage<C>>) -> StoreResult<T, C>,
    ) -> StoreResult<T, C> {
        let mut g = self.lock()?;
        let Some(inner) = g.as_mut() else {
            return Err(closed::<C>());
        };
        let r = f(inner, &self.stage);
        if inner.failed.is_some() {
            if let Ok(mut st) = self.stage.lock() {
                st.failed.clone_from(&inner.failed);
            }
        }
        r
    }

    /// Tells the flusher a committed log id waits to be written.
    fn committed_waits(&self) {
        if let Ok(mut st) = self.stage.lock() {
            st.committed_waiting = true;
        }
        self.wake.notify_one();
    }

    fn entries<RB: RangeBounds<u64>>(&self, range: RB) -> StoreResult<Vec<C::Entry>, C> {
        let (lo, hi) = crate::wal::half_open(&range);
        // Staged entries first (no wait), then the older ones from the log
        // (which may wait for a sync in progress). Bytes are copied under the
        // locks and decoded outside them.
        let (staged, stage_first) = {
            let st = lock_stage::<C>(&self.stage)?;
            if st.closed {
                return Err(closed::<C>());
            }
            let staged: Vec<(u64, Vec<u8>)> = st
                .entries
                .iter()
                .filter(|(i, _)| (lo..hi).contains(i))
                .cloned()
                .collect();
            (staged, st.entries.front().map(|(i, _)| *i))
        };
        let wal_hi = stage_first.map_or(hi, |f| f.min(hi));
        let mut raw = Vec::new();
        if lo < wal_hi {
            raw = self.with(|inner, _| {
                let (Some(first), Some(next)) = (inner.wal.first_index(), inner.wal.next_index())
                else {
                    return Ok(Vec::new());
                };
                let (lo, hi) = (lo.max(first), wal_hi.min(next));
                let mut out = Vec::with_capacity(hi.saturating_sub(lo).min(4096) as usize);
                for i in lo..hi {
                    match inner.wal.try_get(i) {
                        Ok(Some(b)) => out.push((i, b.into_owned())),
                        Ok(None) => break,
                        Err(e) => {
                            return Err(sto_err::<C>(ErrorSubject::LogIndex(i), ErrorVerb::Read, e))
                        }
                    }
                }
                Ok(out)
            })?;
        }
        // Contiguous only: if the log changed between the two looks (a
        // truncation), return the part read from the log.
        let joins = match (raw.last(), staged.first()) {
            (Some((a, _)), Some((b, _))) => a.checked_add(1) == Some(*b),
            _ => true,
        };
        if joins {
            raw.extend(staged);
        }
        raw.into_iter()
            .map(|(i, b)| {
                decode::<C::Entry>(&b).map_err(|e| {
                    sto_err::<C>(
                        ErrorSubject::LogIndex(i),
                        ErrorVerb::Read,
                        alloc::format!("entry {i}: {e}"),
                    )
                })
            })
            .collect()
    }
}

/// The flusher thread: one sync for everything staged when it wakes.
fn flusher<C, D>(shared: Arc<Shared<C, D>>)
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
    D: BlockDevice,
    D::Error: Debug,
{
    loop {
        // Wait for staged appends, for a committed log id left alone for a
        // while, or for the store to close.
        let (idle_committed, stop) = {
            let Ok(mut st) = shared.stage.lock() else {
                return;
            };
            loop {
                if st.has_work() || st.stop {
                    break (false, st.stop);
                }
                if st.committed_waiting {
                    let Ok((g, t)) = shared.wake.wait_timeout(st, COMMITTED_IDLE) else {
                        return;
                    };
                    st = g;
                    if t.timed_out() && !st.has_work() && !st.stop {
                        st.committed_waiting = false;
                        break (true, false);
                    }
                    continue;
                }
                st = match shared.wake.wait(st) {
                    Ok(g) => g,
                    Err(_) => return,
                };
            }
        };
        let Ok(mut g) = shared.inner.lock() else {
            return;
        };
        let Some(inner) = g.as_mut() else { return };
        if idle_committed {
            if inner.committed_due() {
                let _ = inner.persist_committed();
            }
        } else {
            // Errors reach openraft through the callbacks and `failed`.
            let _ = inner.sync_pending_with(&shared.stage, true);
            if stop {
                if inner.committed_due() {
                    let _ = inner.persist_committed();
                }
                return;
            }
            if inner.committed_dirty && inner.failed.is_none() {
                // Its entry was in this very batch: write it with the next
                // sync, or alone when none comes.
                if let Ok(mut st) = shared.stage.lock() {
                    st.committed_waiting = true;
                }
            }
        }
        if inner.failed.is_some() {
            if let Ok(mut st) = shared.stage.lock() {
                st.failed.clone_from(&inner.failed);
            }
        }
    }
}

impl<C, D> LogStore<C, D>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
    D: BlockDevice + Send + 'static,
    D::Error: Debug + Send,
{
    /// A log store over `wal` with default options: reads the vote, the
    /// committed and the purged log ids from its metadata, finishes a purge a
    /// crash interrupted, and starts the flusher thread.
    pub fn new(wal: Wal<D>) -> StoreResult<Self, C> {
        Self::with_options(wal, LogStoreOptions::default())
    }

    /// Like [`LogStore::new`], with `opts`.
    pub fn with_options(wal: Wal<D>, opts: LogStoreOptions) -> StoreResult<Self, C> {
        let mut inner = Inner::<C, D> {
            wal,
            opts,
            last: None,
            purged: None,
            vote: None,
            committed: None,
            committed_dirty: false,
            durable_last: None,
            failed: None,
        };
        inner.vote = inner.load_meta(VOTE_KEY)?;
        inner.purged = inner.load_meta::<Option<LogIdOf<C>>>(PURGED_KEY)?.flatten();
        inner.committed = inner
            .load_meta::<Option<LogIdOf<C>>>(COMMITTED_KEY)?
            .flatten();
        if let Some(p) = inner.purged.clone() {
            // The purged id is recorded before the log is compacted: finish
            // a compaction a crash cut short.
            let behind = match inner.wal.first_index() {
                Some(first) => first <= p.index,
                None => inner.wal.next_index().is_none_or(|n| n <= p.index),
            };
            if behind {
                inner.wal.compact(p.index).map_err(|e| {
                    sto_err::<C>(
                        ErrorSubject::Logs,
                        ErrorVerb::Delete,
                        alloc::format!("finishing purge up to {}: {e}", p.index),
                    )
                })?;
            }
        }
        inner.refresh_last()?;
        inner.durable_last = inner.wal.last_index();
        // A committed id past the end of the log cannot be applied: fall
        // back to what is certainly committed (purged entries were applied).
        let last_index = inner.last_log_id().map(|l| l.index);
        if inner
            .committed
            .as_ref()
            .is_some_and(|c| last_index.is_none_or(|l| c.index > l))
        {
            inner.committed = inner.purged.clone();
        }
        let stage = Stage {
            entries: VecDeque::new(),
            in_wal: 0,
            last: None,
            callbacks: Vec::new(),
            next: inner.wal.next_index(),
            floor: inner.purged.as_ref().map(|p| p.index),
            failed: None,
            closed: false,
            stop: false,
            committed_waiting: false,
        };
        let shared = Arc::new(Shared {
            inner: Mutex::new(Some(inner)),
            stage: Mutex::new(stage),
            wake: Condvar::new(),
            _d: PhantomData,
        });
        let s = Arc::clone(&shared);
        let flusher = std::thread::Builder::new()
            .name("blockwal-flusher".into())
            .spawn(move || flusher(s))
            .map_err(|e| {
                sto_err::<C>(
                    ErrorSubject::Store,
                    ErrorVerb::Write,
                    alloc::format!("cannot start the flusher thread: {e}"),
                )
            })?;
        Ok(LogStore {
            shared,
            flusher: Some(flusher),
        })
    }

    /// Makes every appended entry durable now and completes pending flush
    /// callbacks (the flusher does this on its own; this is for callers that
    /// want to wait).
    pub fn sync(&self) -> StoreResult<(), C> {
        self.shared.with(|inner, stage| inner.sync_pending(stage))
    }

    /// Closes the store: makes staged appends (and a deferred committed log
    /// id) durable, stops the flusher and gives back the log.
    pub fn into_wal(mut self) -> StoreResult<Wal<D>, C> {
        let r = self.stop_flusher();
        let mut inner = self.close().ok_or_else(closed::<C>)?;
        r?;
        inner.sync_pending(&self.shared.stage)?;
        Ok(inner.wal)
    }

    /// Read access to the underlying log (for inspection), under the store's
    /// lock. Entries still staged (not yet durable) are not in it.
    pub fn with_wal<T>(&self, f: impl FnOnce(&Wal<D>) -> T) -> StoreResult<T, C> {
        self.shared.with(|inner, _| Ok(f(&inner.wal)))
    }
}

impl<C: RaftTypeConfig, D: BlockDevice> LogStore<C, D> {
    /// Asks the flusher to finish staged work and waits for it to exit.
    fn stop_flusher(&mut self) -> StoreResult<(), C> {
        match self.shared.stage.lock() {
            Ok(mut st) => st.stop = true,
            Err(p) => p.into_inner().stop = true,
        }
        self.shared.wake.notify_all();
        match self.flusher.take() {
            Some(h) => h.join().map_err(|_| {
                sto_err::<C>(
                    ErrorSubject::Store,
                    ErrorVerb::Write,
                    "the flusher thread panicked",
                )
            }),
            None => Ok(()),
        }
    }

    /// Takes the log out of the shared state: readers then get errors.
    fn close(&mut self) -> Option<Inner<C, D>> {
        let inner = match self.shared.inner.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        match self.shared.stage.lock() {
            Ok(mut st) => st.closed = true,
            Err(p) => p.into_inner().closed = true,
        }
        inner
    }
}

#[cfg(all(feature = "std", unix))]
impl<C> LogStore<C, crate::FileDevice>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    /// Opens (or creates) the log in directory `dir` with
    /// [`RaftWal::open`](crate::RaftWal::open)'s defaults and returns a store over it.
    pub fn open_dir(dir: impl AsRef<std::path::Path>) -> StoreResult<Self, C> {
        let wal = crate::RaftWal::open(dir.as_ref()).map_err(|e| {
            sto_err::<C>(
                ErrorSubject::Store,
                ErrorVerb::Read,
                alloc::format!("opening the log in {}: {e}", dir.as_ref().display()),
            )
        })?;
        Self::new(wal.into_inner())
    }
}

impl<C: RaftTypeConfig, D: BlockDevice> Drop for LogStore<C, D> {
    fn drop(&mut self) {
        // The flusher makes staged appends durable before it exits; then the
        // log is closed (releasing its device, e.g. a file lock) even while
        // readers are alive.
        let _ = self.stop_flusher();
        drop(self.close());
    }
}

impl<C, D> RaftLogReader<C> for LogStore<C, D>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
    D: BlockDevice + Send + 'static,
    D::Error: Debug + Send,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StoreResult<Vec<C::Entry>, C> {
        self.shared.entries(range)
    }
}

impl<C, D> RaftLogReader<C> for LogReader<C, D>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
    D: BlockDevice + Send + 'static,
    D::Error: Debug + Send,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StoreResult<Vec<C::Entry>, C> {
        self.shared.entries(range)
    }
}

impl<C, D> RaftLogStorage<C> for LogStore<C, D>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
    D: BlockDevice + Send + 'static,
    D::Error: Debug + Send,
{
    type LogReader = LogReader<C, D>;

    async fn get_log_state(&mut self) -> StoreResult<LogState<C>, C> {
        self.shared.with(|inner, stage| {
            let st = lock_stage::<C>(stage)?;
            let last = match st.entries.is_empty() {
                false => st.last.clone(),
                true => inner.last_log_id(),
            };
            Ok(LogState {
                last_purged_log_id: inner.purged.clone(),
                last_log_id: last,
            })
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        LogReader {
            shared: Arc::clone(&self.shared),
        }
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> StoreResult<(), C> {
        self.shared.with(|inner, stage| {
            inner.writable()?;
            inner.sync_pending(stage)?;
            inner.save_meta(VOTE_KEY, vote, ErrorSubject::Vote)?;
            inner.vote = Some(vote.clone());
            Ok(())
        })
    }

    async fn read_vote(&mut self) -> StoreResult<Option<Vote<C::NodeId>>, C> {
        self.shared.with(|inner, _| Ok(inner.vote.clone()))
    }

    async fn save_committed(&mut self, committed: Option<LogIdOf<C>>) -> StoreResult<(), C> {
        let waits = self.shared.with(|inner, stage| {
            inner.writable()?;
            if inner.committed == committed {
                return Ok(false);
            }
            inner.committed = committed;
            inner.committed_dirty = true;
            match inner.opts.committed {
                CommittedMode::Durable => {
                    // One sync for staged entries and the committed id when
                    // its entry is already durable; else entries first.
                    inner.sync_pending_with(stage, true)?;
                    if inner.committed_dirty {
                        inner.sync_pending_with(stage, true)?;
                    }
                    // Still waiting only if its entry is not in the log yet:
                    // the flusher writes it once it is.
                    Ok(inner.committed_dirty)
                }
                CommittedMode::Deferred => Ok(true),
            }
        })?;
        if waits {
            self.shared.committed_waits();
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> StoreResult<Option<LogIdOf<C>>, C> {
        self.shared.with(|inner, _| Ok(inner.committed.clone()))
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<C>) -> StoreResult<(), C>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let r = self.stage(entries);
        match r {
            Ok(mut st) => {
                st.callbacks.push(callback);
                drop(st);
                self.shared.wake.notify_one();
                Ok(())
            }
            Err(err) => {
                callback.log_io_completed(Err(io::Error::other(err.to_string())));
                Err(err)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogIdOf<C>) -> StoreResult<(), C> {
        self.shared.with(|inner, stage| {
            inner.writable()?;
            inner.sync_pending(stage)?;
            inner.wal.truncate(log_id.index).map_err(|e| {
                let why = inner.fail(alloc::format!("truncate from {}: {e}", log_id.index));
                sto_err::<C>(ErrorSubject::Log(log_id.clone()), ErrorVerb::Delete, why)
            })?;
            inner.durable_last = match log_id.index.checked_sub(1) {
                Some(keep) => inner.durable_last.map(|d| d.min(keep)),
                None => None,
            };
            lock_stage::<C>(stage)?.next = inner.wal.next_index();
            inner.refresh_last()
        })
    }

    async fn purge(&mut self, log_id: LogIdOf<C>) -> StoreResult<(), C> {
        self.shared.with(|inner, stage| {
            inner.writable()?;
            if inner
                .purged
                .as_ref()
                .is_some_and(|p| p.index >= log_id.index)
            {
                return Ok(());
            }
            inner.sync_pending(stage)?;
            // Durable record first, then the compaction: a crash in between
            // is finished on open.
            inner.save_meta(
                PURGED_KEY,
                &Some(log_id.clone()),
                ErrorSubject::Log(log_id.clone()),
            )?;
            inner.purged = Some(log_id.clone());
            {
                let mut st = lock_stage::<C>(stage)?;
                st.floor = Some(log_id.index);
            }
            inner.wal.compact(log_id.index).map_err(|e| {
                let why = inner.fail(alloc::format!("purge up to {}: {e}", log_id.index));
                sto_err::<C>(ErrorSubject::Log(log_id.clone()), ErrorVerb::Delete, why)
            })?;
            if inner.wal.is_empty() {
                inner.last = None;
            }
            lock_stage::<C>(stage)?.next = inner.wal.next_index();
            Ok(())
        })
    }
}

impl<C, D> LogStore<C, D>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
    D: BlockDevice + Send + 'static,
    D::Error: Debug + Send,
{
    /// Encodes `entries` and stages them (readable at once); returns the
    /// stage, still locked, for the caller to add the flush callback.
    fn stage<I: IntoIterator<Item = C::Entry>>(
        &self,
        entries: I,
    ) -> StoreResult<MutexGuard<'_, Stage<C>>, C> {
        // Encode outside the lock.
        let mut batch: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut last = None;
        for e in entries {
            let id = e.get_log_id().clone();
            let bytes = encode(&e).map_err(|why| {
                sto_err::<C>(
                    ErrorSubject::Log(id.clone()),
                    ErrorVerb::Write,
                    alloc::format!("entry {id}: {why}"),
                )
            })?;
            batch.push((id.index, bytes));
            last = Some(id);
        }
        let mut st = lock_stage::<C>(&self.shared.stage)?;
        if st.closed {
            return Err(closed::<C>());
        }
        if let Some(why) = &st.failed {
            return Err(sto_err::<C>(
                ErrorSubject::Logs,
                ErrorVerb::Write,
                alloc::format!(
                    "the log store refuses writes after an earlier failure ({why}): reopen it"
                ),
            ));
        }
        // Entries at or below the last purged index are already covered by
        // the snapshot: keep the purge, drop them (openraft's test suite
        // appends such entries; a live node never does).
        if let Some(floor) = st.floor {
            let keep_from = batch.partition_point(|(i, _)| *i <= floor);
            batch.drain(..keep_from);
        }
        let mut expect = st.next;
        for (i, _) in &batch {
            if expect.is_some_and(|n| n != *i) || *i == u64::MAX {
                return Err(sto_err::<C>(
                    ErrorSubject::LogIndex(*i),
                    ErrorVerb::Write,
                    alloc::format!(
                        "append: non-contiguous append: the log expects index {}, got {i}",
                        expect.map_or(String::from("any but u64::MAX"), |n| n.to_string())
                    ),
                ));
            }
            expect = Some(*i + 1);
        }
        if !batch.is_empty() {
            st.next = expect;
            st.last = last;
            st.entries.extend(batch);
        }
        Ok(st)
    }
}
