//! A 3-node openraft cluster in one process (in-memory network) whose nodes
//! keep their logs in blockwal files. A follower is stopped, the cluster goes
//! on, the follower restarts from its log and catches up.
#![cfg(feature = "openraft")]

mod openraft_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use blockwal::openraft::LogStore;
use blockwal::FileDevice;
use openraft::storage::RaftLogStorage;
use openraft::RaftLogReader;
use openraft::{Config, Raft, ServerState};
use openraft_common::{members, MemSm, NodeId, Router, Tc};

const DEADLINE: Duration = Duration::from_secs(60);

fn config() -> Arc<Config> {
    // Generous timeouts: the machine may be busy; no spurious elections.
    let c = Config {
        cluster_name: "blockwal-test".into(),
        heartbeat_interval: 100,
        election_timeout_min: 1000,
        election_timeout_max: 2000,
        ..Default::default()
    };
    Arc::new(c.validate().expect("valid config"))
}

async fn start(id: NodeId, dir: &std::path::Path, router: &Router) -> (Raft<Tc>, MemSm) {
    // A node just shut down may still be releasing its file lock.
    let t0 = Instant::now();
    let store = loop {
        match LogStore::<Tc, FileDevice>::open_dir(dir) {
            Ok(s) => break s,
            Err(e) if t0.elapsed() < Duration::from_secs(5) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("node {id}: cannot open its log: {e}"),
        }
    };
    let sm = MemSm::default();
    let raft = Raft::new(id, config(), router.clone(), store, sm.clone())
        .await
        .expect("raft starts");
    router.add(id, raft.clone());
    (raft, sm)
}

