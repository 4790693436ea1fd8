//! The conformance suite, written once and run on every device: host tests
//! (`tests/conformance.rs`), the Cortex-M target in QEMU and OPFS in Chromium.
//! `no_std`: it reports failures as values instead of panicking.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::{BlockDevice, Error, Wal};

/// A failed check: which test, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Test name.
    pub test: &'static str,
    /// What differed.
    pub what: String,
}

type Check = Result<(), String>;

/// A named suite test.
type Test<D> = (&'static str, fn(D) -> Check);

macro_rules! ensure {
    ($c:expr, $($m:tt)+) => {
        if !$c {
            return Err(format!($($m)+));
        }
    };
}

macro_rules! ensure_eq {
    ($a:expr, $b:expr) => {
        match (&$a, &$b) {
            (a, b) => {
                if a != b {
                    return Err(format!(
                        "{} = {:?}, expected {:?} (line {})",
                        stringify!($a),
                        a,
                        b,
                        line!()
                    ));
                }
            }
        }
    };
}

fn io<T, E: core::fmt::Display>(r: Result<T, Error<E>>, what: &str) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

fn reopen<D: BlockDevice>(w: Wal<D>) -> Result<Wal<D>, String> {
    io(Wal::open(w.into_device()), "reopen")
}

/// Deterministic payload of entry `i` (length varies with `len`).
pub fn payload(i: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|k| {
            (i as usize)
                .wrapping_mul(31)
                .wrapping_add(k.wrapping_mul(7)) as u8
        })
        .collect()
}

/// Checks the whole log against the model `[first, first + len)` with
/// payloads from `lens`, via get, read_range and iter.
fn same<D: BlockDevice>(w: &Wal<D>, first: u64, lens: &[usize]) -> Check {
    ensure_eq!(w.len(), lens.len());
    if lens.is_empty() {
        ensure!(
            w.first_index().is_none() && w.last_index().is_none(),
            "empty log reports indices"
        );
        ensure!(w.iter().next().is_none(), "empty log iterates");
        return Ok(());
    }
    ensure_eq!(w.first_index(), Some(first));
    ensure_eq!(w.last_index(), Some(first + lens.len() as u64 - 1));
    for (k, len) in lens.iter().enumerate() {
        let i = first + k as u64;
        let got = io(w.try_get(i), "get")?;
        ensure!(
            got.as_deref() == Some(&payload(i, *len)[..]),
            "entry {i}: wrong bytes (len {:?} vs {len})",
            got.map(|g| g.len())
        );
    }
    ensure!(
        io(w.try_get(first.wrapping_sub(1)), "get")?.is_none() || first == 0,
        "entry before first"
    );
    ensure!(
        io(w.try_get(first + lens.len() as u64), "get")?.is_none(),
        "entry after last"
    );
    let all: Vec<u64> = w.iter().map(|e| e.index).collect();
    ensure_eq!(all.len(), lens.len());
    ensure!(w.take_read_error().is_none(), "iter hit a read error");
    let r = w.read_range(first + 1..first + 3);
    ensure_eq!(r.len(), lens.len().saturating_sub(1).min(2));
    Ok(())
}

fn empty_and_first_index<D: BlockDevice>(d: D) -> Check {
    let mut w = io(Wal::open(d), "open")?;
    same(&w, 0, &[])?;
    io(w.append(5, b"a"), "append 5")?;
    ensure_eq!(w.first_index(), Some(5));
    let e = w.append(7, b"x");
    ensure!(
        matches!(
            e,
            Err(Error::NonContiguous {
                expected: 6,
                got: 7
            })
        ),
        "gap accepted: {e:?}"
    );
    ensure!(
        matches!(w.append(5, b"x"), Err(Error::NonContiguous { .. })),
        "repeat accepted"
    );
    io(w.append(6, &payload(6, 3)), "append 6")?;
    io(w.sync(), "sync")?;
    let w = reopen(w)?;
    ensure_eq!(w.len(), 2);
    ensure_eq!(w.get(5).as_deref(), Some(&b"a"[..]));
    ensure_eq!(w.next_index(), Some(7));
    Ok(())
}

