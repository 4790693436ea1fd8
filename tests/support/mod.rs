//! Model-based crash checking, shared by `tests/crash.rs`, `tests/props.rs`
//! and the fuzz targets' proptest twins.
//!
//! A workload (a list of [`Op`]) runs once against a `Wal` on a recording
//! [`SimDevice`]; every call's span of device operations and its effect are
//! kept. A power cut at device operation `k` is then replayed from the trace
//! ([`SimDevice::crash_image`]) with every way the cut can play out (lost
//! unsynced writes, torn writes, undefined flash units), the log is reopened
//! on the image and checked against what the model allows at `k`:
//!
//! - every entry acknowledged by a completed `sync()` and not removed by a
//!   completed truncate/compact is there with its bytes;
//! - every entry there is a version appended (by a call started before the
//!   cut) and not removed by a completed truncate or compact: nothing never
//!   appended, no truncated entry comes back;
//! - the log is contiguous, `next_index` follows it and is at least the
//!   floor of every completed compact;
//! - every meta key holds its old or its new value;
//! - the reopened log accepts an append + sync, and a clean reopen keeps it;
//! - optionally a second workload on the recovered image is crashed at each
//!   of its operations and checked the same way.
#![allow(dead_code)]

pub mod fuzz;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::hash::{Hash, Hasher};

use blockwal::{
    BlockDevice, CutPlan, Error, Geometry, SimDevice, SimError, SimOptions, Survivors, TornFill,
    Wal, WalOptions,
};

/// The log under test.
pub type W = Wal<SimDevice>;

/// One workload step. Parameters are relative to the log's state so any
/// sequence is valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Append one entry of this many bytes at the next index.
    Append(usize),
    /// Append a batch of entries of these lengths.
    Batch(Vec<usize>),
    /// `sync()`.
    Sync,
    /// `flush()`.
    Flush,
    /// `truncate(first + x % len)` (skipped on an empty log).
    Truncate(u16),
    /// `compact(first - 1 + x % (len + 3))`: below, inside or past the end.
    Compact(u16),
    /// `set_meta("k{n % 4}", value of this many bytes)`.
    SetMeta(u8, usize),
    /// `remove_meta("k{n % 4}")`.
    RemoveMeta(u8),
    /// `set_meta_deferred("k{n % 4}", value of this many bytes)`: durable
    /// with the next sync.
    SetMetaDeferred(u8, usize),
    /// Drop the `Wal` (nothing flushed) and open the device again.
    Reopen,
}

/// A device shape and log options to run workloads on.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    /// For messages.
    pub name: &'static str,
    /// Geometry (erase value chooses the power-loss model).
    pub geometry: Geometry,
    /// Growth limit.
    pub max_blocks: u32,
    /// Log options (small buffers make flushes happen mid-workload).
    pub opts: WalOptions,
}

impl Setup {
    /// A file-like setup: program unit 1, no erase, growable.
    pub fn file(name: &'static str, block_size: u32, write_buffer: usize) -> Setup {
        Setup {
            name,
            geometry: Geometry {
                block_size,
                program_size: 1,
                block_count: 5,
                erase_value: None,
            },
            max_blocks: 4096,
            opts: small_opts(write_buffer),
        }
    }

    /// A NOR flash setup: erase value 0xFF, fixed size.
    pub fn nor(
        name: &'static str,
        block_size: u32,
        program_size: u32,
        blocks: u32,
        write_buffer: usize,
    ) -> Setup {
        Setup {
            name,
            geometry: Geometry {
                block_size,
                program_size,
                block_count: blocks,
                erase_value: Some(0xFF),
            },
            max_blocks: blocks,
            opts: small_opts(write_buffer),
        }
    }

    /// A fresh recording device.
    pub fn device(&self) -> SimDevice {
        SimDevice::new(SimOptions::new(self.geometry).max_blocks(self.max_blocks))
    }

    /// A recording device over an image (for example a crash image).
    pub fn device_from(&self, img: Vec<u8>) -> SimDevice {
        let mut c = SimOptions::new(self.geometry).max_blocks(self.max_blocks);
        c.geometry.block_count = (img.len() / self.geometry.block_size as usize) as u32;
        SimDevice::from_image(c, img)
    }
}

/// Options with small caches so reads go to the device.
pub fn small_opts(write_buffer: usize) -> WalOptions {
    WalOptions::default()
        .cache_bytes(256)
        .cache_entries(4)
        .write_buffer(write_buffer)
        .read_window(128)
        .max_grow_blocks(4)
}

