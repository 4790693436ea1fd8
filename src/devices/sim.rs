//! `SimDevice`: an in-memory device that records every operation, cuts power
//! on demand and injects faults, for crash and fault testing of the core.
//!
//! Two power-loss models are built in, chosen by the geometry. Both are as
//! hard as the contracts they stand for:
//!
//! - **file-like** (`erase_value: None`): writes are volatile until `sync`.
//!   A page cache writes dirty pages back one by one and a disk persists
//!   sectors, so at a power cut any subset of the *pieces* of the writes
//!   since the last completed sync is lost: pieces of [`CutPlan::page`]
//!   bytes aligned on the device (4 KiB pages, 512 B sectors), of one write
//!   or of many, in any order ([`CutPlan::survivors`]). The write in flight
//!   is torn: a prefix and/or any subset of its pieces done, the rest
//!   holding the old bytes, zeros or garbage ([`CutPlan`]). A *failed* sync
//!   drops the writes it should have made durable (Linux may mark the dirty
//!   pages clean after a failed `fsync`): they stay readable until the
//!   power cut and are then gone.
//! - **NOR flash** (`erase_value: Some(v)`): every completed program or erase
//!   persists. A program or erase in flight leaves *any subset* of the units
//!   it touches undefined, in any order (not a prefix): each such unit holds
//!   the old bytes, zeros, random bits or the new bytes (deterministic from
//!   a seed). Programming a unit twice without an erase, unaligned
//!   access and out-of-bounds access are contract violations: the operation
//!   fails with [`SimError::Contract`] and the breach is kept
//!   ([`SimDevice::violations`]) so a test reports it even if the core hides
//!   the error.
//!
//! Every program, erase, sync and growth is one *operation*, numbered from 0
//! in the order issued ([`SimDevice::ops`]). A power cut is asked for by
//! operation number ([`SimDevice::cut_power_at`]): that operation is the one
//! in flight, it and everything after it fail with [`SimError::PowerCut`],
//! and [`SimDevice::after_crash`] gives the device that a reboot would see.
//! Because every operation is recorded, [`SimDevice::crash_image`] can also
//! compute the image after a cut at *any* earlier operation without running
//! the workload again: the crash checker uses it to explore every cut point.
//! Reads are not operations (they change nothing) but are counted and can be
//! made to fail ([`SimDevice::fail_nth`]).

use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::Cell;

use crate::device::{BlockDevice, Geometry};

/// The kinds of device operation, for fault injection and statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimOpKind {
    /// `read`.
    Read,
    /// `program`.
    Program,
    /// `erase`.
    Erase,
    /// `sync`.
    Sync,
    /// `grow`.
    Grow,
}

/// What a [`SimDevice`] returns instead of doing an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimError {
    /// The power is off: the operation in flight at the cut, and every one
    /// after it, fails with this. Reopen on [`SimDevice::after_crash`].
    PowerCut,
    /// A fault injected with [`SimDevice::fail_nth`]: this operation failed
    /// and had no effect (a failed sync made nothing durable).
    Injected(SimOpKind),
    /// The core broke the device contract (see [`Violation`]).
    Contract(Violation),
}

/// A breach of the device contract by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// Access outside the device.
    OutOfBounds {
        /// Offset asked for.
        offset: u64,
        /// Length asked for.
        len: usize,
    },
    /// A program not aligned to the program unit, or crossing a block.
    Misaligned {
        /// Offset asked for.
        offset: u64,
        /// Length asked for.
        len: usize,
    },
    /// A program unit programmed twice without an erase (NOR model).
    Reprogrammed {
        /// Offset of the unit.
        offset: u64,
    },
    /// An erase of a block that does not exist.
    NoSuchBlock {
        /// The block asked for.
        block: u32,
    },
}

/// One recorded operation; [`SimDevice::trace`] holds them in issue order,
/// the position in the trace being the operation's number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimOp {
    /// Data programmed at an offset.
    Program {
        /// Byte offset.
        offset: u64,
        /// The bytes.
        data: Vec<u8>,
    },
    /// A block erased.
    Erase {
        /// Block number.
        block: u32,
    },
    /// Everything before made durable.
    Sync,
    /// The device grown to `block_count` blocks (durable at once).
    Grow {
        /// Block count after the growth.
        block_count: u32,
    },
    /// An operation that failed (injected fault, power cut, contract
    /// violation) and changed nothing.
    Failed(SimOpKind),
}

/// What the part of an interrupted operation that did not complete holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TornFill {
    /// The bytes that were there before the operation.
    Old,
    /// Zeros.
    Zeros,
    /// Random bytes (deterministic from [`CutPlan::seed`]).
    Garbage,
    /// Random bytes in the first unit that did not complete, old bytes after.
    GarbageOne,
    /// Each unit that did not complete holds, independently, its old bytes,
    /// zeros, random bytes or its new bytes (deterministic from the seed):
    /// "undefined" as `embedded-storage` says.
    Mixed,
}

/// Which writes (or pieces of writes, see [`CutPlan::page`]) since the last
/// completed sync survive a cut (file-like devices; on NOR flash every
/// completed operation survives). Also which units of the operation in
/// flight completed ([`CutPlan::scatter`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Survivors {
    /// All of them.
    All,
    /// None of them.
    None,
    /// Bit `i` set: the `i`-th write (or piece) since the sync survives
    /// (those past the 64th survive; for [`CutPlan::scatter`], they follow
    /// bit 63).
    Mask(u64),
    /// Each survives with probability 1/2 (deterministic from the seed).
    Random,
    /// Those numbered `start..end` (counted from 0) survive.
    Range(usize, usize),
}

