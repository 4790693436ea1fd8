//! Three raft-rs nodes in one process, each keeping its Raft log in a
//! blockwal file ([`blockwal::raft_rs::RaftStorage`]), with a key-value state
//! machine. Clients write keys through the leader; the leader is killed
//! mid-stream (its node dropped, writes in flight) and restarted from its
//! log; it catches up (by snapshot: the others compacted meanwhile); then the
//! whole cluster is restarted from its logs. After each step every
//! acknowledged write is checked on every node. Exits non-zero on a failed
//! check.
//!
//! ```text
//! cargo run --release --example raft_rs_cluster --features raft-rs [-- DIR]
//! ```
//!
//! The nodes run in one thread, in rounds: every live node ticks, then
//! messages are delivered and `Ready`s handled until the cluster is quiet.
#![allow(clippy::field_reassign_with_default)]

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use blockwal::raft_rs::RaftStorage;
use blockwal::{FileDevice, RaftWal};
use raft::prelude::*;
use raft::StateRole;

const IDS: [u64; 3] = [1, 2, 3];
/// Applied entries between two snapshots (each followed by a compaction).
const SNAPSHOT_EVERY: u64 = 16;

type Res<T> = Result<T, String>;

fn err(what: &str) -> impl Fn(raft::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// The state machine: keys to values, in a form a snapshot can carry.
type Kv = BTreeMap<String, String>;

fn encode_kv(kv: &Kv) -> Vec<u8> {
    kv.iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect::<String>()
        .into_bytes()
}

fn decode_kv(b: &[u8]) -> Res<Kv> {
    let s = std::str::from_utf8(b).map_err(|e| format!("snapshot data: {e}"))?;
    s.lines()
        .map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| format!("snapshot line {l:?}"))
        })
        .collect()
}

struct Node {
    id: u64,
    raw: RawNode<RaftStorage<FileDevice>>,
    store: RaftStorage<FileDevice>,
    kv: Kv,
    applied: u64,
    snapshot_at: u64,
    /// Writes this node applied (the leader acknowledges them to clients).
    applied_writes: Vec<String>,
    /// Snapshots received from a leader.
    snapshots_in: u64,
}

impl Node {
    /// Opens (or creates) the node's log in `dir` and starts raft-rs on it.
    fn open(id: u64, dir: &Path) -> Res<Node> {
        let wal = RaftWal::open(dir)
            .map_err(|e| format!("open {}: {e}", dir.display()))?
            .into_inner();
        let store = RaftStorage::open(wal).map_err(err("open store"))?;
        if store.conf_state().map_err(err("conf state"))? == ConfState::default()
            && store.last_index().map_err(err("last index"))? == 0
        {
            store
                .initialize_with_conf_state((IDS.to_vec(), vec![]))
                .map_err(err("initialize"))?;
        }
        // The state machine comes back from the last snapshot; raft-rs then
        // hands out the committed entries after it again.
        let (kv, applied) = match store.latest_snapshot().map_err(err("snapshot"))? {
            Some(s) => (decode_kv(&s.data)?, s.get_metadata().index),
            None => (Kv::new(), 0),
        };
        let config = Config {
            id,
            election_tick: 10,
            heartbeat_tick: 3,
            applied,
            pre_vote: true,
            max_inflight_msgs: 256,
            max_size_per_msg: 1 << 20,
            ..Default::default()
        };
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let raw = RawNode::new(&config, store.clone(), &logger).map_err(err("raft"))?;
        Ok(Node {
            id,
            raw,
            store,
            kv,
            applied,
            snapshot_at: applied,
            applied_writes: Vec::new(),
            snapshots_in: 0,
        })
    }

