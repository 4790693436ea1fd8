//! Power cuts under `blockwal::raft_rs::RaftStorage`: a small raft-rs storage
//! workload (appends, conflicting appends, hard states, conf states,
//! snapshots created and applied, compactions, syncs) runs once on a
//! recording `SimDevice`; then the power is cut at every device operation,
//! each cut played out six ways (unsynced writes all kept, all lost or some,
//! the write in flight torn at several points with old bytes, zeros or garbage). After each cut the store is
//! reopened and checked against a model of the workload:
//!
//! - it opens, and raft-rs itself accepts it (`RawNode::new` checks that the
//!   commit index lies inside the log);
//! - hard state, conf state, snapshot (metadata and data) and the compaction
//!   point are all as before or all as after the call the cut interrupted;
//! - every entry is a version the model had there, and every entry durable
//!   before the cut (synced, or covered by a saved commit index) is there;
//! - a new entry can be appended and survives a clean restart.
//!
//! Where opening writes (it finishes an interrupted compaction), the power is
//! also cut at each of those writes and the result checked the same way.
#![cfg(feature = "raft-rs")]
#![allow(clippy::field_reassign_with_default)]

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use blockwal::raft_rs::RaftStorage;
use blockwal::{CutPlan, Geometry, SimDevice, SimOptions, Survivors, TornFill, Wal, WalOptions};
use raft::prelude::*;
use raft::GetEntriesContext;

/// One call of the workload.
#[derive(Clone, Debug)]
enum Op {
    Init(Vec<u64>),
    /// Entries `from..from + n` of `term`.
    Append(u64, u64, u64),
    Sync,
    Hs(u64, u64, u64),
    CommitTo(u64),
    Cs(Vec<u64>),
    CreateSnapshot(u64, Vec<u64>),
    Compact(u64),
    ApplySnapshot(u64, u64, Vec<u64>),
}

fn workload() -> Vec<Op> {
    use Op::*;
    let mut w = vec![
        Init(vec![1, 2, 3]),
        Append(1, 6, 1),
        Hs(1, 1, 0),
        Sync,
        CommitTo(4),
        // A conflicting suffix from a new leader replaces 5 and 6.
        Append(5, 4, 2),
        Hs(2, 2, 6),
        Cs(vec![1, 2, 3, 4]),
        CreateSnapshot(5, vec![1, 2, 3, 4]),
        Compact(5),
        Append(9, 4, 2),
        Sync,
        CommitTo(11),
        CreateSnapshot(10, vec![1, 2, 3, 4]),
        Compact(11),
        ApplySnapshot(15, 3, vec![1, 2, 3, 4, 5]),
        Append(16, 3, 3),
        Sync,
        CommitTo(17),
        Append(18, 2, 4),
        Hs(4, 4, 19),
    ];
    // Steady state: appends committed as they come, snapshots and
    // compactions now and then (blocks fill, are freed and reused).
    for r in 0..12u64 {
        let from = 20 + 3 * r;
        w.push(Append(from, 3, 4));
        w.push(CommitTo(from + 1));
        if r % 4 == 3 {
            w.push(CreateSnapshot(from + 1, vec![1, 2, 3, 4, 5]));
            w.push(Compact(from));
        }
    }
    // A snapshot whose index is inside the log (on another branch): the
    // entries after it go too.
    w.push(Append(56, 4, 4));
    w.push(ApplySnapshot(57, 5, vec![1, 2, 3]));
    w.push(Append(58, 2, 5));
    w.push(Sync);
    w
}

fn data(index: u64, term: u64) -> Vec<u8> {
    format!("entry {index} of term {term} ")
        .repeat(3)
        .into_bytes()
}

fn snap_data(index: u64) -> Vec<u8> {
    format!("state machine at {index}").into_bytes()
}

fn voters(v: &[u64]) -> ConfState {
    let mut cs = ConfState::default();
    cs.voters = v.to_vec();
    cs
}

/// What the store must show (durable state) and may show (entries).
#[derive(Clone, Debug, Default, PartialEq)]
struct Model {
    entries: BTreeMap<u64, (u64, Vec<u8>)>,
    base: (u64, u64),
    hs: HardState,
    cs: ConfState,
    /// Index, term, conf state, data.
    snap: Option<(u64, u64, ConfState, Vec<u8>)>,
    /// Entries up to here are durable.
    durable: u64,
    /// The commit index in the saved state (raft's commit index is volatile:
    /// `hs.commit` is saved with the next state write, capped at the log).
    saved_commit: u64,
}

impl Model {
    fn last(&self) -> u64 {
        self.entries
            .keys()
            .next_back()
            .copied()
            .unwrap_or(self.base.0)
    }

    fn term(&self, i: u64) -> u64 {
        if i == self.base.0 {
            self.base.1
        } else {
            self.entries[&i].0
        }
    }

