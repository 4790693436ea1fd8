//! Crash-testing your own code with `SimDevice`: cut the power at every
//! device operation of a workload and check your invariant after each reboot.
//!
//! The code under test is a small counter built on the log: each increment is
//! an entry; every 8 increments it checkpoints the running total in metadata
//! and compacts the entries the checkpoint covers. Its invariant: after any
//! crash the recovered count is at least every increment acknowledged by a
//! `sync` and at most every increment issued. Swap the two checkpoint steps
//! (compact first, then `set_meta`) and this program finds the crash that
//! loses increments.
//!
//! ```text
//! cargo run --example sim_crash_test --features sim
//! ```

use blockwal::devices::sim::{CutPlan, SimDevice, SimOptions, TornFill};
use blockwal::{BlockDevice, Error, Geometry, Wal};

const CHECKPOINT: &str = "counter/checkpoint";

/// The code under test: a durable counter.
struct Counter<D: BlockDevice> {
    wal: Wal<D>,
}

impl<D: BlockDevice> Counter<D> {
    fn open(dev: D) -> Result<Self, Error<D::Error>> {
        Ok(Counter {
            wal: Wal::open(dev)?,
        })
    }

    /// `(total, index)` of the last checkpoint.
    fn checkpoint(&self) -> (u64, u64) {
        let raw = self.wal.get_meta(CHECKPOINT).unwrap_or(&[0; 16]);
        let word = |i: usize| {
            let bytes = raw.get(i..i + 8).and_then(|b| b.try_into().ok());
            u64::from_le_bytes(bytes.unwrap_or([0; 8]))
        };
        (word(0), word(8))
    }

    /// The count: the checkpoint plus every increment logged after it.
    fn count(&self) -> u64 {
        let (total, through) = self.checkpoint();
        total + self.wal.iter_range(through + 1..).count() as u64
    }

    /// Logs one increment (durable after `sync`), checkpointing every 8.
    fn increment(&mut self) -> Result<(), Error<D::Error>> {
        let index = self.wal.next_index().unwrap_or(1);
        self.wal.append(index, b"+1")?;
        if index % 8 == 0 {
            self.wal.sync()?;
            let mut cp = [0u8; 16];
            cp[..8].copy_from_slice(&self.count().to_le_bytes());
            cp[8..].copy_from_slice(&index.to_le_bytes());
            // The checkpoint must be durable before the entries go.
            self.wal.set_meta(CHECKPOINT, &cp)?;
            self.wal.compact(index)?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), Error<D::Error>> {
        self.wal.sync()
    }
}

fn main() {
    let config = SimOptions::new(Geometry {
        block_size: 512,
        program_size: 1,
        block_count: 16,
        erase_value: None, // a file; `Some(0xFF)` models NOR flash
    });

    // Run the workload once on a recording device, noting after each sync
    // how many device operations had completed and what was acknowledged.
    let dev = SimDevice::new(config);
    let monitor = dev.monitor();
    let mut counter = Counter::open(dev).expect("open");
    let (mut issued, mut acked) = (Vec::new(), Vec::new());
    for i in 1..=40u64 {
        counter.increment().expect("increment");
        issued.push((monitor.ops(), i));
        if i % 3 == 0 {
            counter.sync().expect("sync");
            acked.push((monitor.ops(), i));
        }
    }
    let dev = counter.wal.into_device();

    // Every operation as the one in flight at the cut, under three cuts.
    let torn = CutPlan {
        torn_at: 7,
        fill: TornFill::Garbage,
        ..CutPlan::LOSE_UNSYNCED
    };
    let mut checked = 0;
    for op in 0..=dev.trace().len() {
        for plan in [CutPlan::KEEP_ALL, CutPlan::LOSE_UNSYNCED, torn] {
            let image = dev.crash_image(op, &plan);
            let counter = Counter::open(SimDevice::from_image(config, image))
                .unwrap_or_else(|e| panic!("cut at op {op}: reopen failed: {e}"));
            // Acknowledged: syncs that finished before operation `op` began.
            let min = acked.iter().filter(|a| a.0 <= op as u64).map(|a| a.1).max();
            let max = issued.iter().find(|a| a.0 > op as u64).map_or(40, |a| a.1);
            let n = counter.count();
            assert!(
                n >= min.unwrap_or(0) && n <= max,
                "cut at op {op} ({plan:?}): count {n}, acknowledged {min:?}, issued <= {max}"
            );
            checked += 1;
        }
    }
    println!(
        "{checked} crash images over {} operations: the counter kept every acknowledged increment",
        dev.trace().len()
    );
}