    fn apply(&mut self, entries: Vec<Entry>) -> Res<()> {
        for e in entries {
            if e.get_entry_type() == EntryType::EntryNormal && !e.data.is_empty() {
                let w = String::from_utf8(e.data.to_vec()).map_err(|e| e.to_string())?;
                let (k, v) = w.split_once('=').ok_or("bad write")?;
                self.kv.insert(k.to_string(), v.to_string());
                self.applied_writes.push(w);
            }
            self.applied = e.index;
        }
        if self.applied >= self.snapshot_at + SNAPSHOT_EVERY {
            let cs = self.store.conf_state().map_err(err("conf state"))?;
            let data = encode_kv(&self.kv);
            self.store
                .create_snapshot(self.applied, &cs, &data)
                .map_err(err("create snapshot"))?;
            self.store
                .compact(self.applied + 1)
                .map_err(err("compact"))?;
            self.snapshot_at = self.applied;
        }
        Ok(())
    }

    /// Handles one `Ready` in the order the module docs give; returns the
    /// messages to send.
    fn handle_ready(&mut self) -> Res<Vec<Message>> {
        if !self.raw.has_ready() {
            return Ok(Vec::new());
        }
        let mut rd = self.raw.ready();
        let mut out = rd.take_messages();
        self.store.persist_ready(&rd).map_err(err("persist"))?;
        if !rd.snapshot().is_empty() {
            self.kv = decode_kv(&rd.snapshot().data)?;
            self.applied = rd.snapshot().get_metadata().index;
            self.snapshot_at = self.applied;
            self.snapshots_in += 1;
        }
        out.extend(rd.take_persisted_messages());
        self.apply(rd.take_committed_entries())?;
        let mut light = self.raw.advance(rd);
        if let Some(c) = light.commit_index() {
            self.store.commit_to(c).map_err(err("commit"))?;
        }
        out.extend(light.take_messages());
        self.apply(light.take_committed_entries())?;
        self.raw.advance_apply();
        Ok(out)
    }
}

struct Cluster {
    dirs: HashMap<u64, PathBuf>,
    nodes: BTreeMap<u64, Node>,
    mail: VecDeque<Message>,
    ticks: u64,
}

impl Cluster {
    fn open(base: &Path) -> Res<Cluster> {
        let mut c = Cluster {
            dirs: IDS
                .iter()
                .map(|&i| (i, base.join(format!("node-{i}"))))
                .collect(),
            nodes: BTreeMap::new(),
            mail: VecDeque::new(),
            ticks: 0,
        };
        for id in IDS {
            c.start(id)?;
        }
        Ok(c)
    }

    fn start(&mut self, id: u64) -> Res<()> {
        let n = Node::open(id, &self.dirs[&id])?;
        self.nodes.insert(id, n);
        Ok(())
    }

    /// Drops the node: its raft state and its open log, nothing flushed.
    fn kill(&mut self, id: u64) {
        self.nodes.remove(&id);
    }

    /// Delivers messages and handles readies until nothing moves.
    fn settle(&mut self) -> Res<()> {
        for _ in 0..1000 {
            let mut moved = false;
            for n in self.nodes.values_mut() {
                let out = n.handle_ready()?;
                moved |= !out.is_empty();
                self.mail.extend(out);
            }
            while let Some(m) = self.mail.pop_front() {
                moved = true;
                // Messages to a dead node are lost, as on a network.
                if let Some(n) = self.nodes.get_mut(&m.to) {
                    let _ = n.raw.step(m);
                }
            }
            if !moved && !self.nodes.values().any(|n| n.raw.has_ready()) {
                return Ok(());
            }
        }
        Err("the cluster did not settle".into())
    }

    fn tick(&mut self) -> Res<()> {
        self.ticks += 1;
        for n in self.nodes.values_mut() {
            n.raw.tick();
        }
        self.settle()
    }

    fn leader(&self) -> Option<u64> {
        self.nodes
            .values()
            .filter(|n| n.raw.raft.state == StateRole::Leader)
            .max_by_key(|n| n.raw.raft.term)
            .map(|n| n.id)
    }