    /// The model after `op`.
    fn after(&self, op: &Op) -> Model {
        let mut m = self.clone();
        let saves = match op {
            Op::Hs(t, v, _) => (*t, *v) != (m.hs.term, m.hs.vote),
            Op::Append(..) | Op::CommitTo(_) => false,
            _ => true,
        };
        match op {
            Op::Init(v) => m.cs = voters(v),
            Op::Append(from, n, term) => {
                if *from <= m.last() {
                    m.entries.split_off(from);
                    m.durable = m.durable.min(from - 1);
                }
                for i in *from..from + n {
                    m.entries.insert(i, (*term, data(i, *term)));
                }
            }
            Op::Sync => m.durable = m.last(),
            Op::Hs(t, v, c) => {
                m.hs.term = *t;
                m.hs.vote = *v;
                m.hs.commit = *c;
            }
            Op::CommitTo(c) => m.hs.commit = *c,
            Op::Cs(v) => m.cs = voters(v),
            Op::CreateSnapshot(i, v) => {
                m.snap = Some((*i, m.term(*i), voters(v), snap_data(*i)));
            }
            Op::Compact(c) => {
                m.base = (c - 1, m.term(c - 1));
                m.entries = m.entries.split_off(c);
            }
            Op::ApplySnapshot(i, t, v) => {
                m.snap = Some((*i, *t, voters(v), snap_data(*i)));
                m.entries.clear();
                m.base = (*i, *t);
                m.hs.term = m.hs.term.max(*t);
                m.hs.commit = *i;
                m.cs = voters(v);
                m.durable = *i;
            }
        }
        if saves {
            m.saved_commit = m.hs.commit.min(m.durable.max(m.base.0));
        }
        m
    }
}

fn run(s: &RaftStorage<SimDevice>, op: &Op) -> raft::Result<()> {
    match op {
        Op::Init(v) => s.initialize_with_conf_state(voters(v)),
        Op::Append(from, n, term) => {
            let ents: Vec<Entry> = (*from..from + n)
                .map(|i| {
                    let mut e = Entry::default();
                    e.index = i;
                    e.term = *term;
                    e.data = data(i, *term).into();
                    e
                })
                .collect();
            s.append(&ents)
        }
        Op::Sync => s.sync(),
        Op::Hs(t, v, c) => {
            let mut h = HardState::default();
            h.term = *t;
            h.vote = *v;
            h.commit = *c;
            s.set_hard_state(&h)
        }
        Op::CommitTo(c) => s.commit_to(*c),
        Op::Cs(v) => s.set_conf_state(&voters(v)),
        Op::CreateSnapshot(i, v) => s.create_snapshot(*i, &voters(v), &snap_data(*i)),
        Op::Compact(c) => s.compact(*c),
        Op::ApplySnapshot(i, t, v) => {
            let mut sn = Snapshot::default();
            sn.mut_metadata().index = *i;
            sn.mut_metadata().term = *t;
            sn.mut_metadata().set_conf_state(voters(v));
            sn.data = snap_data(*i).into();
            s.apply_snapshot(&sn)
        }
    }
}

#[derive(Clone, Copy)]
struct Setup {
    name: &'static str,
    geometry: Geometry,
    max_blocks: u32,
}

impl Setup {
    fn config(&self, blocks: u32) -> SimOptions {
        SimOptions::new(Geometry {
            block_count: blocks,
            ..self.geometry
        })
        .max_blocks(self.max_blocks)
    }
}

fn opts() -> WalOptions {
    WalOptions::default()
        .cache_bytes(256)
        .cache_entries(2)
        .write_buffer(96)
        .read_window(128)
        .max_grow_blocks(2)
}

/// A call with its span of device operations and the models around it.
struct Call {
    start: u64,
    end: u64,
    before: Model,
    after: Model,
}

fn record(setup: &Setup) -> (SimDevice, Vec<Call>, Model) {
    let dev = SimDevice::new(setup.config(setup.geometry.block_count));
    let mon = dev.monitor();
    let s = RaftStorage::open(Wal::open_with(dev, opts()).unwrap()).unwrap();
    let mut m = Model::default();
    let mut calls = Vec::new();
    for op in workload() {
        let start = mon.ops();
        run(&s, &op).unwrap_or_else(|e| panic!("{}: {op:?}: {e}", setup.name));
        let after = m.after(&op);
        calls.push(Call {
            start,
            end: mon.ops(),
            before: m,
            after: after.clone(),
        });
        m = after;
    }
    let dev = s.into_wal().unwrap().into_device();
    (dev, calls, m)
}

