//! A 3-node openraft cluster in one process: an in-memory network, a state
//! machine that counts what it applied, and the client load.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::{
    BasicNode, Config, EntryPayload, LogId, OptionalSend, Raft, RaftNetwork, RaftNetworkFactory,
    RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError, StoredMembership,
};

openraft::declare_raft_types!(
    /// Commands and responses are strings.
    pub Tc
);
/// Node ids 1, 2, 3.
pub type NodeId = u64;
/// A log entry of this cluster.
pub type Entry = openraft::Entry<Tc>;
/// The storage error every store returns.
pub type StoreErr = StorageError<NodeId>;
/// Any error of a run.
pub type BoxErr = Box<dyn std::error::Error + Send + Sync>;

// ----- the state machine: counts applied commands ---------------------------

/// What a node's state machine holds.
#[derive(Clone, Default)]
struct SmState {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    /// Commands applied (the whole application state).
    count: u64,
    /// The last snapshot built or installed: its meta and its count.
    snapshot: Option<(SnapshotMeta<NodeId, BasicNode>, u64)>,
}

/// The state machine; clones share it (the test reads the count through one).
#[derive(Clone, Default)]
pub struct Sm(Arc<Mutex<SmState>>);

impl Sm {
    fn lock(&self) -> MutexGuard<'_, SmState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Commands applied so far.
    pub fn count(&self) -> u64 {
        self.lock().count
    }
}

fn snapshot_of(meta: SnapshotMeta<NodeId, BasicNode>, count: u64) -> Snapshot<Tc> {
    Snapshot {
        meta,
        snapshot: Box::new(Cursor::new(count.to_le_bytes().to_vec())),
    }
}

impl RaftSnapshotBuilder<Tc> for Sm {
    async fn build_snapshot(&mut self) -> Result<Snapshot<Tc>, StoreErr> {
        let mut g = self.lock();
        let meta = SnapshotMeta {
            last_log_id: g.last_applied,
            last_membership: g.membership.clone(),
            snapshot_id: format!("{}-{}", g.last_applied.map_or(0, |l| l.index), g.count),
        };
        g.snapshot = Some((meta.clone(), g.count));
        Ok(snapshot_of(meta, g.count))
    }
}

impl RaftStateMachine<Tc> for Sm {
    type SnapshotBuilder = Self;
    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StoreErr> {
        let g = self.lock();
        Ok((g.last_applied, g.membership.clone()))
    }
    async fn apply<I>(&mut self, entries: I) -> Result<Vec<String>, StoreErr>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut g = self.lock();
        let mut out = Vec::new();
        for e in entries {
            g.last_applied = Some(e.log_id);
            match e.payload {
                EntryPayload::Membership(m) => {
                    g.membership = StoredMembership::new(Some(e.log_id), m)
                }
                EntryPayload::Normal(_) => g.count += 1,
                EntryPayload::Blank => {}
            }
            out.push(String::new());
        }
        Ok(out)
    }
    async fn get_snapshot_builder(&mut self) -> Self {
        self.clone()
    }
    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StoreErr> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }
    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StoreErr> {
        let b = snapshot.into_inner();
        let count = match b.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(b) => u64::from_le_bytes(b),
            None => {
                return Err(StorageError::from_io_error(
                    openraft::ErrorSubject::Snapshot(Some(meta.signature())),
                    openraft::ErrorVerb::Read,
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "snapshot under 8 bytes"),
                ))
            }
        };
        *self.lock() = SmState {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
            count,
            snapshot: Some((meta.clone(), count)),
        };
        Ok(())
    }
    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<Tc>>, StoreErr> {
        let g = self.lock();
        Ok(g.snapshot
            .clone()
            .map(|(meta, count)| snapshot_of(meta, count)))
    }
}

// ----- the in-memory network ----------------------------------------------------

#[derive(Clone, Default)]
struct Router(Arc<Mutex<BTreeMap<NodeId, Raft<Tc>>>>);

struct Conn(Router, NodeId);

#[derive(Debug)]
struct Down;
impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("node is down")
    }
}
impl std::error::Error for Down {}

impl RaftNetworkFactory<Tc> for Router {
    type Network = Conn;
    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Conn {
        Conn(self.clone(), target)
    }
}

impl Conn {
    #[allow(clippy::result_large_err)] // openraft fixes the error type
    fn node<E: std::error::Error>(
        &self,
    ) -> Result<Raft<Tc>, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>> {
        let nodes = self.0 .0.lock().unwrap_or_else(|p| p.into_inner());
        let r = nodes.get(&self.1).cloned();
        r.ok_or_else(|| RPCError::Unreachable(Unreachable::new(&Down)))
    }
}

impl RaftNetwork<Tc> for Conn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Tc>,
        _o: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let r = self.node()?;
        r.append_entries(rpc)
            .await
            .map_err(|e| RemoteError::new(self.1, e).into())
    }
    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<Tc>,
        _o: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let r = self.node()?;
        r.install_snapshot(rpc)
            .await
            .map_err(|e| RemoteError::new(self.1, e).into())
    }
    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _o: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let r = self.node()?;
        r.vote(rpc)
            .await
            .map_err(|e| RemoteError::new(self.1, e).into())
    }
}