/// The payload of the `gen`-th append (unique per append: a truncated entry
/// re-appended at the same index has different bytes).
pub fn payload(gen: u64, index: u64, len: usize) -> Vec<u8> {
    let mut x = gen.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ index.rotate_left(17) ^ len as u64;
    let mut v: Vec<u8> = gen.to_le_bytes().iter().copied().take(len).collect();
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x as u8);
    }
    v
}

/// What a log showed: entries, next index, metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct View {
    /// Entries by index.
    pub entries: BTreeMap<u64, Vec<u8>>,
    /// `next_index()`.
    pub next: Option<u64>,
    /// Metadata.
    pub meta: BTreeMap<String, Vec<u8>>,
}

/// What a call did (as observed in the clean recording run).
#[derive(Clone, Debug)]
pub enum Effect {
    /// Entries appended (index, bytes).
    Append(Vec<(u64, Vec<u8>)>),
    /// `sync()`.
    Sync,
    /// Nothing durable (`flush()`).
    Flush,
    /// Nothing at all (a call refused with a typed error, state unchanged).
    Nothing,
    /// `truncate(t)`.
    Truncate(u64),
    /// `compact(up_to)`.
    Compact(u64),
    /// A key set (`Some`) or removed (`None`).
    Meta(String, Option<Vec<u8>>),
    /// A key set without a sync (`set_meta_deferred`).
    MetaDeferred(String, Vec<u8>),
    /// A clean open (or reopen) showed this.
    Open(View),
}

/// One call of the workload with its span of device operations.
#[derive(Clone, Debug)]
pub struct Call {
    /// Operation number when the call started.
    pub start: u64,
    /// Operation number when it returned; `None`: it failed (the run stopped
    /// there and its effect stays possible but not required).
    pub end: Option<u64>,
    /// What it did.
    pub effect: Effect,
}

/// The model: what the log must and may hold after a cut.
#[derive(Clone, Debug, Default)]
pub struct State {
    /// Entries the API shows.
    pub cur: BTreeMap<u64, Vec<u8>>,
    /// Entries that must survive (acknowledged by `sync`).
    pub required: BTreeMap<u64, Vec<u8>>,
    /// Versions that may appear per index.
    pub allowed: BTreeMap<u64, Vec<Vec<u8>>>,
    /// No entry below this may appear; `next_index` must reach it.
    pub floor: u64,
    /// Values each key may hold (`None`: absent).
    pub meta: BTreeMap<String, Vec<Option<Vec<u8>>>>,
    /// Keys set deferred since the last sync: their newest value is the
    /// last of `meta[k]`, the older ones stay allowed until a sync.
    pub pending: BTreeSet<String>,
}

impl State {
    /// The state of a log known to hold exactly `v`, all durable.
    pub fn from_view(v: &View, floor: u64) -> State {
        State {
            cur: v.entries.clone(),
            required: v.entries.clone(),
            allowed: v
                .entries
                .iter()
                .map(|(i, d)| (*i, vec![d.clone()]))
                .collect(),
            floor,
            meta: v
                .meta
                .iter()
                .map(|(k, d)| (k.clone(), vec![Some(d.clone())]))
                .collect(),
            pending: BTreeSet::new(),
        }
    }

    /// Applies a call that returned.
    pub fn complete(&mut self, e: &Effect) {
        match e {
            Effect::Append(es) => {
                for (i, d) in es {
                    self.cur.insert(*i, d.clone());
                    self.allowed.entry(*i).or_default().push(d.clone());
                }
            }
            Effect::Sync => {
                self.required = self.cur.clone();
                self.settle_meta();
            }
            Effect::Flush | Effect::Nothing => {}
            Effect::Truncate(t) => {
                self.cur.split_off(t);
                self.required.split_off(t);
                self.allowed.split_off(t);
            }
            Effect::Compact(n) => {
                let keep = n.saturating_add(1);
                self.cur = self.cur.split_off(&keep);
                self.required = self.required.split_off(&keep);
                self.allowed = self.allowed.split_off(&keep);
                self.floor = self.floor.max(keep);
            }
            Effect::Meta(k, v) => {
                // Its sync made every deferred change durable too.
                self.settle_meta();
                self.meta.insert(k.clone(), vec![v.clone()]);
            }
            Effect::MetaDeferred(k, v) => {
                self.meta
                    .entry(k.clone())
                    .or_insert_with(|| vec![None])
                    .push(Some(v.clone()));
                self.pending.insert(k.clone());
            }
            Effect::Open(v) => {
                // A clean reopen shows the log as it is on the device; entries
                // it does not show were never programmed and cannot return.
                let next = v.next.unwrap_or(0);
                self.allowed.split_off(&next);
                self.cur = v.entries.clone();
            }
        }
    }

