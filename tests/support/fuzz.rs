//! The logic of the fuzz targets (`fuzz/fuzz_targets/*.rs` include this
//! module), also run briefly by proptest twins in `tests/fuzz_twins.rs`.

use std::cell::RefCell;
use std::collections::HashMap;

use blockwal::{CutPlan, Geometry, MemDevice, RecoveryMode, Survivors, TornFill, Wal, WalOptions};

use super::{check_crash, record, small_opts, Op, Setup, State};

/// Geometries images are opened with.
const GEOMETRIES: [(u32, u32, Option<u8>); 4] = [
    (256, 1, None),
    (512, 4, Some(0xFF)),
    (256, 16, Some(0xFF)),
    (1024, 1, None),
];

fn opts() -> WalOptions {
    small_opts(64).read_window(96)
}

thread_local! {
    static VALID: RefCell<HashMap<(usize, u8), Vec<u8>>> = RefCell::new(HashMap::new());
}

/// A valid log image of geometry `g`: a short workload chosen by `seed`
/// (appends across blocks, a large entry, truncate, compact, metadata).
pub fn valid_image(g: Geometry, seed: u8) -> Vec<u8> {
    let mut w = match Wal::open_with(MemDevice::with_geometry(g, g.block_count), opts()) {
        Ok(w) => w,
        Err(e) => panic!("open a fresh device: {e}"),
    };
    let bs = g.block_size as usize;
    let mut x = u64::from(seed) + 1;
    let mut i = 1u64;
    for step in 0..(12 + seed as usize % 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = match x % 7 {
            0 => bs + (x >> 8) as usize % bs,
            _ => (x >> 8) as usize % (bs / 3),
        };
        let data: Vec<u8> = (0..len).map(|k| (k as u64 ^ i ^ x) as u8).collect();
        if w.append(i, &data).is_err() {
            break;
        }
        i += 1;
        match step % 5 {
            1 => {
                let _ = w.sync();
            }
            2 if seed & 1 == 1 => {
                let _ = w.set_meta("term", &i.to_le_bytes());
            }
            3 if seed & 2 == 2 && i > 3 => {
                let _ = w.truncate(i - 2);
                i -= 2;
            }
            4 if seed & 4 == 4 && i > 4 => {
                let _ = w.compact(i - 4);
            }
            _ => {}
        }
    }
    let _ = w.sync();
    w.into_device().image().to_vec()
}

/// Fuzz target (a): open an arbitrary image (raw bytes, or a valid log with
/// byte edits), read everything, append on it, reopen, read again. Must
/// return typed errors or a valid prefix, never panic, loop or allocate
/// without bound.
pub fn open_image(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let gi = data[0] as usize % GEOMETRIES.len();
    let (bs, p, ev) = GEOMETRIES[gi];
    let mode = data[1];
    let body = &data[2..];
    let (g, img) = if mode & 1 == 0 {
        let blocks = (body.len() / bs as usize).clamp(4, 32) as u32;
        let g = Geometry {
            block_size: bs,
            program_size: p,
            block_count: blocks,
            erase_value: ev,
        };
        let mut img = body.to_vec();
        img.resize(g.capacity() as usize, ev.unwrap_or(0));
        (g, img)
    } else {
        let g = Geometry {
            block_size: bs,
            program_size: p,
            block_count: 12,
            erase_value: ev,
        };
        let seed = (mode >> 1) % 16;
        let mut img = VALID.with(|v| {
            v.borrow_mut()
                .entry((gi, seed))
                .or_insert_with(|| valid_image(g, seed))
                .clone()
        });
        let len = img.len();
        for e in body.chunks(3) {
            if e.len() < 3 {
                break;
            }
            let at =
                (usize::from(e[0]) | usize::from(e[1]) << 8 | usize::from(e[2] & 0xF0) << 12) % len;
            if e[2] & 1 == 0 {
                img[at] ^= e[2] | 1;
            } else {
                img[at] = e[1];
            }
        }
        (g, img)
    };
    let Ok(mut w) = Wal::open_with(MemDevice::from_image(g, img), opts()) else {
        return;
    };
    read_all(&w);
    let n = w.next_index().unwrap_or(1);
    if n == u64::MAX || w.append(n, b"fuzz").is_err() || w.sync().is_err() {
        return;
    }
    // A corrupted image (unlike a crash) can hide the header of the block
    // with the highest sequence number, so the new block may reuse it and
    // revive that block's stale records: the reopen may then see another
    // log or a typed error, but must not panic either.
    if let Ok(w) = Wal::open_with(w.into_device(), opts()) {
        read_all(&w);
    }
}

/// Reads every entry and key of a log: typed errors are fine, a hole inside
/// `first..=last` is not.
fn read_all(w: &Wal<MemDevice>) {
    if let (Some(f), Some(l)) = (w.first_index(), w.last_index()) {
        assert!(f <= l, "first {f} > last {l}");
        for i in f..=l.min(f + 100_000) {
            match w.try_get(i) {
                Ok(Some(_)) => {}
                Ok(None) => panic!("entry {i} missing inside {f}..={l}"),
                Err(_) => break,
            }
        }
        let _ = w.iter().take(100_000).count();
        let _ = w.take_read_error();
        let _ = w.read_range(l.saturating_sub(3)..);
    }
    for k in w.meta_keys() {
        assert!(w.get_meta(k).is_some(), "listed key {k} has no value");
    }
}

