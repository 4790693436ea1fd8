//! An openraft log store over Databend's `raft-log` (0.4.6): appends go to
//! its flush worker, which fsyncs them in batches and calls back.
//!
//! Log ids are stored as `((term, node), index)` and votes as
//! `((term, node), committed)`, tuples raft-log's codec (`codeq`) encodes and
//! orders the way openraft does; entry payloads are postcard bytes.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    CommittedLeaderId, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogReader, StorageError,
    Vote,
};
use raft_log::api::raft_log_writer::RaftLogWriter;
use raft_log::RaftLog;
use tokio::sync::oneshot;

use crate::cluster::{Entry, NodeId, StoreErr, Tc};

type RlLogId = ((u64, u64), u64);
type RlVote = ((u64, u64), bool);

/// raft-log's type parameters for this cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RlTypes;

impl raft_log::Types for RlTypes {
    type LogId = RlLogId;
    type LogPayload = Vec<u8>;
    type Vote = RlVote;
    type Callback = Done;
    type UserData = ();

    fn log_index(log_id: &RlLogId) -> u64 {
        log_id.1
    }
    fn payload_size(payload: &Vec<u8>) -> u64 {
        payload.len() as u64
    }
}

/// What raft-log's flush worker calls when a flush is durable.
pub enum Done {
    /// An append: tell openraft.
    Append(LogFlushed<Tc>),
    /// Any other write the caller waits for.
    Wait(oneshot::Sender<io::Result<()>>),
}

impl raft_log::Callback for Done {
    fn send(self, res: io::Result<()>) {
        match self {
            Done::Append(cb) => cb.log_io_completed(res),
            Done::Wait(tx) => {
                // The waiter may have gone (its node shut down): nothing to tell.
                let _ = tx.send(res);
            }
        }
    }
}

fn to_rl(id: &LogId<NodeId>) -> RlLogId {
    ((id.leader_id.term, id.leader_id.node_id), id.index)
}
fn from_rl(id: &RlLogId) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(id.0 .0, id.0 .1), id.1)
}

/// Removes the entries from `index` on. raft-log's `truncate` names the
/// entry to keep, which fails when there is none below `index` (a log that
/// starts above index 0 without a purge); then everything goes.
fn truncate_at(g: &mut RaftLog<RlTypes>, index: u64) -> io::Result<()> {
    let start = g.log_state().purged().map_or(0, |p| p.1 + 1);
    let keeps_prev = index > start && g.read(index - 1, index).next().is_some();
    g.truncate(if keeps_prev { index } else { start })?;
    Ok(())
}

fn io_err(subject: ErrorSubject<NodeId>, verb: ErrorVerb, e: io::Error) -> StoreErr {
    StorageError::from_io_error(subject, verb, e)
}

/// A `RaftLog` shared by the store and its readers.
#[derive(Clone)]
pub struct RaftLogStore(Arc<Mutex<RaftLog<RlTypes>>>);

impl RaftLogStore {
    /// Opens (or creates) the log in `dir` with raft-log's default settings,
    /// except the flush worker's wait for more requests to batch when
    /// `batch_wait` is given (default 1 ms).
    pub fn open(dir: &Path, batch_wait: Option<Duration>) -> io::Result<Self> {
        let mut cfg = raft_log::Config::new(dir.display());
        cfg.wal.flush_batch_wait = batch_wait;
        Ok(Self(Arc::new(Mutex::new(RaftLog::open(Arc::new(cfg))?))))
    }

    fn lock(&self) -> MutexGuard<'_, RaftLog<RlTypes>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Flushes with fsync and waits until it is durable.
    async fn flush_wait(&self, subject: ErrorSubject<NodeId>) -> Result<(), StoreErr> {
        let (tx, rx) = oneshot::channel();
        self.lock()
            .flush(true, Some(Done::Wait(tx)))
            .map_err(|e| io_err(subject.clone(), ErrorVerb::Write, e))?;
        let res = rx.await.unwrap_or_else(|_| {
            Err(io::Error::other(
                "raft-log's flush worker dropped the callback",
            ))
        });
        res.map_err(|e| io_err(subject, ErrorVerb::Write, e))
    }
}

