//! A 3-node openraft cluster whose nodes keep their Raft logs in blockwal
//! files, in one process with an in-memory network. It writes some entries,
//! then measures the end-to-end latency of a client write (sent to the
//! leader, answered after a quorum made it durable and the leader applied it)
//! with blockwal and with a plain in-memory log store, in the same run.
//!
//! ```text
//! cargo run --release --example openraft_cluster --features openraft [-- WRITES_PER_ROUND]
//! ```

// openraft fixes its error types (`RPCError`, `StorageError`).
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Cursor;
use std::ops::RangeBounds;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use blockwal::openraft::{CommittedMode, LogStore, LogStoreOptions};
use blockwal::{MemDevice, RaftWal, Wal};
use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine};
use openraft::{
    BasicNode, Config, EntryPayload, LogId, OptionalSend, Raft, RaftLogReader, RaftNetwork,
    RaftNetworkFactory, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError,
    StoredMembership, Vote,
};

openraft::declare_raft_types!(
    /// App data and responses are strings.
    pub Tc
);
type NodeId = u64;
type Entry = openraft::Entry<Tc>;
type Err = StorageError<NodeId>;

// ----- a minimal state machine: applied values in memory ---------------------

/// Last applied log id, last membership, number of app entries applied.
type SmState = (
    Option<LogId<NodeId>>,
    StoredMembership<NodeId, BasicNode>,
    u64,
);

#[derive(Clone, Default)]
struct Sm(Arc<Mutex<SmState>>);

impl RaftSnapshotBuilder<Tc> for Sm {
    async fn build_snapshot(&mut self) -> Result<Snapshot<Tc>, Err> {
        let (last, membership, count) = self.0.lock().unwrap().clone();
        Ok(Snapshot {
            meta: SnapshotMeta {
                last_log_id: last,
                last_membership: membership,
                snapshot_id: format!("{count}"),
            },
            snapshot: Box::new(Cursor::new(count.to_le_bytes().to_vec())),
        })
    }
}

impl RaftStateMachine<Tc> for Sm {
    type SnapshotBuilder = Self;
    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), Err> {
        let g = self.0.lock().unwrap();
        Ok((g.0, g.1.clone()))
    }
    async fn apply<I>(&mut self, entries: I) -> Result<Vec<String>, Err>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut g = self.0.lock().unwrap();
        let mut out = Vec::new();
        for e in entries {
            g.0 = Some(e.log_id);
            if let EntryPayload::Membership(m) = e.payload {
                g.1 = StoredMembership::new(Some(e.log_id), m);
            } else {
                g.2 += 1;
            }
            out.push(String::new());
        }
        Ok(out)
    }
    async fn get_snapshot_builder(&mut self) -> Self {
        self.clone()
    }
    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, Err> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }
    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), Err> {
        let b = snapshot.into_inner();
        let count = b
            .get(..8)
            .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
        *self.0.lock().unwrap() = (meta.last_log_id, meta.last_membership.clone(), count);
        Ok(())
    }
    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<Tc>>, Err> {
        Ok(None)
    }
}

// ----- the in-memory log store blockwal is compared with ---------------------

#[derive(Default)]
struct MemLog {
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    purged: Option<LogId<NodeId>>,
    log: BTreeMap<u64, Entry>,
}

/// A log in a `BTreeMap`: appends are "durable" at once.
#[derive(Clone, Default)]
struct MemStore(Arc<Mutex<MemLog>>);

impl RaftLogReader<Tc> for MemStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, Err> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .log
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl RaftLogStorage<Tc> for MemStore {
    type LogReader = Self;
    async fn get_log_state(&mut self) -> Result<LogState<Tc>, Err> {
        let g = self.0.lock().unwrap();
        let last = g.log.values().next_back().map(|e| e.log_id).or(g.purged);
        Ok(LogState {
            last_purged_log_id: g.purged,
            last_log_id: last,
        })
    }
    async fn get_log_reader(&mut self) -> Self {
        self.clone()
    }
    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), Err> {
        self.0.lock().unwrap().vote = Some(*vote);
        Ok(())
    }
    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, Err> {
        Ok(self.0.lock().unwrap().vote)
    }
    async fn save_committed(&mut self, c: Option<LogId<NodeId>>) -> Result<(), Err> {
        self.0.lock().unwrap().committed = c;
        Ok(())
    }
    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, Err> {
        Ok(self.0.lock().unwrap().committed)
    }
    async fn append<I>(&mut self, entries: I, callback: LogFlushed<Tc>) -> Result<(), Err>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut g = self.0.lock().unwrap();
        for e in entries {
            g.log.insert(e.log_id.index, e);
        }
        callback.log_io_completed(Ok(()));
        Ok(())
    }
    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), Err> {
        self.0.lock().unwrap().log.split_off(&log_id.index);
        Ok(())
    }
    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), Err> {
        let mut g = self.0.lock().unwrap();
        g.log = g.log.split_off(&(log_id.index + 1));
        g.purged = Some(log_id);
        Ok(())
    }
}