// ----- the load -----------------------------------------------------------------

/// When a client stops writing.
#[derive(Clone, Copy, Debug)]
pub enum Stop {
    /// After this long (the write in flight completes).
    After(Duration),
    /// After this many writes.
    Writes(u64),
}

/// One load step: `clients` concurrent tasks, each writing one command at a
/// time until `stop`.
#[derive(Clone, Copy, Debug)]
pub struct Phase {
    /// Concurrent clients.
    pub clients: usize,
    /// When each client stops.
    pub stop: Stop,
}

/// What one phase measured.
pub struct PhaseResult {
    /// Concurrent clients.
    pub clients: usize,
    /// Writes acknowledged (committed by a quorum and applied on the leader).
    pub writes: u64,
    /// From the first write's start to the last write's answer.
    pub elapsed: Duration,
    /// Every write's latency, sorted.
    pub lat: Vec<Duration>,
}

impl PhaseResult {
    /// Writes per second.
    pub fn rate(&self) -> f64 {
        self.writes as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    /// The `q`-th percentile latency (0 < q < 100) in microseconds.
    pub fn pct_us(&self, q: f64) -> f64 {
        if self.lat.is_empty() {
            return f64::NAN;
        }
        let i = ((self.lat.len() as f64 * q / 100.0) as usize).min(self.lat.len() - 1);
        self.lat[i].as_secs_f64() * 1e6
    }
}

/// What a run measured and what each node applied at the end.
pub struct RunResult {
    /// One per phase, in order.
    pub phases: Vec<PhaseResult>,
    /// Commands acknowledged to clients in the whole run (warm-up included).
    pub acked: u64,
    /// Commands each node's state machine applied, node 1 first.
    pub applied: Vec<u64>,
}

/// Writes sent before the phases, so the first phase starts on a warm cluster.
const WARM_UP: u64 = 20;

/// Starts 3 nodes on `stores`, runs the phases against the leader, waits
/// until every node applied everything and shuts the cluster down.
pub async fn run<LS>(stores: Vec<LS>, phases: &[Phase]) -> Result<RunResult, BoxErr>
where
    LS: RaftLogStorage<Tc>,
{
    let config = Arc::new(
        Config {
            heartbeat_interval: 100,
            election_timeout_min: 1000,
            election_timeout_max: 2000,
            ..Default::default()
        }
        .validate()?,
    );
    let router = Router::default();
    let mut rafts = Vec::new();
    for (id, store) in (1..).zip(stores) {
        // The node owns its state machine; a clone of the handle reads the count.
        let sm = Sm::default();
        let raft = Raft::new(id, config.clone(), router.clone(), store, sm.clone()).await?;
        router
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, raft.clone());
        rafts.push((raft, id, sm));
    }
    let result = load(&rafts, phases).await;
    for (r, _, _) in &rafts {
        r.shutdown().await?;
    }
    result
}

async fn load(rafts: &[(Raft<Tc>, NodeId, Sm)], phases: &[Phase]) -> Result<RunResult, BoxErr> {
    let members: BTreeMap<NodeId, BasicNode> = rafts
        .iter()
        .map(|(_, id, _)| (*id, BasicNode::default()))
        .collect();
    let first = &rafts[0].0;
    first.initialize(members).await?;
    let m = first
        .wait(Some(Duration::from_secs(30)))
        .metrics(|m| m.current_leader.is_some(), "a leader")
        .await?;
    let leader_id = m.current_leader.ok_or("no leader")?;
    let leader = rafts
        .iter()
        .find(|(_, id, _)| *id == leader_id)
        .map(|(r, _, _)| r.clone())
        .ok_or("the leader is not a member")?;

    for i in 0..WARM_UP {
        leader.client_write(format!("warm-up {i}")).await?;
    }
    let mut acked = WARM_UP;
    let mut out = Vec::new();
    for p in phases {
        let r = phase(&leader, *p).await?;
        acked += r.writes;
        out.push(r);
    }

    // Every node must apply every acknowledged write.
    let last = leader.metrics().borrow().last_applied;
    let mut applied = Vec::new();
    for (r, id, sm) in rafts {
        r.wait(Some(Duration::from_secs(30)))
            .metrics(
                |m| m.last_applied.map(|l| l.index) >= last.map(|l| l.index),
                format!("node {id} applied up to the leader"),
            )
            .await?;
        applied.push(sm.count());
    }
    Ok(RunResult {
        phases: out,
        acked,
        applied,
    })
}

async fn phase(leader: &Raft<Tc>, p: Phase) -> Result<PhaseResult, BoxErr> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..p.clients {
        let leader = leader.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = 0u64;
            loop {
                match p.stop {
                    Stop::After(d) if start.elapsed() >= d => break,
                    Stop::Writes(n) if i >= n => break,
                    _ => {}
                }
                let t = Instant::now();
                leader.client_write(format!("c{c} w{i}")).await?;
                lat.push(t.elapsed());
                i += 1;
            }
            Ok::<_, BoxErr>(lat)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let elapsed = start.elapsed();
    lat.sort_unstable();
    Ok(PhaseResult {
        clients: p.clients,
        writes: lat.len() as u64,
        elapsed,
        lat,
    })
}