/// How a power cut plays out: see [`SimDevice::crash_image`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CutPlan {
    /// Which unsynced writes (or pieces, see `page`) survive (file-like
    /// devices).
    pub survivors: Survivors,
    /// File-like devices: unsynced writes persist in pieces of this many
    /// bytes, aligned to multiples of it on the device, each piece on its
    /// own ([`SimDevice::unsynced_pieces`] counts them); `survivors` then
    /// picks pieces, not writes. 0: every write whole (one piece).
    pub page: u32,
    /// How far the operation in flight got: bytes on file-like devices,
    /// program units on NOR flash. Clamped to the operation's length, so
    /// `usize::MAX` means it completed.
    pub torn_at: usize,
    /// Units of the operation in flight that completed besides the first
    /// `torn_at`, in any order ([`SimDevice::scatter_len`] counts them):
    /// program units on NOR flash (erase: the block's program units),
    /// pieces of `page` bytes on files (the whole write when `page` is 0).
    /// `Survivors::None`: only the prefix.
    pub scatter: Survivors,
    /// What the rest of the operation in flight holds.
    pub fill: TornFill,
    /// Seed for garbage and random survivors.
    pub seed: u64,
}

impl CutPlan {
    /// The gentlest cut: every write survives, the operation in flight did
    /// not start.
    pub const KEEP_ALL: CutPlan = CutPlan {
        survivors: Survivors::All,
        page: 0,
        torn_at: 0,
        scatter: Survivors::None,
        fill: TornFill::Old,
        seed: 0,
    };

    /// The harshest plain cut: every unsynced write is lost, the operation
    /// in flight did not start.
    pub const LOSE_UNSYNCED: CutPlan = CutPlan {
        survivors: Survivors::None,
        page: 0,
        torn_at: 0,
        scatter: Survivors::None,
        fill: TornFill::Old,
        seed: 0,
    };
}

/// Counters kept by a [`SimDevice`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Operations issued (programs, erases, syncs, growths, failed or not).
    pub ops: u64,
    /// Reads.
    pub reads: u64,
    /// Bytes read.
    pub bytes_read: u64,
    /// Programs that took effect.
    pub programs: u64,
    /// Bytes programmed by them.
    pub bytes_programmed: u64,
    /// Erases that took effect.
    pub erases: u64,
    /// Syncs that took effect.
    pub syncs: u64,
}

/// Settings of a new [`SimDevice`].
///
/// Build it with [`SimOptions::new`] and the builder methods, e.g.
/// `SimOptions::new(geometry).max_blocks(64)`: fields may be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SimOptions {
    /// Shape; `erase_value` chooses the power-loss model.
    pub geometry: Geometry,
    /// Growth limit in blocks (`geometry.block_count` or less: fixed size).
    pub max_blocks: u32,
    /// Keep a trace of every operation (needed by [`SimDevice::crash_image`]
    /// and [`SimDevice::after_crash`]; off saves memory in long runs, and
    /// then a cut loses nothing but the operation in flight).
    pub record: bool,
}

impl SimOptions {
    /// A fixed-size, recording device of this geometry.
    pub fn new(geometry: Geometry) -> Self {
        SimOptions {
            geometry,
            max_blocks: geometry.block_count,
            record: true,
        }
    }

    /// Sets [`SimOptions::geometry`]: shape; `erase_value` chooses the power-loss
    /// model. Leaves `max_blocks` as it was.
    #[must_use]
    pub const fn geometry(mut self, v: Geometry) -> Self {
        self.geometry = v;
        self
    }

    /// Sets [`SimOptions::max_blocks`]: growth limit in blocks (`geometry.block_count` or less: fixed size).
    #[must_use]
    pub const fn max_blocks(mut self, v: u32) -> Self {
        self.max_blocks = v;
        self
    }

    /// Sets [`SimOptions::record`]: keep a trace of every operation (off saves memory in long runs).
    #[must_use]
    pub const fn record(mut self, v: bool) -> Self {
        self.record = v;
        self
    }
}

/// Small deterministic generator (splitmix64) for garbage bytes.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fill(&mut self, b: &mut [u8]) {
        for c in b.chunks_mut(8) {
            let r = self.next().to_le_bytes();
            c.copy_from_slice(&r[..c.len()]);
        }
    }
}

/// A live view of a [`SimDevice`]'s counters that stays usable while the
/// device is owned by a `Wal` (see [`SimDevice::monitor`]).
#[derive(Clone, Debug, Default)]
pub struct SimMonitor {
    ops: Rc<Cell<u64>>,
    violations: Rc<Cell<u64>>,
    powered: Rc<Cell<bool>>,
}

impl SimMonitor {
    /// Operations issued so far (the number the next one gets).
    pub fn ops(&self) -> u64 {
        self.ops.get()
    }

    /// Contract violations seen so far.
    pub fn violations(&self) -> u64 {
        self.violations.get()
    }

    /// False once the power was cut.
    pub fn powered(&self) -> bool {
        self.powered.get()
    }

    fn detached(&self) -> SimMonitor {
        SimMonitor {
            ops: Rc::new(Cell::new(self.ops.get())),
            violations: Rc::new(Cell::new(self.violations.get())),
            powered: Rc::new(Cell::new(self.powered.get())),
        }
    }
}