impl RaftLogReader<Tc> for RaftLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StoreErr> {
        let from = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let to = match range.end_bound() {
            Bound::Included(&i) => i.saturating_add(1),
            Bound::Excluded(&i) => i,
            Bound::Unbounded => u64::MAX,
        };
        let g = self.lock();
        let mut out = Vec::new();
        for r in g.read(from, to) {
            let (id, payload) = r.map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            let payload = postcard::from_bytes(&payload).map_err(|e| {
                io_err(
                    ErrorSubject::Log(from_rl(&id)),
                    ErrorVerb::Read,
                    io::Error::new(io::ErrorKind::InvalidData, e),
                )
            })?;
            out.push(Entry {
                log_id: from_rl(&id),
                payload,
            });
        }
        Ok(out)
    }
}

impl RaftLogStorage<Tc> for RaftLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<Tc>, StoreErr> {
        let g = self.lock();
        let st = g.log_state();
        let purged = st.purged().map(from_rl);
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: st.last().map(from_rl).or(purged),
        })
    }
    async fn get_log_reader(&mut self) -> Self {
        self.clone()
    }
    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StoreErr> {
        let v = (
            (vote.leader_id.term, vote.leader_id.node_id),
            vote.committed,
        );
        self.lock()
            .save_vote(v)
            .map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Write, e))?;
        self.flush_wait(ErrorSubject::Vote).await
    }
    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StoreErr> {
        Ok(self.lock().log_state().vote().map(|v| {
            let mut vote = Vote::new(v.0 .0, v.0 .1);
            vote.committed = v.1;
            vote
        }))
    }
    async fn save_committed(&mut self, c: Option<LogId<NodeId>>) -> Result<(), StoreErr> {
        let Some(c) = c else { return Ok(()) };
        let mut g = self.lock();
        g.commit(to_rl(&c))
            .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, e))?;
        // Best effort, as raft-log suggests: the next synced flush carries it.
        g.flush(false, None)
            .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, e))
    }
    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StoreErr> {
        Ok(self.lock().log_state().committed().map(from_rl))
    }
    async fn append<I>(&mut self, entries: I, callback: LogFlushed<Tc>) -> Result<(), StoreErr>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut g = self.lock();
        // Entries at or below the purged log id are already in the state
        // machine: openraft's suite hands such entries after it purged up to
        // the state machine's last applied id; raft-log refuses them.
        let purged = g.log_state().purged().map(|p| p.1);
        let mut batch = Vec::new();
        for e in entries {
            if purged.is_some_and(|p| e.log_id.index <= p) {
                continue;
            }
            let bytes = postcard::to_allocvec(&e.payload).map_err(|err| {
                io_err(
                    ErrorSubject::Log(e.log_id),
                    ErrorVerb::Write,
                    io::Error::new(io::ErrorKind::InvalidInput, err),
                )
            })?;
            batch.push((to_rl(&e.log_id), bytes));
        }
        if batch.is_empty() {
            drop(g);
            callback.log_io_completed(Ok(()));
            return Ok(());
        }
        // openraft may hand entries that overwrite the tail (its own suite
        // does); raft-log refuses an index it holds, so cut the tail first,
        // as a map insert would overwrite it.
        let first = batch.first().map(|(id, _)| id.1);
        let last = g.log_state().last().map(|id| id.1);
        if let (Some(first), Some(last)) = (first, last) {
            if first <= last {
                truncate_at(&mut g, first)
                    .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Delete, e))?;
            }
        }
        g.append(batch)
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Write, e))?;
        g.flush(true, Some(Done::Append(callback)))
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Write, e))
    }
    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StoreErr> {
        truncate_at(&mut self.lock(), log_id.index)
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Delete, e))?;
        self.flush_wait(ErrorSubject::Logs).await
    }
    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StoreErr> {
        self.lock()
            .purge(to_rl(&log_id))
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Delete, e))?;
        self.flush_wait(ErrorSubject::Logs).await
    }
}