    /// A sync returned: each deferred key now holds its newest value.
    fn settle_meta(&mut self) {
        for k in core::mem::take(&mut self.pending) {
            if let Some(vs) = self.meta.get_mut(&k) {
                let newest = vs.pop().flatten();
                *vs = vec![newest];
            }
        }
    }

    /// Applies a call in flight at the cut: its effect may or may not be there.
    pub fn in_flight(&mut self, e: &Effect) {
        match e {
            Effect::Append(es) => {
                for (i, d) in es {
                    self.allowed.entry(*i).or_default().push(d.clone());
                }
            }
            Effect::Truncate(t) => {
                self.required.split_off(t);
            }
            Effect::Compact(n) => {
                self.required = self.required.split_off(&n.saturating_add(1));
            }
            Effect::Meta(k, v) => {
                self.meta
                    .entry(k.clone())
                    .or_insert_with(|| vec![None])
                    .push(v.clone());
            }
            Effect::MetaDeferred(k, v) => {
                self.meta
                    .entry(k.clone())
                    .or_insert_with(|| vec![None])
                    .push(Some(v.clone()));
            }
            Effect::Sync | Effect::Flush | Effect::Nothing | Effect::Open(_) => {}
        }
    }
}

/// A workload run once on a recording device.
pub struct Recording {
    /// The device after the run, with its trace.
    pub dev: SimDevice,
    /// The model before the first call.
    pub init: State,
    /// The calls.
    pub calls: Vec<Call>,
    /// The append counter after the run.
    pub gen: u64,
}

impl Recording {
    /// The model after a cut while operation `k` was in flight.
    pub fn state_at(&self, k: u64) -> State {
        let mut s = self.init.clone();
        for c in &self.calls {
            match c.end {
                Some(end) if end <= k => s.complete(&c.effect),
                _ if c.start <= k => {
                    s.in_flight(&c.effect);
                    break;
                }
                _ => break,
            }
        }
        s
    }
}

fn key(n: u8) -> String {
    format!("k{}", n % 4)
}

/// Reads everything a log shows, checking it is contiguous and readable.
pub fn view(w: &W) -> Result<View, String> {
    let mut v = View {
        next: w.next_index(),
        meta: w
            .meta_keys()
            .map(|k| (k.to_string(), w.get_meta(k).unwrap_or_default().to_vec()))
            .collect(),
        ..View::default()
    };
    if let (Some(f), Some(l)) = (w.first_index(), w.last_index()) {
        if l < f || l - f > 1_000_000 {
            return Err(format!("first {f} last {l}"));
        }
        for i in f..=l {
            // An injected read fault (fault tests) is retried once.
            let r = match w.try_get(i) {
                Err(Error::Device(SimError::Injected(_))) => w.try_get(i),
                r => r,
            };
            match r {
                Ok(Some(d)) => {
                    v.entries.insert(i, d.into_owned());
                }
                Ok(None) => return Err(format!("entry {i} missing inside {f}..={l}")),
                Err(e) => return Err(format!("reading entry {i} of {f}..={l}: {e}")),
            }
        }
        if w.next_index() != Some(l + 1) {
            return Err(format!("next_index {:?} after last {l}", w.next_index()));
        }
        let mut n = w.iter().count();
        if let Some(Error::Device(SimError::Injected(_))) = w.take_read_error() {
            n = w.iter().count();
        }
        if n != v.entries.len() || w.len() != n {
            return Err(format!("iter yields {n}, len {} for {f}..={l}", w.len()));
        }
        if let Some(e) = w.take_read_error() {
            return Err(format!("iter read error: {e}"));
        }
    } else if w.first_index().is_some() || w.last_index().is_some() || !w.is_empty() {
        return Err("half-empty log".into());
    }
    Ok(v)
}

/// Checks a view against what the model allows.
pub fn check_view(v: &View, s: &State) -> Result<(), String> {
    for (i, d) in &v.entries {
        let ok = s.allowed.get(i).is_some_and(|vs| vs.contains(d));
        if !ok {
            let what = if s.allowed.get(i).is_some_and(|vs| !vs.is_empty()) {
                "wrong bytes"
            } else {
                "never appended (or truncated/compacted)"
            };
            return Err(format!("entry {i} ({} bytes): {what}", d.len()));
        }
        if *i < s.floor {
            return Err(format!("entry {i} below the compacted floor {}", s.floor));
        }
    }
    for (i, d) in &s.required {
        match v.entries.get(i) {
            None => {
                return Err(format!(
                    "synced entry {i} lost (log holds {:?}..{:?})",
                    v.entries.keys().next(),
                    v.entries.keys().next_back()
                ))
            }
            Some(g) if g != d => return Err(format!("synced entry {i} has wrong bytes")),
            _ => {}
        }
    }
    if s.floor > 0 && v.next.is_none_or(|n| n < s.floor) {
        return Err(format!(
            "next_index {:?} below the compacted floor {}",
            v.next, s.floor
        ));
    }
    let keys: HashSet<&String> = s.meta.keys().chain(v.meta.keys()).collect();
    for k in keys {
        let got = v.meta.get(k).cloned();
        let ok = match s.meta.get(k) {
            Some(vals) => vals.contains(&got),
            None => got.is_none(),
        };
        if !ok {
            return Err(format!(
                "meta {k} = {:?}, allowed {:?}",
                got.map(|g| g.len()),
                s.meta.get(k).map(|v| v
                    .iter()
                    .map(|x| x.as_ref().map(|y| y.len()))
                    .collect::<Vec<_>>())
            ));
        }
    }
    Ok(())
}