/// A recording, fault-injecting device in memory (see the module docs).
/// Not `Send`: its [`SimMonitor`] shares counters in the same thread. A clone
/// is an independent device with its own monitor.
#[derive(Debug)]
pub struct SimDevice {
    monitor: SimMonitor,
    config: SimOptions,
    geometry: Geometry,
    /// What reads see now (volatile view).
    data: Vec<u8>,
    /// One flag per program unit: programmed since the block's last erase.
    programmed: Vec<bool>,
    /// The image the trace starts from.
    initial: Vec<u8>,
    trace: Vec<SimOp>,
    stats: SimStats,
    erase_counts: Vec<u32>,
    cut_at: Option<u64>,
    /// The operation in flight when the power was cut.
    cut_op: Option<u64>,
    powered: bool,
    faults: Vec<(SimOpKind, u64)>,
    counts: [u64; 5],
    violations: Vec<Violation>,
}

fn kind_slot(k: SimOpKind) -> usize {
    match k {
        SimOpKind::Read => 0,
        SimOpKind::Program => 1,
        SimOpKind::Erase => 2,
        SimOpKind::Sync => 3,
        SimOpKind::Grow => 4,
    }
}

impl Clone for SimDevice {
    fn clone(&self) -> Self {
        SimDevice {
            monitor: self.monitor.detached(),
            config: self.config,
            geometry: self.geometry,
            data: self.data.clone(),
            programmed: self.programmed.clone(),
            initial: self.initial.clone(),
            trace: self.trace.clone(),
            stats: self.stats.clone(),
            erase_counts: self.erase_counts.clone(),
            cut_at: self.cut_at,
            cut_op: self.cut_op,
            powered: self.powered,
            faults: self.faults.clone(),
            counts: self.counts,
            violations: self.violations.clone(),
        }
    }
}

impl SimDevice {
    /// A device erased to its erase value (zeroed when it has none).
    pub fn new(config: SimOptions) -> Self {
        let len = config.geometry.capacity() as usize;
        Self::from_image(config, vec![config.geometry.erase_value.unwrap_or(0); len])
    }

    /// A device over an existing image, for example one a crash left. The
    /// image is cut or padded (erase value or zeros) to the geometry's size.
    /// On NOR flash a unit counts as programmed unless it holds only the
    /// erase value.
    pub fn from_image(config: SimOptions, mut image: Vec<u8>) -> Self {
        let g = config.geometry;
        image.resize(g.capacity() as usize, g.erase_value.unwrap_or(0));
        let p = g.program_size.max(1) as usize;
        let programmed = match g.erase_value {
            Some(ev) => image
                .chunks(p)
                .map(|c| c.iter().any(|&b| b != ev))
                .collect(),
            None => vec![false; image.len() / p],
        };
        let monitor = SimMonitor::default();
        monitor.powered.set(true);
        SimDevice {
            monitor,
            config,
            geometry: g,
            initial: if config.record {
                image.clone()
            } else {
                Vec::new()
            },
            data: image,
            programmed,
            trace: Vec::new(),
            stats: SimStats::default(),
            erase_counts: vec![0; g.block_count as usize],
            cut_at: None,
            cut_op: None,
            powered: true,
            faults: Vec::new(),
            counts: [0; 5],
            violations: Vec::new(),
        }
    }

    /// The settings the device was made with.
    pub fn config(&self) -> SimOptions {
        self.config
    }

    /// A handle on the device's counters that keeps working while a `Wal`
    /// owns the device.
    pub fn monitor(&self) -> SimMonitor {
        self.monitor.clone()
    }

    /// True for the file-like power-loss model (no erase value).
    pub fn is_file_like(&self) -> bool {
        self.geometry.erase_value.is_none()
    }

    /// Cuts the power when operation number `op` is issued (counted from the
    /// device's creation, see [`SimDevice::ops`]): that operation is in
    /// flight and fails with [`SimError::PowerCut`], and so does everything
    /// after it. A number already passed cuts at the next operation.
    pub fn cut_power_at(&mut self, op: u64) {
        self.cut_at = Some(op);
    }

    /// Makes the `n`-th operation of `kind` (counted from 0 since the
    /// device's creation, reads included for [`SimOpKind::Read`]) fail once
    /// with [`SimError::Injected`], changing nothing.
    pub fn fail_nth(&mut self, kind: SimOpKind, n: u64) {
        self.faults.push((kind, n));
    }

    /// Drops every fault injected with [`SimDevice::fail_nth`] not yet hit.
    pub fn clear_faults(&mut self) {
        self.faults.clear();
    }

    /// How many operations of `kind` were issued so far (the `n` that
    /// [`SimDevice::fail_nth`] would give the next one).
    pub fn count(&self, kind: SimOpKind) -> u64 {
        self.counts[kind_slot(kind)]
    }

    /// False once the power was cut.
    pub fn powered(&self) -> bool {
        self.powered
    }

    /// Operations issued so far (the number the next one gets).
    pub fn ops(&self) -> u64 {
        self.stats.ops
    }

    /// Counters: operations, reads, programs, bytes programmed, erases, syncs.
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// Erases per block, for wear figures.
    pub fn erase_counts(&self) -> &[u32] {
        &self.erase_counts
    }

    /// Contract violations seen so far (should stay empty).
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Every operation so far, in issue order (empty unless recording).
    pub fn trace(&self) -> &[SimOp] {
        &self.trace
    }