/// The models a cut while operation `k` was in flight allows.
fn candidates(calls: &[Call], fin: &Model, k: u64) -> Vec<Model> {
    for c in calls {
        if c.end > k {
            return if c.start <= k {
                vec![c.before.clone(), c.after.clone()]
            } else {
                vec![c.before.clone()]
            };
        }
    }
    vec![fin.clone()]
}

fn ctx() -> GetEntriesContext {
    GetEntriesContext::empty(false)
}

/// Checks a reopened store against the allowed models.
fn check(s: &RaftStorage<SimDevice>, allowed: &[Model]) -> Result<(), String> {
    let first = s.first_index().map_err(|e| e.to_string())?;
    let last = s.last_index().map_err(|e| e.to_string())?;
    let hs = s.hard_state().map_err(|e| e.to_string())?;
    let cs = s.conf_state().map_err(|e| e.to_string())?;
    let snap = s.latest_snapshot().map_err(|e| e.to_string())?.map(|sn| {
        let m = sn.get_metadata();
        (
            m.index,
            m.term,
            m.get_conf_state().clone(),
            sn.data.to_vec(),
        )
    });
    let base = (first - 1, s.term(first - 1).map_err(|e| e.to_string())?);
    // Durable state: all of one model (old or new), never a mix.
    let Some(m) = allowed.iter().find(|m| {
        (m.hs.term, m.hs.vote, m.saved_commit) == (hs.term, hs.vote, hs.commit)
            && m.cs == cs
            && m.snap == snap
            && m.base == base
    }) else {
        return Err(format!(
            "state hs {hs:?} cs {:?} snap {:?} base {base:?} matches no model",
            cs.voters,
            snap.map(|s| (s.0, s.1))
        ));
    };
    let ents = if last >= first {
        s.entries(first, last + 1, None, ctx())
            .map_err(|e| e.to_string())?
    } else {
        Vec::new()
    };
    for e in &ents {
        let ok = allowed
            .iter()
            .any(|m| m.entries.get(&e.index) == Some(&(e.term, e.data.to_vec())));
        if !ok {
            return Err(format!(
                "entry {} (term {}) was never there",
                e.index, e.term
            ));
        }
    }
    let durable = allowed.iter().map(|m| m.durable).min().unwrap_or(0);
    let must = durable.max(hs.commit);
    if must > last {
        return Err(format!(
            "entries up to {must} were durable (commit {}), the log ends at {last}",
            hs.commit
        ));
    }
    for i in first..=must {
        let got = &ents[(i - first) as usize];
        if m.entries.get(&i) != Some(&(got.term, got.data.to_vec())) {
            return Err(format!("durable entry {i} has other contents"));
        }
    }
    // raft-rs accepts the store (it panics on a commit index outside the log).
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let config = Config {
        id: 1,
        ..Default::default()
    };
    let store = s.clone();
    catch_unwind(AssertUnwindSafe(|| {
        RawNode::new(&config, store, &logger).map(|_| ())
    }))
    .map_err(|_| "raft-rs panicked on the recovered store".to_string())?
    .map_err(|e| format!("raft-rs refused the recovered store: {e}"))?;
    Ok(())
}

/// After the checks: the store takes a new entry, which survives a clean
/// restart.
fn check_writable(s: RaftStorage<SimDevice>) -> Result<(), String> {
    let last = s.last_index().map_err(|e| e.to_string())?;
    let term = s.hard_state().map_err(|e| e.to_string())?.term.max(9);
    let mut e = Entry::default();
    e.index = last + 1;
    e.term = term;
    e.data = b"after the cut".to_vec().into();
    s.append(std::slice::from_ref(&e))
        .map_err(|e| e.to_string())?;
    s.sync().map_err(|e| e.to_string())?;
    let dev = s
        .into_wal()
        .map_err(|_| "handle")?
        .into_device()
        .restarted();
    let wal = Wal::open_with(dev, opts()).map_err(|e| e.to_string())?;
    let s = RaftStorage::open(wal).map_err(|e| e.to_string())?;
    match s.entries(last + 1, last + 2, None, ctx()) {
        Ok(v) if v == [e] => Ok(()),
        r => Err(format!("entry appended after recovery: {r:?}")),
    }
}