fn fmt_err(e: &Error<SimError>) -> String {
    format!("{e:?}")
}

/// Runs `ops` on a log over `dev` (opening it first), recording each call.
/// An error other than `Full` is a failure of the core; `Full` stops the run.
pub fn record(
    setup: &Setup,
    dev: SimDevice,
    init: State,
    ops: &[Op],
    mut gen: u64,
) -> Result<Recording, String> {
    let mut calls = Vec::new();
    let mut mon = dev.monitor();
    let start = dev.ops();
    let mut spare = dev.clone();
    let mut w = match Wal::open_with(dev, setup.opts) {
        Ok(w) => w,
        // An injected read fault (fault tests): typed, harmless, retried.
        Err(Error::Device(SimError::Injected(_))) => {
            spare.clear_faults();
            mon = spare.monitor();
            Wal::open_with(spare, setup.opts)
                .map_err(|e| format!("open after a read fault: {e}"))?
        }
        Err(e) => return Err(format!("open: {}", fmt_err(&e))),
    };
    let v0 = view(&w).map_err(|e| format!("after open: {e}"))?;
    check_view(&v0, &init).map_err(|e| format!("after open: {e}"))?;
    calls.push(Call {
        start,
        end: Some(mon.ops()),
        effect: Effect::Open(v0),
    });
    let mut model = init.clone();
    model.complete(&calls[0].effect);
    for (n, op) in ops.iter().enumerate() {
        let start = mon.ops();
        let next = w.next_index().unwrap_or(1);
        let (r, effect): (Result<(), Error<SimError>>, Effect) = match op {
            Op::Append(len) => {
                gen += 1;
                let d = payload(gen, next, *len);
                (w.append(next, &d), Effect::Append(vec![(next, d)]))
            }
            Op::Batch(lens) => {
                let es: Vec<(u64, Vec<u8>)> = lens
                    .iter()
                    .enumerate()
                    .map(|(k, len)| {
                        gen += 1;
                        let i = next + k as u64;
                        (i, payload(gen, i, *len))
                    })
                    .collect();
                (w.append_batch(&es), Effect::Append(es))
            }
            Op::Sync => (w.sync(), Effect::Sync),
            Op::Flush => (w.flush(), Effect::Flush),
            Op::Truncate(x) => {
                let (Some(f), len) = (w.first_index(), w.len() as u64) else {
                    continue;
                };
                let t = f + u64::from(*x) % len;
                (w.truncate(t), Effect::Truncate(t))
            }
            Op::Compact(x) => {
                let base = w.first_index().or(w.next_index()).unwrap_or(1);
                let n = (base + u64::from(*x) % (w.len() as u64 + 3)).saturating_sub(1);
                (w.compact(n), Effect::Compact(n))
            }
            Op::SetMeta(k, len) => {
                gen += 1;
                let d = payload(gen, 0, *len);
                (w.set_meta(&key(*k), &d), Effect::Meta(key(*k), Some(d)))
            }
            Op::RemoveMeta(k) => (w.remove_meta(&key(*k)), Effect::Meta(key(*k), None)),
            Op::SetMetaDeferred(k, len) => {
                gen += 1;
                let d = payload(gen, 0, *len);
                (
                    w.set_meta_deferred(&key(*k), &d),
                    Effect::MetaDeferred(key(*k), d),
                )
            }
            Op::Reopen => {
                let dev = w.into_device();
                let mut spare = dev.clone();
                w = match Wal::open_with(dev, setup.opts) {
                    // An injected read fault (fault tests) is a typed error
                    // and changes nothing: opening again works.
                    Err(Error::Device(SimError::Injected(_))) => {
                        spare.clear_faults();
                        mon = spare.monitor();
                        Wal::open_with(spare, setup.opts)
                            .map_err(|e| format!("op {n} reopen after a read fault: {e}"))?
                    }
                    r => r.map_err(|e| format!("op {n} reopen: {}", fmt_err(&e)))?,
                };
                let v = view(&w).map_err(|e| format!("op {n} after reopen: {e}"))?;
                check_view(&v, &model).map_err(|e| format!("op {n} after reopen: {e}"))?;
                (Ok(()), Effect::Open(v))
            }
        };
        if mon.violations() > 0 {
            let dev = w.into_device();
            let v = dev.violations().first().cloned();
            return Err(format!("op {n} {op:?}: device contract broken: {v:?}"));
        }
        match r {
            Ok(()) => {
                model.complete(&effect);
                calls.push(Call {
                    start,
                    end: Some(mon.ops()),
                    effect,
                });
            }
            Err(Error::MetaTooLarge { .. })
                if matches!(op, Op::SetMeta(..) | Op::SetMetaDeferred(..)) =>
            {
                calls.push(Call {
                    start,
                    end: Some(mon.ops()),
                    effect: Effect::Nothing,
                });
            }
            // Refused before anything is written (a batch as a whole).
            Err(Error::EntryTooLarge { .. }) if matches!(op, Op::Append(_) | Op::Batch(_)) => {
                calls.push(Call {
                    start,
                    end: Some(mon.ops()),
                    effect: Effect::Nothing,
                });
            }
            Err(Error::Full) => {
                calls.push(Call {
                    start,
                    end: None,
                    effect,
                });
                break;
            }
            Err(Error::Device(SimError::Injected(kind))) => {
                // A failed write leaves durability unknown: the call may or
                // may not have taken effect, and the log must refuse writes.
                calls.push(Call {
                    start,
                    end: None,
                    effect,
                });
                let next = w.next_index().unwrap_or(1);
                let after = [
                    ("append", w.append(next, b"x")),
                    ("sync", w.sync()),
                    ("truncate", w.truncate(0)),
                    ("compact", w.compact(next)),
                    ("set_meta", w.set_meta("k0", b"x")),
                ];
                for (what, r) in after {
                    if !matches!(r, Err(Error::Poisoned)) {
                        return Err(format!(
                            "op {n} {op:?}: after an injected {kind:?} fault, {what} gave {r:?}, not Poisoned"
                        ));
                    }
                }
                break;
            }
            Err(e) => return Err(format!("op {n} {op:?}: {}", fmt_err(&e))),
        }
        // The API view follows the model.
        if w.next_index().is_some() && w.last_index() != model.cur.keys().next_back().copied() {
            return Err(format!(
                "op {n} {op:?}: last_index {:?}, model {:?}",
                w.last_index(),
                model.cur.keys().next_back()
            ));
        }
    }
    let stopped = calls.last().is_some_and(|c: &Call| c.end.is_none());
    // A log poisoned by a failed sync refuses reads (it took back what the
    // sync should have made durable).
    let v = match view(&w) {
        Err(e) if stopped && e.contains("poisoned") => View::default(),
        r => r.map_err(|e| format!("at the end: {e}"))?,
    };
    if !stopped && v.entries != model.cur {
        return Err(format!(
            "at the end: the log holds {:?}..{:?}, the model {:?}..{:?}",
            v.entries.keys().next(),
            v.entries.keys().next_back(),
            model.cur.keys().next(),
            model.cur.keys().next_back()
        ));
    }
    Ok(Recording {
        dev: w.into_device(),
        init,
        calls,
        gen,
    })
}