// ----- an in-memory network ---------------------------------------------------

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
    fn node<E: std::error::Error>(
        &self,
    ) -> Result<Raft<Tc>, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>> {
        let r = self.0 .0.lock().unwrap().get(&self.1).cloned();
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

// ----- the cluster --------------------------------------------------------------

/// Starts 3 nodes on the given log stores, writes `writes` entries one at a
/// time through the leader and returns each write's latency.
async fn run<LS: RaftLogStorage<Tc>>(
    stores: Vec<LS>,
    writes: usize,
) -> Result<Vec<Duration>, Box<dyn std::error::Error>> {
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
        let raft = Raft::new(id, config.clone(), router.clone(), store, Sm::default()).await?;
        router.0.lock().unwrap().insert(id, raft.clone());
        rafts.push(raft);
    }
    let members: BTreeMap<NodeId, BasicNode> = (1..=3).map(|i| (i, BasicNode::default())).collect();
    rafts[0].initialize(members).await?;
    let m = rafts[0]
        .wait(Some(Duration::from_secs(30)))
        .metrics(|m| m.current_leader.is_some(), "a leader")
        .await?;
    let leader = rafts[(m.current_leader.unwrap_or(1) - 1) as usize].clone();
    for i in 0..writes / 10 + 5 {
        leader.client_write(format!("warm-up {i}")).await?; // warm-up
    }
    let mut lat = Vec::with_capacity(writes);
    for i in 0..writes {
        let t = Instant::now();
        leader.client_write(format!("value {i}")).await?;
        lat.push(t.elapsed());
    }
    for r in &rafts {
        r.shutdown().await?;
    }
    Ok(lat)
}

/// The raw cost of one durable write on this disk: 128 bytes written in
/// place into a preallocated file, then `fdatasync` (what blockwal does too).
fn raw_fdatasync(root: &std::path::Path, n: usize) -> std::io::Result<Vec<Duration>> {
    use std::io::{Seek, SeekFrom, Write};
    let path = root.join("raw-fdatasync");
    let mut f = std::fs::File::create(&path)?;
    f.write_all(&vec![0u8; 128 * n])?;
    f.sync_all()?;
    f.seek(SeekFrom::Start(0))?;
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f.write_all(&[7u8; 128])?;
        f.sync_data()?;
        lat.push(t.elapsed());
    }
    std::fs::remove_file(path)?;
    Ok(lat)
}

/// Median and 99th percentile.
fn stats(lat: &mut [Duration]) -> (f64, f64) {
    lat.sort();
    let at = |q: usize| us(lat[(lat.len() * q / 100).min(lat.len() - 1)]);
    (at(50), at(99))
}

fn blockwal_stores(
    root: &std::path::Path,
    name: &str,
    committed: CommittedMode,
) -> Result<Vec<LogStore<Tc, blockwal::FileDevice>>, Box<dyn std::error::Error>> {
    (1..=3)
        .map(|i| {
            let wal = RaftWal::open(root.join(format!("{name}-node{i}")))?;
            let store = LogStore::with_options(
                wal.into_inner(),
                LogStoreOptions::default().committed(committed),
            )?;
            Ok(store)
        })
        .collect()
}

const ROUNDS: usize = 6;
const RAW: &str = "(raw 128 B pwrite + fdatasync, no Raft)";
const MEM: &str = "in-memory BTreeMap log store";
const BW_MEM: &str = "blockwal LogStore on MemDevice";
const BW_DURABLE: &str = "blockwal files, committed durable (default)";
const BW_DEFERRED: &str = "blockwal files, committed deferred";
const KINDS: [&str; 5] = [MEM, BW_MEM, BW_DURABLE, BW_DEFERRED, RAW];

/// One run of `writes` writes on a fresh cluster of the given kind.
async fn sample(
    kind: &str,
    root: &std::path::Path,
    round: usize,
    writes: usize,
) -> Result<Vec<Duration>, Box<dyn std::error::Error>> {
    match kind {
        RAW => Ok(raw_fdatasync(root, writes)?),
        MEM => run((0..3).map(|_| MemStore::default()).collect(), writes).await,
        BW_MEM => {
            let mut stores = Vec::new();
            for _ in 0..3 {
                let wal = Wal::open(MemDevice::new(1 << 20, 4, 1 << 12))?;
                stores.push(LogStore::<Tc, MemDevice>::new(wal)?);
            }
            run(stores, writes).await
        }
        _ => {
            let mode = if kind == BW_DURABLE {
                CommittedMode::Durable
            } else {
                CommittedMode::Deferred
            };
            let name = format!("{mode:?}-{round}");
            run(blockwal_stores(root, &name, mode)?, writes).await
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let writes: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100)
        .max(1);
    let root: PathBuf =
        std::env::temp_dir().join(format!("blockwal-openraft-{}", std::process::id()));
    std::fs::create_dir_all(&root)?;
    println!(
        "3-node openraft cluster, in-memory network, {ROUNDS} x {writes} sequential client writes"
    );
    println!("logs in {}\n", root.display());

    let mut samples: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let result = async {
        // Short runs in a rotating order, so the machine's noise (a shared
        // disk) hits every store alike; the samples are pooled.
        for round in 0..ROUNDS {
            for k in 0..KINDS.len() {
                let kind = KINDS[(round + k) % KINDS.len()];
                let l = sample(kind, &root, round, writes).await?;
                samples.entry(kind).or_default().extend(l);
            }
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    }
    .await;
    let _ = std::fs::remove_dir_all(&root);
    result?;

    let mut st = BTreeMap::new();
    for (k, v) in samples.iter_mut() {
        st.insert(*k, stats(v));
    }
    let mem = st[MEM].0;
    println!("client write latency, {} samples each:", ROUNDS * writes);
    println!(
        "{:<44} {:>10} {:>10}   median vs in-memory",
        "log store", "median", "p99"
    );
    for k in [MEM, BW_MEM, BW_DURABLE, BW_DEFERRED, RAW] {
        let (m, p) = st[k];
        println!("{k:<44} {m:>7.0} us {p:>7.0} us   {:>6.1} x", m / mem);
    }
    Ok(())
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