fn batches<D: BlockDevice>(d: D) -> Check {
    let mut w = io(Wal::open(d), "open")?;
    let owned: Vec<(u64, Vec<u8>)> = (1..=50).map(|i| (i, payload(i, 10 + i as usize))).collect();
    io(w.append_batch(&owned), "owned batch")?;
    let borrowed: Vec<(u64, &[u8])> = vec![(51, &b"fifty-one"[..]), (52, b"52")];
    io(w.append_batch(&borrowed), "borrowed batch")?;
    let bad: Vec<(u64, &[u8])> = vec![(53, b"x"), (55, b"y")];
    ensure!(
        matches!(
            w.append_batch(&bad),
            Err(Error::NonContiguous {
                expected: 54,
                got: 55
            })
        ),
        "gap in batch accepted"
    );
    ensure_eq!(w.last_index(), Some(52));
    io(w.sync(), "sync")?;
    let w = reopen(w)?;
    ensure_eq!(w.len(), 52);
    ensure_eq!(w.get(51).as_deref(), Some(&b"fifty-one"[..]));
    ensure_eq!(w.get(20).as_deref(), Some(&payload(20, 30)[..]));
    Ok(())
}

fn many_across_blocks_and_cache_eviction<D: BlockDevice>(d: D) -> Check {
    let mut w = io(Wal::open(d), "open")?;
    let bs = w.geometry().block_size as usize;
    let lens: Vec<usize> = (0..300).map(|k| (k * 37) % (bs / 3).max(8)).collect();
    for (k, len) in lens.iter().enumerate() {
        io(
            w.append(100 + k as u64, &payload(100 + k as u64, *len)),
            "append",
        )?;
        if k % 17 == 0 {
            io(w.sync(), "sync")?;
        }
    }
    w.set_max_cache_entries(3);
    same(&w, 100, &lens)?;
    io(w.sync(), "sync")?;
    let w = reopen(w)?;
    same(&w, 100, &lens)
}

fn truncate_semantics<D: BlockDevice>(d: D) -> Check {
    let mut w = io(Wal::open(d), "open")?;
    let mut lens: Vec<usize> = (0..40).map(|k| 20 + k * 3).collect();
    for (k, len) in lens.iter().enumerate() {
        io(
            w.append(k as u64 + 1, &payload(k as u64 + 1, *len)),
            "append",
        )?;
    }
    io(w.truncate(100), "truncate past end")?;
    same(&w, 1, &lens)?;
    io(w.truncate(31), "truncate")?;
    lens.truncate(30);
    same(&w, 1, &lens)?;
    let mut w = reopen(w)?;
    same(&w, 1, &lens)?;
    // Replace the tail, as a Raft follower does on a conflict.
    io(w.append(31, &payload(31, 5)), "append after truncate")?;
    lens.push(5);
    io(w.truncate(29), "truncate again")?;
    lens.truncate(28);
    for i in 29..35u64 {
        io(w.append(i, &payload(i, 7)), "re-append")?;
        lens.push(7);
    }
    io(w.sync(), "sync")?;
    let mut w = reopen(w)?;
    same(&w, 1, &lens)?;
    io(w.truncate(0), "truncate below first")?;
    same(&w, 1, &[])?;
    ensure_eq!(w.next_index(), Some(1));
    let mut w = reopen(w)?;
    same(&w, 1, &[])?;
    io(w.append(1, &payload(1, 9)), "append after full truncate")?;
    io(w.sync(), "sync")?;
    let w = reopen(w)?;
    same(&w, 1, &[9])
}

fn compact_semantics<D: BlockDevice>(d: D) -> Check {
    let mut w = io(Wal::open(d), "open")?;
    let bs = w.geometry().block_size as usize;
    let lens: Vec<usize> = (0..120).map(|k| (k * 13) % (bs / 4).max(4)).collect();
    for (k, len) in lens.iter().enumerate() {
        io(
            w.append(k as u64 + 10, &payload(k as u64 + 10, *len)),
            "append",
        )?;
    }
    io(w.compact(5), "compact below first")?;
    same(&w, 10, &lens)?;
    io(w.compact(69), "compact")?;
    same(&w, 70, &lens[60..])?;
    let mut w = reopen(w)?;
    same(&w, 70, &lens[60..])?;
    io(w.compact(200), "compact past last")?;
    same(&w, 0, &[])?;
    ensure_eq!(w.next_index(), Some(201));
    ensure!(
        matches!(
            w.append(130, b"x"),
            Err(Error::NonContiguous { expected: 201, .. })
        ),
        "old index accepted after snapshot"
    );
    let mut w = reopen(w)?;
    ensure_eq!(w.next_index(), Some(201));
    io(w.append(201, &payload(201, 3)), "append after snapshot")?;
    io(w.sync(), "sync")?;
    let w = reopen(w)?;
    same(&w, 201, &[3])
}