/// Counters of an exploration.
#[derive(Debug, Default)]
pub struct Tally {
    /// Crash images reopened and checked.
    pub points: u64,
    /// Of which after a second crash (during or after recovery writes).
    pub second: u64,
    /// What went wrong (at most a few kept).
    pub violations: Vec<String>,
    /// Violations seen in all (kept or not).
    pub violation_count: u64,
}

impl Tally {
    /// Records a violation.
    pub fn violation(&mut self, what: String) {
        self.violation_count += 1;
        if self.violations.len() < 8 {
            self.violations.push(what);
        }
    }

    /// Adds another tally.
    pub fn add(&mut self, o: Tally) {
        self.points += o.points;
        self.second += o.second;
        self.violation_count += o.violation_count;
        for v in o.violations {
            if self.violations.len() < 8 {
                self.violations.push(v);
            }
        }
    }
}

/// A small deterministic generator for workloads and plans.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// Next 64 random bits (splitmix64).
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A random workload of `n` steps for blocks of `block_size` bytes.
pub fn gen_ops(seed: u64, n: usize, block_size: u32) -> Vec<Op> {
    let mut r = Rng(seed);
    let bs = u64::from(block_size);
    let len = |r: &mut Rng| -> usize {
        match r.below(20) {
            0 => (bs + r.below(2 * bs)) as usize,
            1 => r.below(8) as usize,
            _ => (8 + r.below(bs / 3)) as usize,
        }
    };
    (0..n)
        .map(|_| match r.below(100) {
            0..=29 => Op::Append(len(&mut r)),
            30..=39 => {
                let k = 1 + r.below(5) as usize;
                Op::Batch((0..k).map(|_| len(&mut r)).collect())
            }
            40..=59 => Op::Sync,
            60..=63 => Op::Flush,
            64..=70 => Op::Truncate(r.below(1000) as u16),
            71..=78 => Op::Compact(r.below(1000) as u16),
            79..=85 => Op::SetMeta(r.below(4) as u8, r.below(bs / 6) as usize),
            86..=88 => Op::SetMetaDeferred(r.below(4) as u8, r.below(bs / 6) as usize),
            89..=92 => Op::RemoveMeta(r.below(4) as u8),
            _ => Op::Reopen,
        })
        .collect()
}