    /// Ticks until a leader is elected; returns it and the ticks it took.
    fn elect(&mut self) -> Res<(u64, u64)> {
        let t0 = self.ticks;
        for _ in 0..500 {
            if let Some(l) = self.leader() {
                return Ok((l, self.ticks - t0));
            }
            self.tick()?;
        }
        Err("no leader elected in 500 ticks".into())
    }

    /// Proposes the writes on the leader, then ticks until it applied them
    /// (acknowledged) or `ticks` ran out; returns the acknowledged ones.
    fn write(&mut self, writes: &[String], ticks: u64) -> Res<Vec<String>> {
        let l = self.leader().ok_or("no leader")?;
        let node = self.nodes.get_mut(&l).ok_or("leader gone")?;
        let before = node.applied_writes.len();
        for w in writes {
            node.raw
                .propose(vec![], w.clone().into_bytes())
                .map_err(err("propose"))?;
        }
        let want: BTreeSet<&String> = writes.iter().collect();
        for _ in 0..ticks {
            self.settle()?;
            let node = &self.nodes[&l];
            let done = node.applied_writes[before..]
                .iter()
                .filter(|w| want.contains(w))
                .count();
            if done == writes.len() {
                break;
            }
            self.tick()?;
        }
        let node = self.nodes.get(&l).ok_or("leader gone")?;
        Ok(node.applied_writes[before..]
            .iter()
            .filter(|w| want.contains(w))
            .cloned()
            .collect())
    }

    /// Every acknowledged write is in every live node's state machine.
    fn check(&self, acked: &BTreeMap<String, String>, when: &str) -> Res<()> {
        for n in self.nodes.values() {
            for (k, v) in acked {
                if n.kv.get(k) != Some(v) {
                    return Err(format!(
                        "{when}: node {} has {k} = {:?}, acknowledged {v:?}",
                        n.id,
                        n.kv.get(k)
                    ));
                }
            }
        }
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        println!(
            "check ({when}): all {} acknowledged writes on nodes {ids:?}: ok",
            acked.len()
        );
        Ok(())
    }

    /// After `catch_up`: every live node's state machine is the same.
    fn check_same(&self, when: &str) -> Res<()> {
        let mut it = self.nodes.values();
        let Some(first) = it.next() else {
            return Ok(());
        };
        for n in it {
            if n.kv != first.kv {
                return Err(format!(
                    "{when}: node {} has {} keys, node {} has {} (or other values)",
                    n.id,
                    n.kv.len(),
                    first.id,
                    first.kv.len()
                ));
            }
        }
        println!(
            "check ({when}): the {} nodes' state machines are identical ({} keys)",
            self.nodes.len(),
            first.kv.len()
        );
        Ok(())
    }

    /// Ticks until every live node applied the leader's commit index.
    fn catch_up(&mut self) -> Res<u64> {
        let t0 = self.ticks;
        for _ in 0..500 {
            let l = self.leader().ok_or("no leader")?;
            let commit = self.nodes[&l].raw.raft.raft_log.committed;
            if self.nodes.values().all(|n| n.applied >= commit) {
                return Ok(self.ticks - t0);
            }
            self.tick()?;
        }
        Err("nodes did not catch up in 500 ticks".into())
    }
}

fn writes(from: usize, n: usize) -> Vec<String> {
    (from..from + n)
        .map(|i| format!("key{i}=value{i}"))
        .collect()
}

fn ack(acked: &mut BTreeMap<String, String>, ws: &[String]) {
    for w in ws {
        if let Some((k, v)) = w.split_once('=') {
            acked.insert(k.to_string(), v.to_string());
        }
    }
}

