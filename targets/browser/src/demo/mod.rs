//! The browser Raft demo (`www/demo.html`): one raft-rs node per dedicated
//! worker, its log, hard state and conf state in its own OPFS file through
//! [`blockwal::raft_rs::RaftStorage`] over an [`OpfsDevice`].
//!
//! The worker (`www/demo-worker.js`) owns a [`DemoNode`]: it feeds it ticks
//! (a timer), messages from peers (routed by the page) and `put`s, then
//! calls [`DemoNode::pump`], which runs the `Ready` loop and hands back the
//! messages to send and the writes to acknowledge. The page draws
//! [`DemoNode::status`].
//!
//! The `Ready` loop's order is what makes an acknowledged write survive a
//! killed worker or browser: snapshot, entries and hard state are written
//! and **synced before any message of that `Ready` leaves the worker** (a
//! vote or an append response promises the sender that they are durable),
//! and a write is acknowledged only once it is committed (durable on a
//! majority) and applied here.

pub mod kv;

use std::collections::BTreeSet;

use blockwal::devices::opfs::{OpfsDevice, OpfsError};
use blockwal::raft_rs::RaftStorage;
use blockwal::Wal;
use js_sys::{Array, Object, Reflect, Uint8Array};
use protobuf::Message as _;
use raft::prelude::{ConfState, Entry, EntryType, Message};
use raft::{Config, RawNode, StateRole, Storage};
use wasm_bindgen::prelude::*;

pub use kv::{Kv, Put};

/// A node's durable Raft storage: blockwal's raft-rs store over its OPFS log.
pub type Store = RaftStorage<OpfsDevice>;

/// Block size of each node's log file: opening a block costs a flush, so
/// blocks are large (a new node's file starts at four of them).
pub const BLOCK_SIZE: u32 = 64 << 10;
/// Entries shown in a node's log strip.
pub const STRIP: u64 = 24;
/// Most nodes a cluster may have.
pub const MAX_NODES: u32 = 5;

fn js_err(e: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&e.to_string()).into()
}

fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    // Setting a property on a plain object we just made cannot fail.
    let _ = Reflect::set(obj, &JsValue::from_str(key), &value.into());
}

/// One Raft node of the demo cluster.
#[wasm_bindgen]
pub struct DemoNode {
    raw: RawNode<Store>,
    kv: Kv,
    /// Requests proposed here and not yet applied.
    pending: BTreeSet<u64>,
    /// Last index made durable by a sync.
    durable: u64,
    /// Last index applied to `kv`.
    applied: u64,
    /// What the node recovered from OPFS when it opened: (last index, commit).
    recovered: (u64, u64),
}

#[wasm_bindgen]
impl DemoNode {
    /// Opens (or creates) node `id` of a cluster of `nodes` (ids
    /// `1..=nodes`) in OPFS directory `dir`, file `node-<id>`, and recovers
    /// its log, hard state and conf state. Rejects with an error whose
    /// message starts with `Locked` while another worker still holds the
    /// file (a terminated worker releases it a moment later).
    pub async fn open(id: u32, nodes: u32, dir: String) -> Result<DemoNode, JsValue> {
        if id == 0 || id > nodes || nodes > MAX_NODES {
            return Err(js_err(format!(
                "node {id} of {nodes}: ids run from 1 to the node count, at most {MAX_NODES}"
            )));
        }
        let dev = match OpfsDevice::open(&dir, &format!("node-{id}"), BLOCK_SIZE).await {
            Ok(d) => d,
            Err(e @ OpfsError::Locked { .. }) => return Err(js_err(format!("Locked: {e}"))),
            Err(e) => return Err(js_err(e)),
        };
        let wal = Wal::open_with(dev, crate::wal_options()).map_err(js_err)?;
        let store = Store::open(wal).map_err(js_err)?;
        if store.conf_state().map_err(js_err)?.voters.is_empty() {
            // A new node: every node starts with the same static membership.
            let cs = ConfState::from(((1..=u64::from(nodes)).collect::<Vec<_>>(), vec![]));
            store.initialize_with_conf_state(cs).map_err(js_err)?;
        }
        let last = store.last_index().map_err(js_err)?;
        let commit = store.hard_state().map_err(js_err)?.commit;
        // The map lives in memory only: rebuild it from the whole log.
        let applied = store.first_index().map_err(js_err)? - 1;
        let config = Config {
            id: u64::from(id),
            election_tick: 10,
            heartbeat_tick: 2,
            applied,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: true,
            ..Config::default()
        };
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let raw = RawNode::new(&config, store, &logger).map_err(js_err)?;
        Ok(DemoNode {
            raw,
            kv: Kv::default(),
            pending: BTreeSet::new(),
            durable: last,
            applied,
            recovered: (last, commit),
        })
    }