/// Piece sizes the file model persists unsynced writes in, for a device of
/// `block_size` bytes. Real kernels write back 4 KiB pages and disks persist
/// 512 B sectors; a real 1 MiB block's summary spans several pages. These
/// small test blocks get pieces scaled down in proportion (1/16 and 1/4 of a
/// block; the 512 B sector on 4 KiB blocks), so piece boundaries fall inside
/// records and inside summaries as they do at full scale.
pub fn file_pages(block_size: u32) -> [u32; 2] {
    if block_size <= 512 {
        [block_size / 16, block_size / 4]
    } else {
        [block_size / 64, 512]
    }
}

/// Every way a cut at `k` can play out worth checking (`exhaustive`), or a
/// few drawn at random.
pub fn plans(dev: &SimDevice, k: usize, exhaustive: bool, r: &mut Rng) -> Vec<CutPlan> {
    let n = dev.unsynced_before(k);
    let len = dev.tear_len(k);
    let file = dev.is_file_like();
    let pages = file_pages(dev.geometry().block_size);
    let seed = r.next();
    let plan = |survivors, torn_at, fill| CutPlan {
        survivors,
        page: 0,
        torn_at,
        scatter: Survivors::None,
        fill,
        seed,
    };
    let fills = [
        TornFill::Old,
        TornFill::Zeros,
        TornFill::Garbage,
        TornFill::GarbageOne,
        TornFill::Mixed,
    ];
    let mut v = Vec::new();
    if !exhaustive {
        let page = if file {
            [0, pages[0], pages[1]][r.below(3) as usize]
        } else {
            0
        };
        let surv = match r.below(4) {
            0 if n > 0 => Survivors::None,
            1 if n > 0 => Survivors::Random,
            _ => Survivors::All,
        };
        v.push(CutPlan {
            page,
            ..plan(surv, 0, TornFill::Old)
        });
        if len > 0 {
            let fill = fills[r.below(5) as usize];
            let scatter = match r.below(3) {
                0 => Survivors::Random,
                1 => Survivors::Range(r.below(len as u64) as usize, usize::MAX),
                _ => Survivors::None,
            };
            v.push(CutPlan {
                page,
                scatter,
                ..plan(Survivors::All, r.below(len as u64 + 1) as usize, fill)
            });
        }
        return v;
    }
    // The operation in flight did not start; the unsynced writes survive in
    // every combination (all subsets up to 6 writes, else a sample).
    if n == 0 {
        v.push(plan(Survivors::All, 0, TornFill::Old));
    } else if n <= 6 {
        for m in 0..(1u64 << n) {
            v.push(plan(Survivors::Mask(m), 0, TornFill::Old));
        }
    } else {
        v.push(plan(Survivors::All, 0, TornFill::Old));
        v.push(plan(Survivors::None, 0, TornFill::Old));
        for j in 1..n.min(63) {
            v.push(plan(Survivors::Mask((1u64 << j) - 1), 0, TornFill::Old));
        }
        for _ in 0..16 {
            v.push(CutPlan {
                seed: r.next(),
                ..plan(Survivors::Random, 0, TornFill::Old)
            });
        }
    }
    // Files: pieces of pages (a page cache writes them back one by one),
    // any subset, of one write or of many.
    for page in pages.into_iter().filter(|_| file) {
        let np = dev.unsynced_pieces(k, page);
        if np <= n {
            continue;
        }
        let pp = |survivors| CutPlan {
            page,
            ..plan(survivors, 0, TornFill::Old)
        };
        if np <= 6 {
            for m in 0..(1u64 << np) {
                v.push(pp(Survivors::Mask(m)));
            }
        } else {
            for j in np.saturating_sub(6)..np {
                v.push(pp(Survivors::Range(j, j + 1)));
                v.push(pp(Survivors::Range(j, np)));
                v.push(pp(Survivors::Range(0, j)));
            }
            for _ in 0..8 {
                v.push(CutPlan {
                    seed: r.next(),
                    ..pp(Survivors::Random)
                });
            }
        }
    }
    // The operation in flight torn at every boundary, the rest old, zero or
    // garbage; a few with the unsynced writes lost too.
    if len > 0 {
        let step = (len / 256).max(1);
        let mut t = 0;
        while t <= len {
            for fill in [TornFill::Old, TornFill::Zeros, TornFill::Garbage] {
                if t == 0 && fill == TornFill::Old {
                    continue;
                }
                v.push(plan(Survivors::All, t, fill));
                if t == len {
                    break;
                }
            }
            if t % 8 == 1 {
                v.push(plan(Survivors::All, t, TornFill::GarbageOne));
                if n > 0 {
                    v.push(plan(Survivors::None, t, TornFill::Garbage));
                    v.push(plan(Survivors::Random, t, TornFill::Old));
                }
            }
            t += step;
        }
    }
    // ... and not as a prefix: any subset of its units (NOR program units,
    // file pages) done, in any order; the others undefined.
    let scatters: Vec<(u32, usize)> = if file {
        pages
            .iter()
            .map(|&pg| (pg, dev.scatter_len(k, pg)))
            .filter(|&(_, ns)| ns > 1)
            .collect()
    } else if len > 1 {
        vec![(0, len)]
    } else {
        Vec::new()
    };
    for (page, ns) in scatters {
        let sp = |scatter, fill, seed| CutPlan {
            page,
            scatter,
            seed,
            ..plan(Survivors::All, 0, fill)
        };
        if ns <= 6 {
            for m in 1..(1u64 << ns) - 1 {
                v.push(sp(Survivors::Mask(m), TornFill::Old, seed));
                v.push(sp(Survivors::Mask(m), TornFill::Mixed, seed));
            }
        } else {
            // Done from unit t on (a summary's trailer before its table),
            // every boundary; and random subsets.
            let step = (ns / 12).max(1);
            let mut t = 1;
            while t < ns {
                v.push(sp(Survivors::Range(t, usize::MAX), TornFill::Old, seed));
                v.push(sp(Survivors::Range(t, usize::MAX), TornFill::Mixed, seed));
                t += step;
            }
            for _ in 0..3 {
                v.push(sp(Survivors::Random, TornFill::Old, r.next()));
                v.push(sp(Survivors::Random, TornFill::Mixed, r.next()));
            }
        }
    }
    v
}