fn compact_fresh_log<D: BlockDevice>(d: D) -> Check {
    let mut w = io(Wal::open(d), "open")?;
    io(w.compact(41), "compact empty")?;
    ensure_eq!(w.next_index(), Some(42));
    let mut w = reopen(w)?;
    ensure_eq!(w.next_index(), Some(42));
    io(w.append(42, b"42"), "append")?;
    io(w.sync(), "sync")?;
    let w = reopen(w)?;
    ensure_eq!(w.first_index(), Some(42));
    ensure_eq!(w.get(42).as_deref(), Some(&b"42"[..]));
    Ok(())
}

fn meta_keys<D: BlockDevice>(d: D) -> Check {
    let mut w = io(Wal::open(d), "open")?;
    io(w.set_meta("term", b"1"), "set")?;
    io(w.set_meta("vote", b"node-1"), "set")?;
    ensure_eq!(w.get_meta("vote"), Some(&b"node-1"[..]));
    let mut w = reopen(w)?;
    ensure_eq!(w.get_meta("term"), Some(&b"1"[..]));
    // Many updates: forces the metadata area to roll over several times.
    for t in 2..200u32 {
        io(w.set_meta("term", format!("{t}").as_bytes()), "set term")?;
    }
    io(w.remove_meta("vote"), "remove")?;
    io(w.remove_meta("absent"), "remove absent")?;
    ensure_eq!(w.get_meta("vote"), None);
    let mut w = reopen(w)?;
    ensure_eq!(w.get_meta("term"), Some(&b"199"[..]));
    ensure_eq!(w.get_meta("vote"), None);
    let long = String::from_utf8(vec![b'k'; 256]).unwrap_or_default();
    ensure!(
        matches!(w.set_meta(&long, b"v"), Err(Error::MetaTooLarge { .. })),
        "256-byte key accepted"
    );
    let huge = vec![7u8; w.geometry().block_size as usize];
    ensure!(
        matches!(w.set_meta("big", &huge), Err(Error::MetaTooLarge { .. })),
        "block-sized value accepted"
    );
    ensure_eq!(w.get_meta("big"), None);
    let w = reopen(w)?;
    ensure_eq!(w.get_meta("term"), Some(&b"199"[..]));
    Ok(())
}

fn large_entries<D: BlockDevice>(d: D, big: usize) -> Check {
    let mut w = io(Wal::open(d), "open")?;
    let bs = w.geometry().block_size as usize;
    let lens = vec![10, 3 * bs + 17, 5, big, bs - 1, bs, 1];
    for (k, len) in lens.iter().enumerate() {
        io(
            w.append(k as u64 + 1, &payload(k as u64 + 1, *len)),
            "append large",
        )?;
    }
    w.set_max_cache_entries(0);
    same(&w, 1, &lens)?;
    io(w.sync(), "sync")?;
    let mut w = reopen(w)?;
    same(&w, 1, &lens)?;
    io(w.truncate(4), "truncate inside large")?;
    io(w.compact(1), "compact")?;
    let w = reopen(w)?;
    same(&w, 2, &lens[1..3])
}

fn reopen_after_each_op<D: BlockDevice>(d: D) -> Check {
    let mut w = io(Wal::open(d), "open")?;
    let mut lens = Vec::new();
    let mut first = 1u64;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let bs = w.geometry().block_size as u64;
    for step in 0..120u32 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let next = first + lens.len() as u64;
        match rng % 10 {
            0 if !lens.is_empty() => {
                let cut = (rng >> 8) % lens.len() as u64;
                io(w.truncate(first + cut), "truncate")?;
                lens.truncate(cut as usize);
            }
            1 if lens.len() > 4 => {
                let k = (rng >> 8) % (lens.len() as u64 - 2);
                io(w.compact(first + k), "compact")?;
                lens.drain(..=k as usize);
                first += k + 1;
            }
            2 => io(w.set_meta("step", &step.to_le_bytes()), "meta")?,
            _ => {
                let n = 1 + (rng >> 20) % 6;
                for i in next..next + n {
                    let len = ((rng >> 32) % (bs / 2)) as usize;
                    io(w.append(i, &payload(i, len)), "append")?;
                    lens.push(len);
                }
                io(w.sync(), "sync")?;
            }
        }
        w = reopen(w)?;
        same(&w, first, &lens).map_err(|e| format!("after step {step}: {e}"))?;
    }
    Ok(())
}

