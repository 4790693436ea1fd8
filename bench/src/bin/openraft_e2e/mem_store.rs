//! The baseline: a log store in a `BTreeMap`, "durable" the moment it returns.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{LogId, OptionalSend, RaftLogReader, Vote};

use crate::cluster::{Entry, NodeId, StoreErr, Tc};

#[derive(Default)]
struct MemLog {
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    purged: Option<LogId<NodeId>>,
    log: BTreeMap<u64, Entry>,
}

/// Cloned handles share one log (the reader is a clone).
#[derive(Clone, Default)]
pub struct MemStore(Arc<Mutex<MemLog>>);

impl MemStore {
    fn lock(&self) -> MutexGuard<'_, MemLog> {
        // A panic elsewhere cannot leave the map half-updated: every update
        // below is a single map operation.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl RaftLogReader<Tc> for MemStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StoreErr> {
        Ok(self
            .lock()
            .log
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl RaftLogStorage<Tc> for MemStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<Tc>, StoreErr> {
        let g = self.lock();
        let last = g.log.values().next_back().map(|e| e.log_id).or(g.purged);
        Ok(LogState {
            last_purged_log_id: g.purged,
            last_log_id: last,
        })
    }
    async fn get_log_reader(&mut self) -> Self {
        self.clone()
    }
    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StoreErr> {
        self.lock().vote = Some(*vote);
        Ok(())
    }
    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StoreErr> {
        Ok(self.lock().vote)
    }
    async fn save_committed(&mut self, c: Option<LogId<NodeId>>) -> Result<(), StoreErr> {
        self.lock().committed = c;
        Ok(())
    }
    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StoreErr> {
        Ok(self.lock().committed)
    }
    async fn append<I>(&mut self, entries: I, callback: LogFlushed<Tc>) -> Result<(), StoreErr>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut g = self.lock();
        for e in entries {
            g.log.insert(e.log_id.index, e);
        }
        drop(g);
        callback.log_io_completed(Ok(()));
        Ok(())
    }
    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StoreErr> {
        self.lock().log.split_off(&log_id.index);
        Ok(())
    }
    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StoreErr> {
        let mut g = self.lock();
        let kept = g.log.split_off(&(log_id.index + 1));
        g.log = kept;
        g.purged = Some(log_id);
        Ok(())
    }
}