/// Reopens a log on a crash image, checks it against `s`, checks it takes
/// an append + sync that a clean reopen keeps; returns what it held.
pub fn check_crash(setup: &Setup, img: Vec<u8>, s: &State) -> Result<View, String> {
    let dev = setup.device_from(img);
    let mon = dev.monitor();
    let mut w = Wal::open_with(dev, setup.opts).map_err(|e| format!("open failed: {e}"))?;
    let v = view(&w)?;
    check_view(&v, s)?;
    let i = v.next.unwrap_or(1);
    let d = payload(u64::MAX, i, 40);
    let r = w.append(i, &d).and_then(|_| w.sync());
    // A map that already (nearly) fills a block takes no new key.
    let mut meta_set = true;
    let r = r.and_then(|_| match w.set_meta("post", b"crash") {
        Err(Error::MetaTooLarge { .. }) => {
            meta_set = false;
            Ok(())
        }
        r => r,
    });
    match r {
        Ok(()) => {}
        Err(Error::Full) => return Ok(v),
        Err(e) => return Err(format!("append + sync after recovery: {e}")),
    }
    if mon.violations() > 0 {
        let dev = w.into_device();
        return Err(format!(
            "device contract broken after recovery: {:?}",
            dev.violations().first()
        ));
    }
    let w = Wal::open_with(w.into_device(), setup.opts)
        .map_err(|e| format!("clean reopen after recovery: {e}"))?;
    let v2 = view(&w).map_err(|e| format!("clean reopen after recovery: {e}"))?;
    let mut want = v.entries.clone();
    want.insert(i, d);
    if v2.entries != want {
        return Err(format!(
            "clean reopen after recovery + append: holds {:?}..{:?}, want {:?}..{:?}",
            v2.entries.keys().next(),
            v2.entries.keys().next_back(),
            want.keys().next(),
            want.keys().next_back()
        ));
    }
    if meta_set && v2.meta.get("post").map(|x| x.as_slice()) != Some(&b"crash"[..]) {
        return Err("meta set after recovery lost at a clean reopen".into());
    }
    Ok(v)
}

fn hash(img: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    img.hash(&mut h);
    h.finish()
}