fn run(base: &Path) -> Res<()> {
    println!(
        "raft_rs_cluster: 3 raft-rs nodes, logs in {}",
        base.display()
    );
    let mut c = Cluster::open(base)?;
    let mut acked = BTreeMap::new();

    let (l, t) = c.elect()?;
    println!(
        "leader elected: node {l} (term {}) after {t} ticks",
        c.nodes[&l].raw.raft.term
    );
    for batch in 0..5 {
        let ws = writes(batch * 8, 8);
        let ok = c.write(&ws, 50)?;
        if ok.len() != ws.len() {
            return Err(format!(
                "only {} of {} writes acknowledged",
                ok.len(),
                ws.len()
            ));
        }
        ack(&mut acked, &ok);
    }
    println!(
        "wrote {} keys through node {l}: all acknowledged",
        acked.len()
    );
    c.check(&acked, "before the kill")?;

    // Kill the leader with writes in flight: proposed, one round of
    // messages, then the node is dropped.
    let node = c.nodes.get_mut(&l).ok_or("leader")?;
    let in_flight = writes(1000, 5);
    for w in &in_flight {
        node.raw
            .propose(vec![], w.clone().into_bytes())
            .map_err(err("propose"))?;
    }
    let out = node.handle_ready()?;
    c.mail.extend(out);
    let term = c.nodes[&l].raw.raft.term;
    c.kill(l);
    println!("killed the leader (node {l}, term {term}) with 5 writes in flight");

    let (l2, t) = c.elect()?;
    println!(
        "new leader: node {l2} (term {}) after {t} ticks",
        c.nodes[&l2].raw.raft.term
    );
    for batch in 0..5 {
        let ws = writes(100 + batch * 8, 8);
        let ok = c.write(&ws, 50)?;
        if ok.len() != ws.len() {
            return Err(format!(
                "only {} of {} writes acknowledged",
                ok.len(),
                ws.len()
            ));
        }
        ack(&mut acked, &ok);
    }
    println!(
        "wrote 40 more keys through node {l2}: all acknowledged ({} in all)",
        acked.len()
    );
    c.check(&acked, "two nodes, leader killed")?;

    c.start(l)?;
    let n = &c.nodes[&l];
    println!(
        "restarted node {l} from its log: entries {}..={}, snapshot at {}, commit {}",
        n.store.first_index().map_err(err("first"))?,
        n.store.last_index().map_err(err("last"))?,
        n.snapshot_at,
        n.raw.raft.raft_log.committed
    );
    let t = c.catch_up()?;
    let leader_first = c.nodes[&l2].store.first_index().map_err(err("first"))?;
    println!(
        "node {l} caught up in {t} ticks: applied {}, {} snapshot(s) received (the leader's log starts at {leader_first})",
        c.nodes[&l].applied, c.nodes[&l].snapshots_in
    );
    c.check(&acked, "killed leader restarted")?;
    c.check_same("killed leader restarted")?;
    let survived = in_flight
        .iter()
        .filter(|w| {
            w.split_once('=')
                .is_some_and(|(k, _)| c.nodes[&l2].kv.contains_key(k))
        })
        .count();
    println!(
        "of the 5 writes in flight at the kill, {survived} were committed (either is allowed)"
    );

    // Every node down at once, then back from its log.
    drop(c);
    let mut c = Cluster::open(base)?;
    let (l3, t) = c.elect()?;
    println!(
        "whole cluster restarted from its logs: leader node {l3} (term {}) after {t} ticks",
        c.nodes[&l3].raw.raft.term
    );
    let ws = writes(500, 4);
    let ok = c.write(&ws, 50)?;
    if ok.len() != ws.len() {
        return Err("writes after the restart not acknowledged".into());
    }
    ack(&mut acked, &ok);
    c.catch_up()?;
    c.check(&acked, "whole cluster restarted")?;
    c.check_same("whole cluster restarted")?;
    Ok(())
}

fn main() -> ExitCode {
    let tmp;
    let base = match std::env::args_os().nth(1) {
        Some(d) => PathBuf::from(d),
        None => match tempfile::tempdir() {
            Ok(d) => {
                tmp = d;
                tmp.path().to_path_buf()
            }
            Err(e) => {
                eprintln!("raft_rs_cluster: temp dir: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    match run(&base) {
        Ok(()) => {
            println!("raft_rs_cluster: all checks passed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("raft_rs_cluster: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