    /// One tick of the logical clock (the worker calls it every 100 ms).
    pub fn tick(&mut self) {
        self.raw.tick();
    }

    /// Steps a message from a peer (protobuf bytes).
    pub fn step(&mut self, bytes: &[u8]) -> Result<(), JsValue> {
        let msg = Message::parse_from_bytes(bytes).map_err(js_err)?;
        // A message from a peer the node does not know (or a stale one) is
        // dropped by raft; that is not an error of this node.
        let _ = self.raw.step(msg);
        Ok(())
    }

    /// Proposes `key=value` as request `req`. Returns 0 when proposed here
    /// (the acknowledgement comes from [`DemoNode::pump`] once the write is
    /// committed and applied), else the id of the leader to ask instead (0
    /// is never a node id; `u32::MAX` when no leader is known).
    pub fn propose(&mut self, req: f64, key: String, value: String) -> Result<u32, JsValue> {
        if self.raw.raft.state != StateRole::Leader {
            let lead = self.raw.raft.leader_id;
            return Ok(if lead == 0 { u32::MAX } else { lead as u32 });
        }
        let put = Put {
            req: req as u64,
            key,
            value,
        };
        match self.raw.propose(vec![], put.encode()) {
            Ok(()) => {
                self.pending.insert(put.req);
                Ok(0)
            }
            Err(raft::Error::ProposalDropped) => Ok(u32::MAX),
            Err(e) => Err(js_err(e)),
        }
    }

    /// Runs the `Ready` loop until raft has nothing more to hand out.
    /// Returns `{ messages: [[to, bytes], ...], acks: [[req, index], ...] }`.
    pub fn pump(&mut self) -> Result<Object, JsValue> {
        let out = self.ready_loop()?;
        let messages = Array::new();
        for (to, bytes) in &out.messages {
            let pair = Array::of2(
                &JsValue::from_f64(*to as f64),
                &Uint8Array::from(&bytes[..]),
            );
            messages.push(&pair);
        }
        let acks = Array::new();
        for (req, index) in &out.acks {
            acks.push(&Array::of2(
                &JsValue::from_f64(*req as f64),
                &JsValue::from_f64(*index as f64),
            ));
        }
        let result = Object::new();
        set(&result, "messages", messages);
        set(&result, "acks", acks);
        Ok(result)
    }

    /// The node's state for the page: role, term, vote, leader, commit,
    /// applied, first/last/durable index, what it recovered, key count and
    /// the last [`STRIP`] entries as `[index, term, label]`.
    pub fn status(&self) -> Object {
        let r = &self.raw.raft;
        let store = self.raw.store();
        let first = store.first_index().unwrap_or(0);
        let last = store.last_index().unwrap_or(0);
        let o = Object::new();
        let role = match r.state {
            StateRole::Leader => "leader",
            StateRole::Candidate => "candidate",
            StateRole::PreCandidate => "precandidate",
            StateRole::Follower => "follower",
        };
        set(&o, "id", r.id as f64);
        set(&o, "role", role);
        set(&o, "term", r.term as f64);
        set(&o, "vote", r.vote as f64);
        set(&o, "leader", r.leader_id as f64);
        set(&o, "commit", r.raft_log.committed as f64);
        set(&o, "applied", self.applied as f64);
        set(&o, "first", first as f64);
        set(&o, "last", last as f64);
        set(&o, "durable", self.durable as f64);
        set(&o, "recoveredLast", self.recovered.0 as f64);
        set(&o, "recoveredCommit", self.recovered.1 as f64);
        set(&o, "keys", self.kv.len() as f64);
        let strip = Array::new();
        for i in first.max(last.saturating_sub(STRIP - 1))..=last {
            let Ok(mut ents) = store.entries(i, i + 1, None, raft::GetEntriesContext::empty(false))
            else {
                continue;
            };
            let Some(e) = ents.pop() else { continue };
            let label = match Put::decode(e.get_data()) {
                Some(p) => format!("{}={}", p.key, p.value),
                None if e.get_entry_type() == EntryType::EntryNormal => String::from("(empty)"),
                None => String::from("(conf)"),
            };
            let row = Array::of3(
                &JsValue::from_f64(i as f64),
                &JsValue::from_f64(e.term as f64),
                &JsValue::from_str(&label),
            );
            strip.push(&row);
        }
        set(&o, "strip", strip);
        o
    }

