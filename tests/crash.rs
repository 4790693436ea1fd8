//! Crash simulation (tier 2): power cuts at every device operation of small
//! workloads (every torn variant), at random operations of long ones, on
//! file-like and NOR flash models, checked against a model of the
//! durability contract. Prints the number of crash points explored.

mod support;

use std::io::Write;
use std::time::Instant;

use support::*;

fn setups() -> Vec<Setup> {
    vec![
        Setup::file("file 256/1", 256, 64),
        Setup::file("file 512/1 buffered", 512, 1 << 16),
        Setup::file("file 4096/1", 4096, 1024),
        Setup::nor("nor 256/4", 256, 4, 24, 64),
        Setup::nor("nor 256/16", 256, 16, 24, 1 << 16),
        Setup::nor("nor 512/1", 512, 1, 16, 100),
        Setup::nor("nor 256/4 tight", 256, 4, 6, 1 << 16),
        Setup::nor("nor 512/32", 512, 32, 16, 256),
    ]
}

struct Job {
    setup: Setup,
    seed: u64,
    steps: usize,
    ex: Explore,
}

/// `BLOCKWAL_CRASH_SCALE=n` runs `n` times as many workloads (long local
/// runs); each scale step uses new seeds.
fn scale() -> u64 {
    std::env::var("BLOCKWAL_CRASH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .max(1)
}

fn jobs() -> Vec<Job> {
    let mut v = Vec::new();
    let scale = scale();
    for (si, setup) in setups().into_iter().enumerate() {
        let (small, steps) = if setup.geometry.block_size >= 4096 {
            (4, 40)
        } else {
            (14, 24)
        };
        for seed in 0..small * scale {
            v.push(Job {
                setup,
                seed: seed * 100 + si as u64,
                steps,
                ex: Explore {
                    exhaustive: true,
                    samples: 0,
                    second_every: 40,
                    second_ops: second_ops(setup.geometry.block_size),
                    seed: seed ^ 0xabc,
                },
            });
        }
        for seed in 0..2 * scale {
            v.push(Job {
                setup,
                seed: 10_000 + seed * 100 + si as u64,
                steps: 400,
                ex: Explore {
                    exhaustive: false,
                    samples: 600,
                    second_every: 50,
                    second_ops: second_ops(setup.geometry.block_size),
                    seed: seed ^ 0xdef,
                },
            });
        }
    }
    v
}

fn run_job(j: &Job) -> Tally {
    let ops = gen_ops(j.seed, j.steps, j.setup.geometry.block_size);
    let label = format!(
        "gen_ops({}, {}, {})",
        j.seed, j.steps, j.setup.geometry.block_size
    );
    run_workload(&j.setup, &ops, &j.ex, &label)
}

#[test]
fn crash_points() {
    let t0 = Instant::now();
    let mut jobs = jobs();
    // Unoptimised builds run a tenth of the jobs (CI runs `--release`).
    let full = !cfg!(debug_assertions);
    if !full {
        jobs = jobs.into_iter().step_by(10).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let total = std::sync::Mutex::new(Tally::default());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(j) = jobs.get(i) else { break };
                let t = run_job(j);
                total.lock().unwrap().add(t);
            });
        }
    });
    let t = total.into_inner().unwrap();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "crash points explored: {} ({} after a second crash) in {:.1}s",
        t.points,
        t.second,
        t0.elapsed().as_secs_f64()
    );
    let _ = writeln!(out, "violations: {}", t.violation_count);
    for v in &t.violations {
        let _ = writeln!(out, "  {v}");
    }
    assert_eq!(t.violation_count, 0, "{:#?}", t.violations);
    assert!(
        !full || t.points >= 100_000,
        "only {} crash points",
        t.points
    );
}

/// Runs `ops` on `setup`, cuts power at every operation in every way, and
/// a second time after every third recovery; no violation allowed.
fn assert_survives(setup: &Setup, ops: &[Op]) {
    let ex = Explore {
        exhaustive: true,
        samples: 0,
        second_every: 3,
        second_ops: second_ops(setup.geometry.block_size),
        seed: 7,
    };
    let t = run_workload(setup, ops, &ex, "regression");
    assert!(t.points > 0);
    assert_eq!(t.violation_count, 0, "{:#?}", t.violations);
}