/// How to explore a recording.
#[derive(Clone, Debug)]
pub struct Explore {
    /// Every cut point with every plan (else `samples` random cuts).
    pub exhaustive: bool,
    /// Random cut points when not exhaustive.
    pub samples: usize,
    /// Run a second workload after every `second_every`-th recovered crash
    /// (0: never) and crash it at every operation.
    pub second_every: u64,
    /// The second workload.
    pub second_ops: Vec<Op>,
    /// Seed for plans.
    pub seed: u64,
}

/// Explores the cut points of `rec` (see the module docs); `label` names
/// the workload in violation reports.
pub fn explore(setup: &Setup, rec: &Recording, ex: &Explore, label: &str, tally: &mut Tally) {
    let total = rec.dev.trace().len();
    let mut r = Rng(ex.seed);
    let ks: Vec<usize> = if ex.exhaustive {
        (0..=total).collect()
    } else {
        let mut ks: Vec<usize> = (0..ex.samples)
            .map(|_| r.below(total as u64 + 1) as usize)
            .collect();
        ks.sort_unstable();
        ks
    };
    let mut since_second = 0u64;
    for k in ks {
        let s = rec.state_at(k as u64);
        let mut seen = HashSet::new();
        for plan in plans(&rec.dev, k, ex.exhaustive, &mut r) {
            let img = rec.dev.crash_image(k, &plan);
            if !seen.insert(hash(&img)) {
                continue;
            }
            tally.points += 1;
            let keep = (ex.second_every > 0).then(|| img.clone());
            match check_crash(setup, img, &s) {
                Err(e) => tally.violation(format!(
                    "{}: {label}: cut at op {k}/{total} {:?} ({plan:?}): {e}",
                    setup.name,
                    rec.dev.trace().get(k).map(short_op)
                )),
                Ok(v) => {
                    since_second += 1;
                    if let (Some(img), true) = (keep, since_second >= ex.second_every) {
                        since_second = 0;
                        let init = State::from_view(&v, s.floor);
                        let dev = setup.device_from(img);
                        match record(setup, dev, init, &ex.second_ops, rec.gen + 1_000_000) {
                            Err(e) => tally.violation(format!(
                                "{}: {label}: after cut at op {k} ({plan:?}): second run: {e}",
                                setup.name
                            )),
                            Ok(rec2) => {
                                let ex2 = Explore {
                                    exhaustive: false,
                                    samples: rec2.dev.trace().len() + 1,
                                    second_every: 0,
                                    second_ops: Vec::new(),
                                    seed: r.next(),
                                };
                                let before = tally.points;
                                let label2 = format!("{label}, cut at op {k} ({plan:?}), then");
                                explore_all_ops(setup, &rec2, &ex2, &label2, tally);
                                tally.second += tally.points - before;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Every cut point of `rec`, a few random plans each (second crashes).
fn explore_all_ops(setup: &Setup, rec: &Recording, ex: &Explore, label: &str, tally: &mut Tally) {
    let total = rec.dev.trace().len();
    let mut r = Rng(ex.seed);
    for k in 0..=total {
        let s = rec.state_at(k as u64);
        for plan in plans(&rec.dev, k, false, &mut r) {
            let img = rec.dev.crash_image(k, &plan);
            tally.points += 1;
            if let Err(e) = check_crash(setup, img, &s) {
                tally.violation(format!(
                    "{}: {label}: second cut at op {k}/{total} ({plan:?}): {e}",
                    setup.name
                ));
            }
        }
    }
}

fn short_op(o: &blockwal::SimOp) -> String {
    match o {
        blockwal::SimOp::Program { offset, data } => format!("program {offset}+{}", data.len()),
        other => format!("{other:?}"),
    }
}

/// Records `ops` on a fresh device of `setup` and explores it; a failure of
/// the clean run counts as a violation.
pub fn run_workload(setup: &Setup, ops: &[Op], ex: &Explore, label: &str) -> Tally {
    let mut tally = Tally::default();
    match record(setup, setup.device(), State::default(), ops, 0) {
        Err(e) => tally.violation(format!("{}: {label}: clean run: {e}", setup.name)),
        Ok(rec) => explore(setup, &rec, ex, label, &mut tally),
    }
    tally
}

/// The second workload: recovery, then appends, a sync, meta, a truncate.
pub fn second_ops(block_size: u32) -> Vec<Op> {
    let b = block_size as usize;
    vec![
        Op::Append(30),
        Op::SetMeta(1, 20),
        Op::Batch(vec![10, b / 2]),
        Op::Sync,
        Op::Truncate(999),
        Op::Append(b + 10),
        Op::Sync,
        Op::Compact(1),
    ]
}

/// Unused-import guard for helpers only some test files need.
pub fn _geometry_of(d: &SimDevice) -> Geometry {
    d.geometry()
}