/// The setups of fuzz target (b).
pub fn setups() -> [Setup; 5] {
    [
        Setup::file("file 256/1", 256, 64),
        Setup::file("file 512/1", 512, 1 << 16),
        Setup::nor("nor 256/4", 256, 4, 16, 64),
        Setup::nor("nor 256/16", 256, 16, 16, 1 << 16),
        Setup::nor("nor 512/1", 512, 1, 12, 100),
    ]
}

/// Decodes a workload from bytes (two per step).
pub fn decode_ops(b: &[u8], block_size: u32) -> Vec<Op> {
    let bs = block_size as usize;
    b.chunks(2)
        .take(64)
        .map(|c| {
            let x = c.get(1).copied().unwrap_or(0) as usize;
            let len = if x >= 240 {
                bs + (x - 240) * bs / 8
            } else {
                x * bs / 480
            };
            match c[0] % 16 {
                0..=4 => Op::Append(len),
                5 => Op::Batch(vec![len, x % 9, (x * 7) % (bs / 3)]),
                6..=8 => Op::Sync,
                9 => Op::Flush,
                10 => Op::Truncate(x as u16),
                11 => Op::Compact(x as u16),
                12 => Op::SetMeta(c[0] / 16, x % (bs / 6)),
                13 => Op::RemoveMeta(c[0] / 16),
                _ => Op::Reopen,
            }
        })
        .collect()
}

/// Decodes a cut plan from 3 bytes.
pub fn decode_plan(b: [u8; 3]) -> CutPlan {
    CutPlan {
        survivors: match b[0] % 4 {
            0 => Survivors::All,
            1 => Survivors::None,
            2 => Survivors::Random,
            _ => Survivors::Mask(u64::from(b[1]) * 0x0101_0101_0101_0101),
        },
        // Pieces of 64 B, a 512 B sector or whole writes (file-like).
        page: [0, 64, 512, 0][usize::from(b[0] / 64)],
        torn_at: usize::from(b[2] & 0x7f) * 2,
        // Odd: any subset of the units in flight, not only a prefix.
        scatter: if b[2] & 0x80 != 0 {
            Survivors::Random
        } else {
            Survivors::None
        },
        fill: [
            TornFill::Old,
            TornFill::Zeros,
            TornFill::Garbage,
            TornFill::GarbageOne,
            TornFill::Mixed,
        ][usize::from(b[0] / 4) % 5],
        seed: u64::from(b[1]),
    }
}

/// Fuzz target (b): a workload decoded from the bytes runs on a SimDevice,
/// power is cut at the operation and in the way the bytes say, the log is
/// reopened and checked against the model. `Err` is a contract violation.
pub fn power_cut(data: &[u8]) -> Result<(), String> {
    if data.len() < 6 {
        return Ok(());
    }
    let setup = setups()[data[0] as usize % 5];
    let ops = decode_ops(&data[6..], setup.geometry.block_size);
    let rec = record(&setup, setup.device(), State::default(), &ops, 0)
        .map_err(|e| format!("{}: clean run of {ops:?}: {e}", setup.name))?;
    let total = rec.dev.trace().len();
    let k = (usize::from(data[1]) | usize::from(data[2]) << 8) % (total + 1);
    let plan = decode_plan([data[3], data[4], data[5]]);
    let img = rec.dev.crash_image(k, &plan);
    check_crash(&setup, img, &rec.state_at(k as u64))
        .map(|_| ())
        .map_err(|e| format!("{}: {ops:?}: cut at op {k} ({plan:?}): {e}", setup.name))
}

/// A damaged valid log (format version 2) from fuzz input: geometry byte,
/// workload seed, then (offset lo, offset hi, mask) triples to flip.
pub fn damaged_image(data: &[u8]) -> Option<(Geometry, Vec<u8>)> {
    if data.len() < 2 {
        return None;
    }
    let g = Geometry {
        block_size: 512,
        program_size: [1, 4, 8][data[0] as usize % 3],
        block_count: 12,
        erase_value: [None, Some(0xFF)][(data[0] as usize / 3) % 2],
    };
    let mut img = valid_image(g, data[1] % 16);
    let len = img.len();
    for e in data[2..].chunks_exact(3) {
        let at = (usize::from(e[0]) | usize::from(e[1]) << 8) % len;
        img[at] ^= e[2] | 1;
    }
    Some((g, img))
}

/// Salvage on a damaged valid log: the salvage open either fails with a
/// typed error or opens a log that a strict open then accepts as the same
/// log (the cut is durable).
pub fn salvage(data: &[u8]) -> Result<(), String> {
    match damaged_image(data) {
        Some((g, img)) => salvage_agrees(g, img),
        None => Ok(()),
    }
}

/// The check of [`salvage`] on one image.
pub fn salvage_agrees(g: Geometry, img: Vec<u8>) -> Result<(), String> {
    let opts = WalOptions::small();
    let Ok(w) = Wal::open_mode(MemDevice::from_image(g, img), opts, RecoveryMode::Salvage) else {
        return Ok(());
    };
    let (first, last) = (w.first_index(), w.last_index());
    let w = Wal::open_with(w.into_device(), opts)
        .map_err(|e| format!("strict open after salvage: {e}"))?;
    if (w.first_index(), w.last_index()) != (first, last) {
        return Err(format!(
            "salvage opened {first:?}..={last:?}, the strict reopen {:?}..={:?}",
            w.first_index(),
            w.last_index()
        ));
    }
    Ok(())
}