fn plans(dev: &SimDevice, k: u64) -> Vec<CutPlan> {
    let tear = dev.tear_len(k as usize);
    vec![
        CutPlan::KEEP_ALL,
        CutPlan::LOSE_UNSYNCED,
        CutPlan {
            survivors: Survivors::Random,
            torn_at: tear / 2,
            fill: TornFill::Garbage,
            seed: k,
            ..CutPlan::KEEP_ALL
        },
        CutPlan {
            survivors: Survivors::Mask(0x5555_5555_5555_5555),
            torn_at: tear.saturating_sub(1),
            fill: TornFill::Old,
            seed: k,
            ..CutPlan::KEEP_ALL
        },
        CutPlan {
            survivors: Survivors::Mask(0xaaaa_aaaa_aaaa_aaaa),
            torn_at: tear / 4,
            fill: TornFill::Zeros,
            seed: k,
            ..CutPlan::KEEP_ALL
        },
        CutPlan {
            survivors: Survivors::Random,
            torn_at: tear * 3 / 4,
            fill: TornFill::GarbageOne,
            seed: k ^ 0x5eed,
            ..CutPlan::KEEP_ALL
        },
        // As hard as the contracts: unsynced data survives in any subset of
        // 128-byte pieces (files), any subset of the units in flight (NOR).
        CutPlan {
            survivors: Survivors::Random,
            page: 128,
            torn_at: tear / 2,
            scatter: Survivors::Random,
            fill: TornFill::Mixed,
            seed: k ^ 0xc0ffee,
        },
    ]
}

/// Figures of one setup's exploration.
#[derive(Default)]
struct Figures {
    cuts: u64,
    points: u64,
    recovery_points: u64,
    violations: Vec<String>,
}

fn explore(setup: &Setup) -> Figures {
    let (dev, calls, fin) = record(setup);
    let mut f = Figures::default();
    let ops = dev.trace().len() as u64;
    let bs = setup.geometry.block_size as usize;
    for k in 0..=ops {
        f.cuts += 1;
        let allowed = candidates(&calls, &fin, k);
        for plan in plans(&dev, k) {
            f.points += 1;
            let img = dev.crash_image(k as usize, &plan);
            let blocks = (img.len() / bs) as u32;
            let rec = SimDevice::from_image(setup.config(blocks), img.clone());
            let mon = rec.monitor();
            let at = format!("{} cut at op {k}/{ops} {plan:?}", setup.name);
            let opened = Wal::open_with(rec, opts())
                .map_err(|e| e.to_string())
                .and_then(|w| RaftStorage::open(w).map_err(|e| e.to_string()));
            let s = match opened {
                Ok(s) => s,
                Err(e) => {
                    f.violations.push(format!("{at}: open: {e}"));
                    continue;
                }
            };
            if let Err(e) = check(&s, &allowed) {
                f.violations.push(format!("{at}: {e}"));
                continue;
            }
            // Opening wrote (finished a compaction): cut there too.
            let open_ops = mon.ops();
            if open_ops > 0 {
                let Ok(wal) = s.into_wal() else {
                    panic!("{at}: a store handle outlived the checks");
                };
                let rdev = wal.into_device();
                for r in 0..open_ops {
                    f.recovery_points += 1;
                    let img2 = rdev.crash_image(r as usize, &CutPlan::LOSE_UNSYNCED);
                    let blocks = (img2.len() / bs) as u32;
                    let d2 = SimDevice::from_image(setup.config(blocks), img2);
                    let r2 = Wal::open_with(d2, opts())
                        .map_err(|e| e.to_string())
                        .and_then(|w| RaftStorage::open(w).map_err(|e| e.to_string()))
                        .and_then(|s2| check(&s2, &allowed).map(|_| s2));
                    if let Err(e) = r2 {
                        f.violations
                            .push(format!("{at}, then cut at recovery op {r}: {e}"));
                    }
                }
                let s =
                    RaftStorage::open(Wal::open_with(rdev.restarted(), opts()).unwrap()).unwrap();
                if let Err(e) = check_writable(s) {
                    f.violations.push(format!("{at}: {e}"));
                }
            } else if let Err(e) = check_writable(s) {
                f.violations.push(format!("{at}: {e}"));
            }
        }
    }
    f
}

fn report(setup: &Setup) {
    let f = explore(setup);
    println!(
        "raft_rs crash sim [{}]: {} cut points x plans = {} images, {} cuts inside recovery, {} violations",
        setup.name,
        f.cuts,
        f.points,
        f.recovery_points,
        f.violations.len()
    );
    assert!(
        f.cuts > 100,
        "{}: the workload should issue many device operations",
        setup.name
    );
    assert!(
        f.violations.is_empty(),
        "{} violations, first ones:\n{}",
        f.violations.len(),
        f.violations[..f.violations.len().min(10)].join("\n")
    );
}

#[test]
fn power_cut_at_every_operation_file_like() {
    report(&Setup {
        name: "file-like, 512-byte blocks",
        geometry: Geometry {
            block_size: 512,
            program_size: 1,
            block_count: 4,
            erase_value: None,
        },
        max_blocks: 256,
    });
}

#[test]
fn power_cut_at_every_operation_nor_flash() {
    report(&Setup {
        name: "NOR flash, 1 KiB blocks, 4-byte program unit",
        geometry: Geometry {
            block_size: 1024,
            program_size: 4,
            block_count: 32,
            erase_value: Some(0xFF),
        },
        max_blocks: 32,
    });
}