    /// What reads see now (including writes not yet synced).
    pub fn image(&self) -> &[u8] {
        &self.data
    }

    /// The image the trace starts from.
    pub fn initial_image(&self) -> &[u8] {
        &self.initial
    }

    /// Number of writes issued since the last completed sync before
    /// operation `op` (the writes a cut at `op` may lose on a file-like
    /// device; 0 on NOR flash). A failed sync drops the writes before it.
    pub fn unsynced_before(&self, op: usize) -> usize {
        self.unsynced_pieces(op, 0)
    }

    /// Number of pieces of `page` bytes (see [`CutPlan::page`]; 0: whole
    /// writes) of the writes a cut at `op` may lose on a file-like device.
    pub fn unsynced_pieces(&self, op: usize, page: u32) -> usize {
        if !self.is_file_like() {
            return 0;
        }
        let upto = op.min(self.trace.len());
        self.trace[..upto]
            .iter()
            .rev()
            .take_while(|o| !matches!(o, SimOp::Sync | SimOp::Failed(SimOpKind::Sync)))
            .map(|o| match o {
                SimOp::Program { offset, data } => pieces(*offset, data, page).count(),
                _ => 0,
            })
            .sum()
    }

    /// Length of the operation in flight at a cut at `op`, in the unit of
    /// [`CutPlan::torn_at`] (bytes on file-like devices, program units on
    /// NOR flash; 0 for syncs, growths and failed operations; on file-like
    /// devices erases change nothing and count 0).
    pub fn tear_len(&self, op: usize) -> usize {
        let p = self.geometry.program_size.max(1) as usize;
        match self.trace.get(op) {
            Some(SimOp::Program { data, .. }) if self.is_file_like() => data.len(),
            Some(SimOp::Program { data, .. }) => data.len() / p,
            Some(SimOp::Erase { .. }) if !self.is_file_like() => {
                self.geometry.block_size as usize / p
            }
            _ => 0,
        }
    }

    /// Number of units [`CutPlan::scatter`] chooses from for a cut at `op`
    /// with pieces of `page` bytes (files; NOR flash: program units).
    pub fn scatter_len(&self, op: usize, page: u32) -> usize {
        match self.trace.get(op) {
            Some(SimOp::Program { offset, data }) if self.is_file_like() => {
                pieces(*offset, data, page).count()
            }
            _ => self.tear_len(op),
        }
    }

    /// The image after a power cut while operation `op` was in flight
    /// (`op >= trace().len()`: after the last operation), played out as
    /// `plan` says. Needs recording on.
    pub fn crash_image(&self, op: usize, plan: &CutPlan) -> Vec<u8> {
        let g = self.geometry;
        let file = self.is_file_like();
        let fillv = g.erase_value.unwrap_or(0);
        let bs = g.block_size as usize;
        let mut img = self.initial.clone();
        // Unsynced pieces (file-like): (offset, bytes).
        let mut pending: Vec<(u64, &[u8])> = Vec::new();
        let upto = op.min(self.trace.len());
        for o in &self.trace[..upto] {
            match o {
                SimOp::Program { offset, data } => {
                    if file {
                        pending.extend(pieces(*offset, data, plan.page));
                    } else {
                        put(&mut img, *offset, data);
                    }
                }
                SimOp::Erase { block } => {
                    if !file {
                        let s = *block as usize * bs;
                        if let Some(b) = img.get_mut(s..s + bs) {
                            b.fill(fillv);
                        }
                    }
                }
                SimOp::Sync => {
                    for (at, d) in pending.drain(..) {
                        put(&mut img, at, d);
                    }
                }
                // A failed sync: the kernel may have dropped the dirty pages
                // (still readable in the cache until the cut), so nothing
                // written before it can become durable any more.
                SimOp::Failed(SimOpKind::Sync) => pending.clear(),
                SimOp::Grow { block_count } => {
                    let len = *block_count as usize * bs;
                    if len > img.len() {
                        img.resize(len, fillv);
                    }
                }
                SimOp::Failed(_) => {}
            }
        }
        let mut rng = Rng(plan.seed ^ 0x5851_f42d_4c95_7f2d);
        for (k, (at, d)) in pending.iter().enumerate() {
            let keep = match plan.survivors {
                Survivors::All => true,
                Survivors::None => false,
                Survivors::Mask(m) => k >= 64 || m & (1 << k) != 0,
                Survivors::Random => rng.next() & 1 == 1,
                Survivors::Range(a, b) => (a..b).contains(&k),
            };
            if keep {
                put(&mut img, *at, d);
            }
        }
        let p = g.program_size.max(1) as usize;
        let (at, new): (usize, Vec<u8>) = match self.trace.get(op) {
            Some(SimOp::Program { offset, data }) => (*offset as usize, data.clone()),
            Some(SimOp::Erase { block }) if !file => (*block as usize * bs, vec![fillv; bs]),
            _ => return img,
        };
        let Some(dst) = img.get_mut(at..at + new.len()) else {
            return img;
        };
        // Which bytes of the operation in flight completed: a prefix, and
        // any subset of its units (`scatter`).
        let unit = if file { 1 } else { p };
        let mut done = vec![false; new.len()];
        let pre = plan.torn_at.saturating_mul(unit).min(new.len());
        done[..pre].fill(true);
        let units: Vec<(usize, usize)> = if file {
            pieces(at as u64, &new, plan.page)
                .map(|(o, d)| (o as usize - at, d.len()))
                .collect()
        } else {
            (0..new.len() / p).map(|u| (u * p, p)).collect()
        };
        for (k, (s, n)) in units.iter().enumerate() {
            let pick = match plan.scatter {
                Survivors::All => true,
                Survivors::None => false,
                Survivors::Mask(m) => m & (1 << k.min(63)) != 0,
                Survivors::Random => rng.next() & 1 == 1,
                Survivors::Range(a, b) => (a..b).contains(&k),
            };
            if pick {
                done[*s..*s + *n].fill(true);
            }
        }
        let mut first_undone = true;
        let mut s = 0;
        while s < new.len() {
            let n = unit.min(new.len() - s);
            let (d, want) = (&mut dst[s..s + n], &new[s..s + n]);
            let mut i = 0;
            while i < n {
                if done[s + i] {
                    d[i] = want[i];
                    i += 1;
                    continue;
                }
                // A run of bytes of this unit that did not complete.
                let mut j = i;
                while j < n && !done[s + j] {
                    j += 1;
                }
                let rest = &mut d[i..j];
                match plan.fill {
                    TornFill::Old => {}
                    TornFill::Zeros => rest.fill(0),
                    TornFill::Garbage => rng.fill(rest),
                    TornFill::GarbageOne if first_undone => rng.fill(rest),
                    TornFill::GarbageOne => {}
                    TornFill::Mixed => match rng.next() % 4 {
                        0 => {}
                        1 => rest.fill(0),
                        2 => rng.fill(rest),
                        _ => rest.copy_from_slice(&want[i..j]),
                    },
                }
                i = j;
            }
            // GarbageOne: garbage in the first unit (a byte on files) that
            // did not complete; later ones keep their old bytes.
            if done[s..s + n].iter().any(|d| !d) {
                first_undone = false;
            }
            s += n;
        }
        img
    }