    /// The value of `key` in this node's applied state (`undefined` if absent).
    pub fn get(&self, key: &str) -> Option<String> {
        self.kv.get(key).map(String::from)
    }

    /// This node's applied map as a plain object.
    pub fn dump(&self) -> Object {
        let o = Object::new();
        for (k, v) in self.kv.iter() {
            set(&o, k, v);
        }
        o
    }
}

/// What one run of the `Ready` loop hands back.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Messages to deliver: (destination node id, protobuf bytes).
    pub messages: Vec<(u64, Vec<u8>)>,
    /// Writes proposed here, now committed and applied: (request id, index).
    pub acks: Vec<(u64, u64)>,
}

impl DemoNode {
    /// The `Ready` loop: for each `Ready`, install the snapshot, append the
    /// entries, store the hard state and **sync**; only then are its
    /// messages released, and committed entries applied. Runs until raft
    /// has nothing more to hand out.
    pub fn ready_loop(&mut self) -> Result<Outbox, JsValue> {
        let mut outbox = Outbox::default();
        while self.raw.has_ready() {
            let mut rd = self.raw.ready();
            // Held back until after the sync: raft lets a leader send its
            // appends before persisting them, but here nothing leaves the
            // worker before its own log is durable.
            let mut out = rd.take_messages();
            // Snapshot, entries (a conflicting suffix truncated first), hard
            // state, then one sync (FileSystemSyncAccessHandle.flush).
            let store = self.raw.store();
            store.persist_ready(&rd).map_err(js_err)?;
            self.durable = store.durable_index();
            out.extend(rd.take_persisted_messages());
            self.apply(rd.take_committed_entries(), &mut outbox.acks);
            let mut light = self.raw.advance(rd);
            if let Some(commit) = light.commit_index() {
                self.raw.store().commit_to(commit).map_err(js_err)?;
            }
            out.extend(light.take_messages());
            self.apply(light.take_committed_entries(), &mut outbox.acks);
            self.raw.advance_apply();
            for m in out {
                outbox
                    .messages
                    .push((m.to, m.write_to_bytes().map_err(js_err)?));
            }
        }
        Ok(outbox)
    }

    fn apply(&mut self, entries: Vec<Entry>, acks: &mut Vec<(u64, u64)>) {
        for e in entries {
            self.applied = e.index;
            if e.get_entry_type() != EntryType::EntryNormal {
                continue; // the membership is static: no conf changes
            }
            let Some(put) = Put::decode(e.get_data()) else {
                continue; // a new leader's empty entry
            };
            self.kv.apply(&put);
            if self.pending.remove(&put.req) {
                acks.push((put.req, e.index));
            }
        }
    }

    /// Whether this node is the leader.
    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    /// The node's id.
    pub fn id(&self) -> u64 {
        self.raw.raft.id
    }

    /// Last index applied to the map.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Last index made durable by a sync.
    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// What the node recovered from OPFS: (last index, commit index).
    pub fn recovered(&self) -> (u64, u64) {
        self.recovered
    }

    /// The applied map.
    pub fn kv(&self) -> &Kv {
        &self.kv
    }
}
