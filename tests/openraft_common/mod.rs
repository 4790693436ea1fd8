//! Shared by the openraft tests: a type config, a minimal in-memory state
//! machine and an in-memory network.
#![allow(dead_code)]
// openraft fixes these error types.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::sync::{Arc, Mutex};

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, BasicNode, EntryPayload, LogId, OptionalSend, Raft, RaftNetwork, RaftNetworkFactory,
    RaftSnapshotBuilder, RaftTypeConfig, Snapshot, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};

openraft::declare_raft_types!(
    /// Test config: app data and responses are strings.
    pub Tc
);

pub type NodeId = u64;
pub type Entry = <Tc as RaftTypeConfig>::Entry;

/// What the state machine holds (and what a snapshot carries).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SmData {
    pub last_applied: Option<LogId<NodeId>>,
    pub membership: StoredMembership<NodeId, BasicNode>,
    /// Applied app data, by log index.
    pub applied: BTreeMap<u64, String>,
}

type StoredSnapshot = (SnapshotMeta<NodeId, BasicNode>, Vec<u8>);

/// A minimal in-memory state machine (not persistent).
#[derive(Clone, Default)]
pub struct MemSm {
    pub data: Arc<Mutex<SmData>>,
    snapshot: Arc<Mutex<Option<StoredSnapshot>>>,
    snap_seq: Arc<Mutex<u64>>,
}

fn encode_sm(d: &SmData) -> Vec<u8> {
    let applied: Vec<(u64, String)> = d.applied.iter().map(|(k, v)| (*k, v.clone())).collect();
    postcard::to_allocvec(&(&d.last_applied, &d.membership, applied)).expect("encodable")
}

fn decode_sm(b: &[u8]) -> Result<SmData, StorageError<NodeId>> {
    type Raw = (
        Option<LogId<NodeId>>,
        StoredMembership<NodeId, BasicNode>,
        Vec<(u64, String)>,
    );
    let (last_applied, membership, applied): Raw = postcard::from_bytes(b)
        .map_err(|e| StorageIOError::read_state_machine(AnyError::error(e)))?;
    Ok(SmData {
        last_applied,
        membership,
        applied: applied.into_iter().collect(),
    })
}

impl RaftSnapshotBuilder<Tc> for MemSm {
    async fn build_snapshot(&mut self) -> Result<Snapshot<Tc>, StorageError<NodeId>> {
        let d = self.data.lock().unwrap().clone();
        let bytes = encode_sm(&d);
        let seq = {
            let mut s = self.snap_seq.lock().unwrap();
            *s += 1;
            *s
        };
        let meta = SnapshotMeta {
            last_log_id: d.last_applied,
            last_membership: d.membership.clone(),
            snapshot_id: format!("{}-{seq}", d.last_applied.map_or(0, |l| l.index)),
        };
        *self.snapshot.lock().unwrap() = Some((meta.clone(), bytes.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<Tc> for MemSm {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        let d = self.data.lock().unwrap();
        Ok((d.last_applied, d.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<String>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut d = self.data.lock().unwrap();
        let mut out = Vec::new();
        for e in entries {
            d.last_applied = Some(e.log_id);
            match e.payload {
                EntryPayload::Blank => out.push(String::new()),
                EntryPayload::Normal(s) => {
                    d.applied.insert(e.log_id.index, s.clone());
                    out.push(s);
                }
                EntryPayload::Membership(m) => {
                    d.membership = StoredMembership::new(Some(e.log_id), m);
                    out.push(String::new());
                }
            }
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let bytes = snapshot.into_inner();
        let d = decode_sm(&bytes)?;
        *self.data.lock().unwrap() = d;
        *self.snapshot.lock().unwrap() = Some((meta.clone(), bytes));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<Tc>>, StorageError<NodeId>> {
        Ok(self
            .snapshot
            .lock()
            .unwrap()
            .clone()
            .map(|(meta, bytes)| Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(bytes)),
            }))
    }
}

// ----- in-memory network ------------------------------------------------------

/// Routes RPCs to the nodes registered in it; unregistered nodes are down.
#[derive(Clone, Default)]
pub struct Router {
    pub nodes: Arc<Mutex<BTreeMap<NodeId, Raft<Tc>>>>,
}

impl Router {
    pub fn add(&self, id: NodeId, raft: Raft<Tc>) {
        self.nodes.lock().unwrap().insert(id, raft);
    }
    pub fn remove(&self, id: NodeId) -> Option<Raft<Tc>> {
        self.nodes.lock().unwrap().remove(&id)
    }
    fn get(&self, id: NodeId) -> Option<Raft<Tc>> {
        self.nodes.lock().unwrap().get(&id).cloned()
    }
}

/// One node's view of the network.
pub struct Conn {
    router: Router,
    target: NodeId,
}

#[derive(Debug)]
struct Down;
impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "node is down")
    }
}
impl std::error::Error for Down {}

impl RaftNetworkFactory<Tc> for Router {
    type Network = Conn;
    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Conn {
        Conn {
            router: self.clone(),
            target,
        }
    }
}

impl Conn {
    fn node<E: std::error::Error>(
        &self,
    ) -> Result<Raft<Tc>, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>> {
        self.router
            .get(self.target)
            .ok_or_else(|| RPCError::Unreachable(Unreachable::new(&Down)))
    }
}

impl RaftNetwork<Tc> for Conn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Tc>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let raft = self.node()?;
        raft.append_entries(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<Tc>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let raft = self.node()?;
        raft.install_snapshot(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let raft = self.node()?;
        raft.vote(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

/// Members map for `initialize`.
pub fn members(ids: &[NodeId]) -> BTreeMap<NodeId, BasicNode> {
    ids.iter().map(|i| (*i, BasicNode::default())).collect()
}

/// Voter ids as a set.
pub fn ids(ids: &[NodeId]) -> BTreeSet<NodeId> {
    ids.iter().copied().collect()
}