/// Bug: a file keeps any subset of unsynced writes, so a new block's header
/// can reach the device while the records of the block before it (written
/// since the last sync) do not. The break in the chain then shows below
/// the empty block(s), not right below the head, and open failed with
/// "gap between this block and the next one" instead of dropping the
/// header-only head.
#[test]
fn regression_header_only_head_above_lost_records() {
    let setup = Setup::file("file 256/1", 256, 64);
    let ops = [
        Op::Batch(vec![27]),
        Op::Sync,
        Op::Reopen,
        Op::Append(8),
        Op::Append(47),
        Op::Append(50),
    ];
    assert_survives(&setup, &ops);
}

/// Bug: recovery accepted a block with CONT after a block whose open entry
/// was another one (the fragment that finished one large entry was lost,
/// the header of the block continuing the next large entry survived), so
/// the log claimed an entry whose last fragment was never written
/// ("unknown record kind" on read).
#[test]
fn regression_cont_must_continue_the_open_entry() {
    let setup = Setup::file("file 512/1 buffered", 512, 1 << 16);
    let ops = [
        Op::Batch(vec![149, 85, 166, 162, 45]),
        Op::Append(100),
        Op::Append(1049),
    ];
    assert_survives(&setup, &ops);
}

/// Bug (found by the power_cut fuzz target): after a compaction past the
/// end, a large entry spanning several blocks, and a cut that lost the
/// unsynced records under a new block's header, every block of the chain
/// was empty, so no gap showed; the walk went on below the compacted floor
/// and open failed with "an older block of the log is missing". Recovery
/// now checks that each block reaches the `base` of the block after it.
#[test]
fn regression_lost_records_under_empty_blocks_after_compaction() {
    let setup = Setup::file("file 256/1", 256, 64);
    let ops = [
        Op::Batch(vec![448, 3, 22]),
        Op::Compact(112),
        Op::Batch(vec![672, 1, 71]),
    ];
    assert_survives(&setup, &ops);
}

/// Bug (found by the power_cut fuzz target, in the tail cache's new byte
/// ring): an empty entry placed right at the oldest entry's start after the
/// ring wrapped made the ring look unwrapped, and the next entry was
/// written over a cached one: `get` returned wrong bytes, no crash needed.
#[test]
fn regression_cache_empty_entry_after_ring_wrap() {
    let setup = Setup::file("file 256/1", 256, 64);
    let mut ops = vec![Op::Append(102); 5];
    ops.extend([Op::Append(0), Op::Append(11), Op::SetMeta(10, 4)]);
    assert_survives(&setup, &ops);
}

/// A fixed workload written straight against the API, stopping at the
/// first error.
fn drive(w: &mut W) -> Result<(), blockwal::Error<blockwal::SimError>> {
    for i in 1..=40u64 {
        w.append(i, &payload(i, i, (i as usize * 37) % 300))?;
        if i % 3 == 0 {
            w.sync()?;
        }
        if i % 10 == 0 {
            w.set_meta("term", &i.to_le_bytes())?;
            w.truncate(i - 1)?;
            w.append(i - 1, b"again")?;
            w.append(i, b"again")?;
        }
        if i % 17 == 0 {
            w.compact(i - 8)?;
        }
    }
    w.sync()
}

/// The power cut by countdown (`cut_power_at`, the way a user of
/// `SimDevice` crashes a run) leaves exactly the image the checker computes
/// from a clean run's trace, on both models.
#[test]
fn countdown_cut_matches_the_trace() {
    for setup in [
        Setup::file("file 256/1", 256, 64),
        Setup::nor("nor 256/4", 256, 4, 64, 64),
    ] {
        let mut w = blockwal::Wal::open_with(setup.device(), setup.opts).unwrap();
        drive(&mut w).unwrap();
        let clean = w.into_device();
        let total = clean.trace().len();
        for k in (0..total).step_by(5) {
            let mut dev = setup.device();
            dev.cut_power_at(k as u64);
            let mut w = blockwal::Wal::open_with(dev, setup.opts).unwrap();
            assert!(matches!(
                drive(&mut w),
                Err(blockwal::Error::Device(blockwal::SimError::PowerCut))
            ));
            let dev = w.into_device();
            for plan in [
                blockwal::CutPlan::KEEP_ALL,
                blockwal::CutPlan {
                    torn_at: 3,
                    fill: blockwal::TornFill::Garbage,
                    ..blockwal::CutPlan::LOSE_UNSYNCED
                },
            ] {
                let after = dev.after_crash(&plan);
                assert_eq!(
                    after.image(),
                    &clean.crash_image(k, &plan)[..],
                    "{}: cut at {k}",
                    setup.name
                );
                assert!(blockwal::Wal::open_with(after, setup.opts).is_ok());
            }
        }
    }
}