    /// The device a reboot sees after the power cut (or, if the power was
    /// never cut, after a cut now), played out as `plan` says: a fresh,
    /// powered device over [`SimDevice::crash_image`], with the same
    /// settings and a new trace.
    pub fn after_crash(&self, plan: &CutPlan) -> SimDevice {
        if !self.config.record {
            return self.restarted();
        }
        let op = self.cut_op.map_or(self.trace.len(), |c| c as usize);
        let img = self.crash_image(op, plan);
        let mut config = self.config;
        config.geometry.block_count = (img.len() / self.geometry.block_size as usize) as u32;
        SimDevice::from_image(config, img)
    }

    /// The current image as a new powered device with a fresh trace (a
    /// clean restart: nothing lost).
    pub fn restarted(&self) -> SimDevice {
        let mut config = self.config;
        config.geometry = self.geometry;
        SimDevice::from_image(config, self.data.clone())
    }

    /// Starts an operation: counts it, and decides whether it runs.
    fn begin(&mut self, kind: SimOpKind) -> Result<(), SimError> {
        let slot = kind_slot(kind);
        let nth = self.counts[slot];
        self.counts[slot] += 1;
        if kind == SimOpKind::Read {
            if !self.powered {
                return Err(SimError::PowerCut);
            }
            if let Some(i) = self.faults.iter().position(|f| *f == (kind, nth)) {
                self.faults.swap_remove(i);
                return Err(SimError::Injected(kind));
            }
            return Ok(());
        }
        let op = self.stats.ops;
        self.stats.ops += 1;
        self.monitor.ops.set(self.stats.ops);
        if !self.powered {
            self.record(SimOp::Failed(kind));
            return Err(SimError::PowerCut);
        }
        if self.cut_at.is_some_and(|c| op >= c) {
            self.cut_op = Some(op);
            self.powered = false;
            self.monitor.powered.set(false);
            // The operation in flight is recorded (by the caller) so that
            // `after_crash` can tear it.
            return Err(SimError::PowerCut);
        }
        if let Some(i) = self.faults.iter().position(|f| *f == (kind, nth)) {
            self.faults.swap_remove(i);
            self.record(SimOp::Failed(kind));
            return Err(SimError::Injected(kind));
        }
        Ok(())
    }

    fn push_violation(&mut self, v: Violation) {
        self.violations.push(v);
        self.monitor.violations.set(self.violations.len() as u64);
    }

    fn record(&mut self, op: SimOp) {
        if self.config.record {
            self.trace.push(op);
        }
    }

    fn violation(&mut self, v: Violation, kind: SimOpKind) -> SimError {
        self.push_violation(v.clone());
        self.record(SimOp::Failed(kind));
        SimError::Contract(v)
    }

    fn range(&self, offset: u64, len: usize) -> Option<usize> {
        let end = offset.checked_add(len as u64)?;
        (end <= self.data.len() as u64).then_some(offset as usize)
    }
}

/// `data` written at `offset` cut into pieces at multiples of `page` (one
/// piece when `page` is 0).
fn pieces(offset: u64, data: &[u8], page: u32) -> impl Iterator<Item = (u64, &[u8])> {
    let page = u64::from(page);
    let mut at = offset;
    let mut rest = data;
    core::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = if page == 0 {
            rest.len()
        } else {
            ((page - at % page) as usize).min(rest.len())
        };
        let (piece, tail) = rest.split_at(n);
        let r = (at, piece);
        at += n as u64;
        rest = tail;
        Some(r)
    })
}

