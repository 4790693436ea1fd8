//! A single openraft node whose Raft log lives in blockwal files: start it,
//! initialize it as a one-member cluster, make one client write and read the
//! entry back from the log. A real application adds its network (this node
//! has no peers, so its network refuses every call) and its state machine.
//!
//! ```text
//! cargo run --example openraft_node --features openraft
//! ```

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;

use blockwal::openraft::LogStore;
use blockwal::RaftWal;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::*;
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::StoredMembership;
use openraft::{BasicNode, Config, Entry, EntryPayload, LogId, OptionalSend, Raft};
use openraft::{RaftLogReader, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError};

openraft::declare_raft_types!(pub App); // requests and responses are `String`s
type Sm = (Option<LogId<u64>>, StoredMembership<u64, BasicNode>);

/// The state machine: remembers only what it applied last.
#[derive(Clone, Default)]
struct Machine(Arc<std::sync::Mutex<Sm>>);

impl RaftStateMachine<App> for Machine {
    type SnapshotBuilder = Self;
    async fn applied_state(&mut self) -> Result<Sm, StorageError<u64>> {
        Ok(self.0.lock().unwrap().clone())
    }
    async fn apply<I>(&mut self, entries: I) -> Result<Vec<String>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<App>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut sm = self.0.lock().unwrap();
        let mut replies = Vec::new();
        for e in entries {
            sm.0 = Some(e.log_id);
            match e.payload {
                EntryPayload::Normal(req) => replies.push(format!("applied {req}")),
                EntryPayload::Membership(m) => {
                    sm.1 = StoredMembership::new(Some(e.log_id), m);
                    replies.push(String::new());
                }
                EntryPayload::Blank => replies.push(String::new()),
            }
        }
        Ok(replies)
    }
    async fn get_snapshot_builder(&mut self) -> Self {
        self.clone()
    }
    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::default())
    }
    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        _: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        *self.0.lock().unwrap() = (meta.last_log_id, meta.last_membership.clone());
        Ok(())
    }
    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<App>>, StorageError<u64>> {
        Ok(None)
    }
}

impl RaftSnapshotBuilder<App> for Machine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<App>, StorageError<u64>> {
        let (last_log_id, last_membership) = self.0.lock().unwrap().clone();
        let snapshot_id = format!("{last_log_id:?}");
        let meta = SnapshotMeta {
            last_log_id,
            last_membership,
            snapshot_id,
        };
        Ok(Snapshot {
            meta,
            snapshot: Box::default(),
        })
    }
}

/// The network of a node without peers: every call fails.
struct NoPeers;

impl RaftNetworkFactory<App> for NoPeers {
    type Network = NoPeers;
    async fn new_client(&mut self, _: u64, _: &BasicNode) -> NoPeers {
        NoPeers
    }
}

fn no_peer<E: std::error::Error>() -> RPCError<u64, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&std::io::Error::other("no peers")))
}

impl RaftNetwork<App> for NoPeers {
    async fn append_entries(
        &mut self,
        _: AppendEntriesRequest<App>,
        _: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        Err(no_peer())
    }
    async fn install_snapshot(
        &mut self,
        _: InstallSnapshotRequest<App>,
        _: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        Err(no_peer())
    }
    async fn vote(
        &mut self,
        _: VoteRequest<u64>,
        _: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        Err(no_peer())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    // The log store: a blockwal log in `dir`, as openraft's RaftLogStorage.
    let mut store = LogStore::<App, _>::new(RaftWal::open(dir.path())?.into_inner())?;
    let mut reader = store.get_log_reader().await;

    let config = Arc::new(Config::default().validate()?);
    let raft = Raft::new(1, config, NoPeers, store, Machine::default()).await?;
    raft.initialize(BTreeMap::from([(1, BasicNode::default())]))
        .await?;
    // Initializing starts an election; writes go to a leader, so wait for it.
    raft.wait(Some(std::time::Duration::from_secs(10)))
        .current_leader(1, "node 1 leads")
        .await?;

    // A client write returns once the entry is durable and applied.
    let reply = raft.client_write("set x = 1".to_string()).await?;
    println!("{} at log index {}", reply.data, reply.log_id.index);

    // Read it back from the log on disk.
    let i = reply.log_id.index;
    let entries = reader.try_get_log_entries(i..=i).await?;
    match &entries[..] {
        [Entry {
            payload: EntryPayload::Normal(req),
            ..
        }] => println!("log entry {i}: {req}"),
        other => return Err(format!("unexpected log content at {i}: {other:?}").into()),
    }
    raft.shutdown().await?;
    Ok(())
}