/// Writes through whichever node leads, retrying across leader changes.
async fn write(router: &Router, value: String) -> u64 {
    let t0 = Instant::now();
    loop {
        assert!(t0.elapsed() < DEADLINE, "no leader accepted {value}");
        let nodes: Vec<Raft<Tc>> = router.nodes.lock().unwrap().values().cloned().collect();
        let leader = nodes
            .iter()
            .find_map(|r| r.metrics().borrow().current_leader)
            .and_then(|l| router.nodes.lock().unwrap().get(&l).cloned());
        if let Some(raft) = leader {
            if let Ok(resp) = raft.client_write(value.clone()).await {
                return resp.log_id.index;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_restarts_from_its_log_and_catches_up() {
    tokio::time::timeout(DEADLINE * 2, scenario())
        .await
        .expect("cluster test timed out");
}

async fn scenario() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let dir = |id: NodeId| dirs[(id - 1) as usize].path().to_path_buf();
    let router = Router::default();
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(start(id, &dir(id), &router).await);
    }
    nodes[0].0.initialize(members(&[1, 2, 3])).await.unwrap();
    let m = nodes[0]
        .0
        .wait(Some(DEADLINE))
        .metrics(|m| m.current_leader.is_some(), "a leader")
        .await
        .unwrap();
    let leader = m.current_leader.unwrap();

    for i in 0..30 {
        write(&router, format!("a{i}")).await;
    }

    // Stop a follower.
    let victim = (1..=3).find(|i| *i != leader).unwrap();
    let (raft_v, sm_v) = {
        let k = (victim - 1) as usize;
        (nodes[k].0.clone(), nodes[k].1.clone())
    };
    let applied_before = sm_v.data.lock().unwrap().applied.len();
    router.remove(victim);
    raft_v.shutdown().await.unwrap();
    drop(raft_v);

    // The cluster goes on without it.
    for i in 0..30 {
        write(&router, format!("b{i}")).await;
    }

    // Its log on disk holds its vote and what it had flushed.
    {
        let mut s = LogStore::<Tc, FileDevice>::open_dir(dir(victim)).unwrap();
        let st = s.get_log_state().await.unwrap();
        let last = st.last_log_id.expect("entries survived the stop").index;
        assert!(
            last as usize >= applied_before,
            "log ends at {last}, but {applied_before} entries were applied"
        );
        assert!(s.read_vote().await.unwrap().is_some(), "vote survived");
    }

    // Restart it from its log; it catches up with the leader.
    let (raft_v, sm_v) = start(victim, &dir(victim), &router).await;
    let leader_raft = router
        .nodes
        .lock()
        .unwrap()
        .values()
        .find(|r| r.metrics().borrow().state == ServerState::Leader)
        .cloned()
        .expect("a leader");
    let want = leader_raft.metrics().borrow().last_log_index;
    raft_v
        .wait(Some(DEADLINE))
        .applied_index_at_least(want, "restarted follower catches up")
        .await
        .unwrap();
    let c = write(&router, "c".to_string()).await;
    raft_v
        .wait(Some(DEADLINE))
        .applied_index_at_least(Some(c), "and keeps up")
        .await
        .unwrap();
    let leader_id = leader_raft.metrics().borrow().id;
    assert_ne!(
        leader_id, victim,
        "the leader did not change to the restarted node"
    );
    let leader_sm = nodes[(leader_id - 1) as usize]
        .1
        .data
        .lock()
        .unwrap()
        .applied
        .clone();
    let got = sm_v.data.lock().unwrap().applied.clone();
    assert_eq!(
        got, leader_sm,
        "the restarted follower applied what the leader did"
    );
    assert!(got.values().any(|v| v == "b29") && got.values().any(|v| v == "a0"));

    let all: Vec<Raft<Tc>> = router.nodes.lock().unwrap().values().cloned().collect();
    for r in all {
        r.shutdown().await.unwrap();
    }
}

/// A memory device whose sync takes a while (like a disk) and is counted.
struct SlowSync {
    dev: blockwal::MemDevice,
    syncs: Arc<std::sync::atomic::AtomicU64>,
}

impl blockwal::BlockDevice for SlowSync {
    type Error = blockwal::MemError;
    fn geometry(&self) -> blockwal::Geometry {
        self.dev.geometry()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
        self.dev.read(offset, buf)
    }
    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), Self::Error> {
        self.dev.program(offset, data)
    }
    fn erase(&mut self, block: u32) -> Result<(), Self::Error> {
        self.dev.erase(block)
    }
    fn sync(&mut self) -> Result<(), Self::Error> {
        std::thread::sleep(Duration::from_millis(3));
        self.syncs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.dev.sync()
    }
    fn grow(&mut self, blocks: u32) -> Result<bool, Self::Error> {
        self.dev.grow(blocks)
    }
}

/// Appends made while a sync is under way do not wait for it, and share
/// the next one. (openraft 0.9's `RaftCore` itself waits for each append's
/// flush, so this is driven through the storage API: each `blocking_append`
/// is polled once, which stages the entries, and then dropped.)
#[tokio::test(flavor = "current_thread")]
async fn appends_in_flight_share_one_sync() {
    use openraft::storage::RaftLogStorageExt;
    use openraft::{CommittedLeaderId, EntryPayload, LogId};
    use std::future::Future;
    let syncs = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let dev = SlowSync {
        dev: blockwal::MemDevice::new(1 << 16, 4, 1 << 10),
        syncs: syncs.clone(),
    };
    let mut store = LogStore::<Tc, SlowSync>::new(blockwal::Wal::open(dev).unwrap()).unwrap();
    const N: u64 = 100;
    for i in 0..N {
        let e = openraft_common::Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 0), i),
            payload: EntryPayload::Normal(format!("e{i}")),
        };
        // Polled once: `append` stages the entry and returns; the wait for
        // its flush is abandoned.
        let mut fut = std::pin::pin!(store.blocking_append([e]));
        std::future::poll_fn(|cx| {
            let _ = fut.as_mut().poll(cx);
            std::task::Poll::Ready(())
        })
        .await;
    }
    // Readable at once, durable after the flusher's syncs.
    assert_eq!(
        store.try_get_log_entries(0..N).await.unwrap().len(),
        N as usize
    );
    store.sync().unwrap();
    let used = syncs.load(std::sync::atomic::Ordering::Relaxed);
    // Had each append waited for its own sync, this would be N.
    assert!(used * 2 <= N, "{N} appends took {used} syncs");
    let wal = store.into_wal().unwrap();
    assert_eq!(
        (wal.first_index(), wal.last_index()),
        (Some(0), Some(N - 1))
    );
}