/// Copies `data` into `img` at `offset` where it fits.
fn put(img: &mut [u8], offset: u64, data: &[u8]) {
    let at = offset as usize;
    if let Some(dst) = img.get_mut(at..at.saturating_add(data.len())) {
        dst.copy_from_slice(data);
    }
}

impl BlockDevice for SimDevice {
    type Error = SimError;

    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), SimError> {
        self.begin(SimOpKind::Read)?;
        let Some(at) = self.range(offset, buf.len()) else {
            let v = Violation::OutOfBounds {
                offset,
                len: buf.len(),
            };
            self.push_violation(v.clone());
            return Err(SimError::Contract(v));
        };
        buf.copy_from_slice(&self.data[at..at + buf.len()]);
        self.stats.reads += 1;
        self.stats.bytes_read += buf.len() as u64;
        Ok(())
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), SimError> {
        let pending = SimOp::Program {
            offset,
            data: data.to_vec(),
        };
        if let Err(e) = self.begin(SimOpKind::Program) {
            if e == SimError::PowerCut && self.trace.len() < self.stats.ops as usize {
                self.record(pending);
            }
            return Err(e);
        }
        let len = data.len();
        let programmed = &self.programmed;
        let rule =
            crate::device::rules::check_program(&self.geometry, offset, len, |u| programmed[u]);
        let span = match rule {
            Ok(span) => span,
            Err(b) => return Err(self.violation(b.into(), SimOpKind::Program)),
        };
        if self.geometry.erase_value.is_some() {
            self.programmed[span.units].fill(true);
        }
        self.data[span.bytes].copy_from_slice(data);
        self.stats.programs += 1;
        self.stats.bytes_programmed += len as u64;
        self.record(pending);
        Ok(())
    }

    fn erase(&mut self, block: u32) -> Result<(), SimError> {
        if let Err(e) = self.begin(SimOpKind::Erase) {
            if e == SimError::PowerCut && self.trace.len() < self.stats.ops as usize {
                self.record(SimOp::Erase { block });
            }
            return Err(e);
        }
        let g = self.geometry;
        if block >= g.block_count {
            return Err(self.violation(Violation::NoSuchBlock { block }, SimOpKind::Erase));
        }
        if let Some(ev) = g.erase_value {
            let bs = g.block_size as usize;
            let start = block as usize * bs;
            self.data[start..start + bs].fill(ev);
            let p = g.program_size.max(1) as usize;
            self.programmed[start / p..(start + bs) / p].fill(false);
        }
        self.stats.erases += 1;
        if let Some(c) = self.erase_counts.get_mut(block as usize) {
            *c += 1;
        }
        self.record(SimOp::Erase { block });
        Ok(())
    }

    fn sync(&mut self) -> Result<(), SimError> {
        if let Err(e) = self.begin(SimOpKind::Sync) {
            if e == SimError::PowerCut && self.trace.len() < self.stats.ops as usize {
                self.record(SimOp::Failed(SimOpKind::Sync));
            }
            return Err(e);
        }
        self.stats.syncs += 1;
        self.record(SimOp::Sync);
        Ok(())
    }

    fn grow(&mut self, blocks: u32) -> Result<bool, SimError> {
        if let Err(e) = self.begin(SimOpKind::Grow) {
            if e == SimError::PowerCut && self.trace.len() < self.stats.ops as usize {
                self.record(SimOp::Failed(SimOpKind::Grow));
            }
            return Err(e);
        }
        let Some(count) = self
            .geometry
            .block_count
            .checked_add(blocks)
            .filter(|c| *c <= self.config.max_blocks)
        else {
            self.record(SimOp::Failed(SimOpKind::Grow));
            return Ok(false);
        };
        self.geometry.block_count = count;
        let g = self.geometry;
        let len = g.capacity() as usize;
        self.data.resize(len, g.erase_value.unwrap_or(0));
        self.programmed
            .resize(len / g.program_size.max(1) as usize, false);
        self.erase_counts.resize(count as usize, 0);
        self.record(SimOp::Grow { block_count: count });
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> SimDevice {
        SimDevice::new(SimOptions::new(Geometry {
            block_size: 128,
            program_size: 1,
            block_count: 4,
            erase_value: None,
        }))
    }

    fn nor() -> SimDevice {
        SimDevice::new(SimOptions::new(Geometry {
            block_size: 128,
            program_size: 4,
            block_count: 4,
            erase_value: Some(0xFF),
        }))
    }

    #[test]
    fn countdown_cuts_power_and_after_crash_keeps_what_survives() {
        let mut d = file();
        d.cut_power_at(3);
        d.program(0, b"abcd").unwrap();
        d.sync().unwrap();
        d.program(4, b"efgh").unwrap();
        assert_eq!(d.program(8, b"ijkl"), Err(SimError::PowerCut));
        assert!(!d.powered() && !d.monitor().powered());
        assert_eq!(d.sync(), Err(SimError::PowerCut));
        let mut buf = [0u8; 4];
        assert_eq!(d.read(0, &mut buf), Err(SimError::PowerCut));
        // Unsynced write lost, the write in flight torn after 2 bytes.
        let plan = CutPlan {
            torn_at: 2,
            ..CutPlan::LOSE_UNSYNCED
        };
        let mut r = d.after_crash(&plan);
        r.read(0, &mut buf).unwrap();
        assert_eq!(&buf, b"abcd");
        r.read(4, &mut buf).unwrap();
        assert_eq!(buf, [0; 4]);
        r.read(8, &mut buf).unwrap();
        assert_eq!(&buf, b"ij\0\0");
        // Kept, and the same image as computing the cut from the trace.
        let keep = d.after_crash(&CutPlan::KEEP_ALL);
        assert_eq!(&keep.image()[4..8], b"efgh");
        assert_eq!(keep.image(), &d.crash_image(3, &CutPlan::KEEP_ALL)[..]);
        assert_eq!(
            d.trace().len(),
            5,
            "the failed sync after the cut is recorded too"
        );
    }

    #[test]
    fn a_cut_asked_for_a_passed_operation_hits_the_next_one() {
        let mut d = file();
        d.program(0, b"ab").unwrap();
        d.sync().unwrap();
        d.cut_power_at(0);
        assert_eq!(d.program(2, b"cd"), Err(SimError::PowerCut));
        let r = d.after_crash(&CutPlan {
            torn_at: 1,
            ..CutPlan::KEEP_ALL
        });
        assert_eq!(&r.image()[..4], b"abc\0");
        let mut q = SimDevice::new(SimOptions::new(d.config().geometry).record(false));
        q.program(0, b"xy").unwrap();
        q.cut_power_at(1);
        assert_eq!(q.program(2, b"zz"), Err(SimError::PowerCut));
        assert_eq!(
            &q.after_crash(&CutPlan::LOSE_UNSYNCED).image()[..4],
            b"xy\0\0"
        );
    }

    #[test]
    fn file_model_survivor_masks_and_fills() {
        let mut d = file();
        d.program(0, b"aaaa").unwrap();
        d.program(4, b"bbbb").unwrap();
        d.program(8, b"cccc").unwrap();
        assert_eq!(d.unsynced_before(3), 3);
        let img = d.crash_image(
            3,
            &CutPlan {
                survivors: Survivors::Mask(0b101),
                ..CutPlan::KEEP_ALL
            },
        );
        assert_eq!(&img[..12], b"aaaa\0\0\0\0cccc");
        // Cut while the third write is in flight: zeros after 1 byte.
        let img = d.crash_image(
            2,
            &CutPlan {
                torn_at: 1,
                fill: TornFill::Zeros,
                ..CutPlan::KEEP_ALL
            },
        );
        assert_eq!(&img[..12], b"aaaabbbbc\0\0\0");
        let g1 = d.crash_image(
            2,
            &CutPlan {
                fill: TornFill::Garbage,
                seed: 5,
                ..CutPlan::KEEP_ALL
            },
        );
        let g2 = d.crash_image(
            2,
            &CutPlan {
                fill: TornFill::Garbage,
                seed: 5,
                ..CutPlan::KEEP_ALL
            },
        );
        assert_eq!(g1, g2, "garbage is deterministic from the seed");
        d.sync().unwrap();
        assert_eq!(d.unsynced_before(4), 0);
        assert_eq!(
            &d.crash_image(4, &CutPlan::LOSE_UNSYNCED)[..12],
            b"aaaabbbbcccc"
        );
    }

    #[test]
    fn nor_model_tears_units_and_refuses_contract_breaches() {
        let mut d = nor();
        d.erase(1).unwrap();
        d.program(128, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        assert_eq!(
            d.program(132, &[0; 4]),
            Err(SimError::Contract(Violation::Reprogrammed { offset: 132 }))
        );
        assert!(matches!(
            d.program(130, &[0; 4]),
            Err(SimError::Contract(Violation::Misaligned { .. }))
        ));
        assert!(matches!(
            d.program(124, &[0; 8]),
            Err(SimError::Contract(Violation::Misaligned { .. }))
        ));
        assert!(matches!(
            d.program(512, &[0; 4]),
            Err(SimError::Contract(Violation::OutOfBounds { .. }))
        ));
        assert_eq!(d.violations().len(), 4);
        assert_eq!(d.monitor().violations(), 4);
        // No sync needed on flash: completed programs persist.
        assert_eq!(
            &d.crash_image(2, &CutPlan::LOSE_UNSYNCED)[128..136],
            &[1, 2, 3, 4, 5, 6, 7, 8]
        );
        // A program in flight: one unit done, the next garbage, the rest erased.
        d.program(136, &[9; 12]).unwrap();
        assert_eq!(d.tear_len(6), 3);
        let img = d.crash_image(
            6,
            &CutPlan {
                torn_at: 1,
                fill: TornFill::GarbageOne,
                seed: 3,
                ..CutPlan::KEEP_ALL
            },
        );
        assert_eq!(&img[136..140], &[9; 4]);
        assert_eq!(&img[144..148], &[0xFF; 4]);
        // An erase in flight: the first half erased, the rest as it was.
        d.erase(1).unwrap();
        let img = d.crash_image(
            7,
            &CutPlan {
                torn_at: 16,
                ..CutPlan::KEEP_ALL
            },
        );
        assert!(img[128..192].iter().all(|&b| b == 0xFF));
        assert_eq!(&img[192..196], &[0xFF; 4]);
        // A crash image reopened knows which units are programmed.
        let mut r = d.after_crash(&CutPlan::KEEP_ALL);
        assert!(
            r.program(128, &[0; 4]).is_ok(),
            "erased by the completed erase"
        );
        let mut r2 = SimDevice::from_image(r.config(), d.crash_image(6, &CutPlan::KEEP_ALL));
        assert!(r2.program(128, &[0; 4]).is_err());
        assert!(r.violations().is_empty());
    }

    #[test]
    fn file_model_keeps_any_subset_of_pages() {
        let mut d = file();
        // One write across three 16-byte pages, then one across two.
        d.program(8, &[1; 32]).unwrap();
        d.program(60, &[2; 8]).unwrap();
        assert_eq!(d.unsynced_pieces(2, 16), 5);
        assert_eq!(d.unsynced_pieces(2, 0), 2);
        let plan = |m| CutPlan {
            survivors: Survivors::Mask(m),
            page: 16,
            ..CutPlan::KEEP_ALL
        };
        // Only the last page of the first write, and the second write's
        // second page.
        let img = d.crash_image(2, &plan(0b00100 | 0b10000));
        assert_eq!(&img[8..40], &[vec![0; 24], vec![1; 8]].concat()[..]);
        assert_eq!(&img[60..68], &[0, 0, 0, 0, 2, 2, 2, 2]);
        // The write in flight: any subset of its pages done.
        let img = d.crash_image(
            1,
            &CutPlan {
                scatter: Survivors::Mask(0b10),
                page: 16,
                ..CutPlan::KEEP_ALL
            },
        );
        assert_eq!(&img[60..68], &[0, 0, 0, 0, 2, 2, 2, 2]);
        assert_eq!(d.scatter_len(1, 16), 2);
    }

    #[test]
    fn nor_model_tears_any_subset_of_units() {
        let mut d = nor();
        d.program(0, &[7; 16]).unwrap();
        assert_eq!(d.scatter_len(0, 0), 4);
        // Units 1 and 3 done, 0 and 2 still erased: not a prefix.
        let img = d.crash_image(
            0,
            &CutPlan {
                scatter: Survivors::Mask(0b1010),
                ..CutPlan::KEEP_ALL
            },
        );
        assert_eq!(
            &img[..16],
            &[[0xFF; 4], [7; 4], [0xFF; 4], [7; 4]].concat()[..]
        );
        // Mixed: every unit not done is old, zero, random or new, from the seed.
        let a = d.crash_image(
            0,
            &CutPlan {
                fill: TornFill::Mixed,
                seed: 9,
                ..CutPlan::KEEP_ALL
            },
        );
        let b = d.crash_image(
            0,
            &CutPlan {
                fill: TornFill::Mixed,
                seed: 9,
                ..CutPlan::KEEP_ALL
            },
        );
        assert_eq!(a, b);
    }

    #[test]
    fn a_failed_sync_drops_the_unsynced_writes_but_reads_still_see_them() {
        let mut d = file();
        d.program(0, b"aaaa").unwrap();
        d.sync().unwrap();
        d.program(4, b"bbbb").unwrap();
        d.fail_nth(SimOpKind::Sync, 1);
        assert_eq!(d.sync(), Err(SimError::Injected(SimOpKind::Sync)));
        let mut buf = [0u8; 4];
        d.read(4, &mut buf).unwrap();
        assert_eq!(&buf, b"bbbb", "still in the page cache");
        d.program(8, b"cccc").unwrap();
        d.sync().unwrap();
        let img = d.crash_image(d.ops() as usize, &CutPlan::KEEP_ALL);
        assert_eq!(&img[..12], b"aaaa\0\0\0\0cccc", "dropped for good");
        assert_eq!(d.unsynced_before(3), 1);
        assert_eq!(d.unsynced_before(4), 0);
    }

    #[test]
    fn injected_faults_counters_and_growth() {
        let mut d = SimDevice::new(
            SimOptions::new(Geometry {
                block_size: 128,
                program_size: 1,
                block_count: 2,
                erase_value: None,
            })
            .max_blocks(3),
        );
        d.fail_nth(SimOpKind::Sync, 1);
        d.fail_nth(SimOpKind::Read, 0);
        d.fail_nth(SimOpKind::Program, 1);
        let mut buf = [0u8; 2];
        assert_eq!(
            d.read(0, &mut buf),
            Err(SimError::Injected(SimOpKind::Read))
        );
        d.read(0, &mut buf).unwrap();
        d.program(0, b"ab").unwrap();
        assert_eq!(
            d.program(2, b"cd"),
            Err(SimError::Injected(SimOpKind::Program))
        );
        d.sync().unwrap();
        d.program(4, b"ef").unwrap();
        assert_eq!(d.sync(), Err(SimError::Injected(SimOpKind::Sync)));
        // The failed sync made nothing durable.
        assert_eq!(
            &d.crash_image(d.ops() as usize, &CutPlan::LOSE_UNSYNCED)[..6],
            b"ab\0\0\0\0"
        );
        assert_eq!(d.grow(1), Ok(true));
        assert_eq!(d.grow(1), Ok(false));
        d.erase(2).unwrap();
        d.erase(2).unwrap();
        let s = d.stats();
        assert_eq!(
            (s.reads, s.programs, s.bytes_programmed, s.syncs, s.erases),
            (1, 2, 4, 1, 2)
        );
        assert_eq!(s.ops, 9);
        assert_eq!(d.erase_counts(), &[0, 0, 2]);
        assert_eq!(d.count(SimOpKind::Read), 2);
        assert_eq!(d.trace().len(), 9);
        assert_eq!(d.crash_image(9, &CutPlan::KEEP_ALL).len(), 384);
    }
}
