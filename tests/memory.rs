//! `Wal::estimated_memory` against the heap bytes the log really holds,
//! counted by a global allocator, and memory that does not grow with the log.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use blockwal::{FileDevice, Wal, WalOptions};

/// Counts the bytes currently allocated through it (by requested size).
struct Counting;

static HELD: AtomicIsize = AtomicIsize::new(0);
static CALLS: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; it only
// keeps a running total of the sizes asked for.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Ordering::Relaxed);
        HELD.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Ordering::Relaxed);
        HELD.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        CALLS.fetch_add(1, Ordering::Relaxed);
        HELD.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn held() -> isize {
    HELD.load(Ordering::Relaxed)
}

/// Heap bytes held by `wal` = what the process holds now minus `base`
/// (what it held before the log was opened, device included).
fn check(what: &str, wal: &Wal<FileDevice>, base: isize) -> usize {
    let real = (held() - base).max(0) as usize;
    let est = wal.estimated_memory();
    // Within 10% plus 4 KiB (the Wal struct itself, B-tree node rounding).
    let slack = real / 10 + 4096;
    eprintln!("{what}: estimated {est} B, held {real} B");
    assert!(
        est.abs_diff(real) <= slack,
        "{what}: estimated_memory {est} B, heap really held {real} B"
    );
    real
}

fn payload(i: u64, len: usize) -> Vec<u8> {
    let mut v = i.to_le_bytes().to_vec();
    v.resize(len, (i % 251) as u8);
    v
}

fn run(opts: WalOptions, entries: u64, len: usize) -> Vec<(String, usize)> {
    let dir = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    let dev = FileDevice::open(dir.path(), 64 << 10, 4, u32::MAX).unwrap();
    let base = held();
    let mut wal = Wal::open_with(dev, opts).unwrap();
    out.push(("new".to_string(), check("new log", &wal, base)));
    for i in 1..=entries {
        wal.append(i, &payload(i, len)).unwrap();
        if i % 64 == 0 {
            wal.sync().unwrap();
        }
        if i % 5000 == 0 {
            wal.set_meta("term", &i.to_le_bytes()).unwrap();
        }
        if i == entries / 2 {
            out.push(("half".to_string(), check("half-way", &wal, base)));
        }
    }
    wal.sync().unwrap();
    out.push(("full".to_string(), check("after appends", &wal, base)));
    wal.compact(entries * 3 / 4).unwrap();
    wal.truncate(entries - 10).unwrap();
    out.push(("compacted".to_string(), check("after compact", &wal, base)));
    for i in (entries * 3 / 4 + 1..entries - 10).step_by(97) {
        assert_eq!(wal.get(i).as_deref(), Some(payload(i, len).as_slice()));
    }
    let _ = wal.take_read_error();
    out.push(("read".to_string(), check("after reads", &wal, base)));
    let dev = wal.into_device();
    drop(dev);
    assert!(
        held() - base < 4096,
        "the log freed its memory when dropped"
    );

    let dev = FileDevice::open(dir.path(), 64 << 10, 4, u32::MAX).unwrap();
    let base = held();
    let wal = Wal::open_with(dev, opts).unwrap();
    out.push(("reopened".to_string(), check("after reopen", &wal, base)));
    out
}

/// Steady-state appends allocate nothing per entry: the write buffer and
/// the cache ring are reused; what remains is per block (its offsets, its
/// summary), a few calls per thousands of entries.
fn allocations_per_append() -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let dev = FileDevice::open(dir.path(), 1 << 20, 4, u32::MAX).unwrap();
    let mut wal = Wal::open(dev).unwrap();
    let data = payload(1, 128);
    let batch: Vec<(u64, &[u8])> = (0..64).map(|_| (0u64, data.as_slice())).collect();
    let mut next = 1u64;
    let mut run = |wal: &mut Wal<FileDevice>, n: u64| {
        for _ in 0..n / 64 {
            for k in 0..32 {
                wal.append(next + k, &data).unwrap();
            }
            let b: Vec<(u64, &[u8])> = batch[32..]
                .iter()
                .enumerate()
                .map(|(k, (_, d))| (next + 32 + k as u64, *d))
                .collect();
            wal.append_batch(&b).unwrap();
            wal.sync().unwrap();
            next += 64;
        }
        wal.compact(next - 1000).unwrap();
    };
    run(&mut wal, 20_000);
    let n = 64_000;
    let before = CALLS.load(Ordering::Relaxed);
    run(&mut wal, n);
    // The test's own batch vectors: one allocation per 64 entries.
    let calls = CALLS.load(Ordering::Relaxed) - before - (n / 64) as isize;
    calls as f64 / n as f64
}

#[test]
fn estimated_memory_is_truthful_and_bounded() {
    let per = allocations_per_append();
    eprintln!("allocations per append in steady state: {per:.4}");
    assert!(per < 0.01, "{per} allocations per append");

    let default = WalOptions::default();
    // Default options: the tail cache fills to its byte bound.
    let big = run(default, 40_000, 512);
    let small_cache = default.cache_bytes(256 << 10);
    // A small cache: memory stays put however long the log gets.
    let a = run(small_cache, 20_000, 128);
    let b = run(small_cache, 80_000, 128);
    let full = |r: &[(String, usize)]| r.iter().find(|(k, _)| k == "full").unwrap().1;
    assert!(
        full(&b) < full(&a) + (64 << 10),
        "memory grew with the log: {} B for 20k entries, {} B for 80k",
        full(&a),
        full(&b)
    );
    assert!(full(&big) <= default.cache_bytes + default.write_buffer * 2 + (256 << 10));
    // Entries of empty payload are bounded too (the cache charges bookkeeping).
    let c = run(small_cache, 100_000, 0);
    assert!(full(&c) < (256 << 10) + default.write_buffer * 2 + (256 << 10));
}