fn steady_state_reuses_blocks<D: BlockDevice>(d: D) -> Check {
    let mut w = io(Wal::open(d), "open")?;
    let bs = w.geometry().block_size as usize;
    let len = bs / 5;
    let mut count_after_warmup = 0;
    for i in 1..=400u64 {
        io(w.append(i, &payload(i, len)), "append")?;
        if i % 10 == 0 {
            io(w.sync(), "sync")?;
            io(w.compact(i - 5), "compact")?;
        }
        if i == 100 {
            count_after_warmup = w.geometry().block_count;
        }
    }
    ensure!(
        w.geometry().block_count <= count_after_warmup + 1,
        "device grew from {count_after_warmup} to {} blocks under append+compact",
        w.geometry().block_count
    );
    let w = reopen(w)?;
    ensure_eq!(w.first_index(), Some(396));
    Ok(())
}

fn full_device_recovers<D: BlockDevice>(d: D) -> Check {
    let mut w = io(Wal::open(d), "open")?;
    let bs = w.geometry().block_size as usize;
    let start_blocks = w.geometry().block_count;
    let limit = 64 * bs as u64 + (1 << 20);
    let mut i = 1u64;
    let mut bytes = 0u64;
    let full = loop {
        match w.append(i, &payload(i, bs / 3)) {
            Ok(()) => {}
            Err(Error::Full) => break true,
            Err(e) => return Err(format!("append {i}: {e}")),
        }
        i += 1;
        bytes += bs as u64 / 3;
        if bytes > limit {
            break false;
        }
    };
    io(w.sync(), "sync")?;
    if full {
        // Usable after space is freed: compaction makes room again.
        io(w.set_meta("vote", b"still works"), "meta when full")?;
        io(w.compact(i - 2), "compact when full")?;
        io(w.append(i, &payload(i, bs / 3)), "append after compact")?;
        io(w.sync(), "sync")?;
        let w = reopen(w)?;
        ensure_eq!(w.last_index(), Some(i));
        ensure_eq!(w.get_meta("vote"), Some(&b"still works"[..]));
    } else {
        ensure!(
            w.geometry().block_count > start_blocks,
            "neither full nor grown after {bytes} bytes"
        );
    }
    Ok(())
}

fn bad_inputs<D: BlockDevice>(d: D) -> Check {
    let mut w = io(Wal::open(d), "open")?;
    ensure!(
        matches!(w.append(u64::MAX, b"x"), Err(Error::NonContiguous { .. })),
        "u64::MAX accepted"
    );
    io(w.append(u64::MAX - 1, b"last"), "append u64::MAX - 1")?;
    ensure!(
        matches!(w.append(u64::MAX, b"x"), Err(Error::NonContiguous { .. })),
        "index overflow accepted"
    );
    ensure!(
        w.get(0).is_none() && w.get(u64::MAX).is_none(),
        "out-of-range get"
    );
    let (lo, hi) = (5, 1);
    ensure!(w.read_range(lo..hi).is_empty(), "reversed range");
    io(w.sync(), "sync")?;
    let w = reopen(w)?;
    ensure_eq!(w.get(u64::MAX - 1).as_deref(), Some(&b"last"[..]));
    Ok(())
}

/// Runs every test on fresh devices from `make`; `big` is the size of the
/// largest entry to try (1 MiB where the device can hold it). Returns the
/// number of tests run.
pub fn run_all<D: BlockDevice>(make: &mut dyn FnMut() -> D, big: usize) -> Result<usize, Failure> {
    let tests: [Test<D>; 11] = [
        ("empty_and_first_index", empty_and_first_index),
        ("batches", batches),
        (
            "many_across_blocks_and_cache_eviction",
            many_across_blocks_and_cache_eviction,
        ),
        ("truncate_semantics", truncate_semantics),
        ("compact_semantics", compact_semantics),
        ("compact_fresh_log", compact_fresh_log),
        ("meta_keys", meta_keys),
        ("reopen_after_each_op", reopen_after_each_op),
        ("steady_state_reuses_blocks", steady_state_reuses_blocks),
        ("full_device_recovers", full_device_recovers),
        ("bad_inputs", bad_inputs),
    ];
    for (name, t) in tests {
        t(make()).map_err(|what| Failure { test: name, what })?;
    }
    large_entries(make(), big).map_err(|what| Failure {
        test: "large_entries",
        what,
    })?;
    Ok(tests.len() + 1)
}
