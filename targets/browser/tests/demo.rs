//! The Raft demo's nodes (`blockwal_browser::demo`) in one dedicated worker,
//! in headless Chromium: three raft-rs nodes on OPFS logs, messages routed
//! in the test, a leader killed (dropped) and reopened, then the whole
//! cluster closed and reopened from OPFS: every acknowledged write is there.

use std::collections::BTreeMap;

use blockwal_browser::demo::{DemoNode, Put};
use blockwal_browser::{remove_dir, unique_name};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

const NODES: u32 = 3;

type Cluster = Vec<Option<DemoNode>>;

async fn open(dir: &str, id: u32) -> DemoNode {
    match DemoNode::open(id, NODES, dir.to_string()).await {
        Ok(n) => n,
        Err(e) => panic!("open node {id}: {e:?}"),
    }
}

/// One round: every live node ticks (if `tick`) and runs its Ready loop;
/// messages to live nodes are delivered until none are left. Returns the
/// acknowledged requests.
fn round(c: &mut Cluster, tick: bool) -> Vec<(u64, u64)> {
    let mut acks = Vec::new();
    let mut queue = Vec::new();
    for n in c.iter_mut().flatten() {
        if tick {
            n.tick();
        }
        let out = n.ready_loop().expect("ready loop");
        queue.extend(out.messages);
        acks.extend(out.acks);
    }
    let mut hops = 0;
    while !queue.is_empty() {
        hops += 1;
        assert!(hops < 1000, "messages never settle");
        for (to, bytes) in std::mem::take(&mut queue) {
            let Some(Some(n)) = c.get_mut(to as usize - 1) else {
                continue; // to a killed node: lost
            };
            n.step(&bytes).expect("step");
            let out = n.ready_loop().expect("ready loop");
            queue.extend(out.messages);
            acks.extend(out.acks);
        }
    }
    acks
}

fn leader(c: &Cluster) -> Option<usize> {
    c.iter()
        .position(|n| n.as_ref().is_some_and(DemoNode::is_leader))
}

fn elect(c: &mut Cluster) -> usize {
    for _ in 0..500 {
        round(c, true);
        if let Some(l) = leader(c) {
            return l;
        }
    }
    panic!("no leader after 500 ticks");
}

/// Proposes `key=value` at the leader and runs rounds until it is
/// acknowledged; returns the entry's index.
fn put(c: &mut Cluster, req: u64, key: &str, value: &str) -> u64 {
    for _ in 0..200 {
        let l = elect(c);
        let node = c[l].as_mut().expect("leader is live");
        if node
            .propose(req as f64, key.into(), value.into())
            .expect("propose")
            != 0
        {
            continue;
        }
        for _ in 0..50 {
            if let Some((_, index)) = round(c, true).into_iter().find(|(r, _)| *r == req) {
                return index;
            }
        }
    }
    panic!("put {key} never acknowledged");
}

fn check(c: &Cluster, acked: &BTreeMap<String, String>, last: u64, what: &str) {
    for n in c.iter().flatten() {
        assert!(
            n.applied() >= last,
            "{what}: node {} applied only {} < {last}",
            n.id(),
            n.applied()
        );
        assert!(
            n.durable() >= last,
            "{what}: node {} durable only to {}",
            n.id(),
            n.durable()
        );
        for (k, v) in acked {
            assert_eq!(
                n.kv().get(k),
                Some(v.as_str()),
                "{what}: node {} key {k}",
                n.id()
            );
        }
    }
}

fn settle(c: &mut Cluster, last: u64) {
    for _ in 0..300 {
        if c.iter().flatten().all(|n| n.applied() >= last) {
            return;
        }
        round(c, true);
    }
}

#[wasm_bindgen_test]
fn put_encoding_round_trips_and_rejects_junk() {
    let p = Put {
        req: 7,
        key: "k=1".into(),
        value: "v\n2".into(),
    };
    assert_eq!(Put::decode(&p.encode()), Some(p));
    assert_eq!(Put::decode(&[]), None);
    assert_eq!(Put::decode(&[1, 2, 3]), None);
    let mut bad = vec![0u8; 8];
    bad.extend_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(Put::decode(&bad), None);
}

#[wasm_bindgen_test]
async fn cluster_survives_a_killed_leader_and_a_full_restart() {
    let dir = unique_name("demo-test");
    let mut c: Cluster = Vec::new();
    for id in 1..=NODES {
        c.push(Some(open(&dir, id).await));
    }
    let mut acked = BTreeMap::new();
    let mut last = 0;
    for i in 0..20u64 {
        let (k, v) = (format!("a{i}"), format!("x{i}"));
        last = put(&mut c, 1000 + i, &k, &v);
        acked.insert(k, v);
    }
    settle(&mut c, last);
    check(&c, &acked, last, "after 20 writes");

    // Kill the leader (drop its node: the file is closed, nothing flushed
    // beyond what the Ready loop synced); the others elect a new one.
    let old = leader(&c).expect("a leader");
    c[old] = None;
    for i in 0..10u64 {
        let (k, v) = (format!("b{i}"), format!("y{i}"));
        last = put(&mut c, 2000 + i, &k, &v);
        acked.insert(k, v);
    }
    assert_ne!(leader(&c), Some(old));
    c[old] = Some(open(&dir, old as u32 + 1).await);
    settle(&mut c, last);
    check(&c, &acked, last, "after the old leader came back");

    // The whole cluster closed and reopened from OPFS.
    c.clear();
    for id in 1..=NODES {
        let n = open(&dir, id).await;
        let (rlast, rcommit) = n.recovered();
        assert!(
            rlast >= last && rcommit <= rlast,
            "node {id} recovered {rlast}/{rcommit}, wrote {last}"
        );
        c.push(Some(n));
    }
    elect(&mut c);
    settle(&mut c, last);
    check(&c, &acked, last, "after reopening every node");
    c.clear();
    remove_dir(&dir).await.expect("remove the test directory");
}
