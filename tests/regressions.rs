//! Regression tests for the findings of issue 10 against the write path and
//! the simulator's harder models: each failed before its fix.

mod support;

use blockwal::{
    BlockDevice, CutPlan, Error, Geometry, MetaLimit, SimDevice, SimOp, SimOptions, Survivors, Wal,
};
use support::*;

/// The operation that programs block `block`'s summary (the first program
/// ending exactly at the block's end).
fn summary_op(rec: &Recording, block: u32) -> (usize, usize) {
    let bs = u64::from(rec.dev.geometry().block_size);
    let end = (u64::from(block) + 1) * bs;
    rec.dev
        .trace()
        .iter()
        .enumerate()
        .find_map(|(k, o)| match o {
            SimOp::Program { offset, data } if offset + data.len() as u64 == end => {
                Some((k, data.len()))
            }
            _ => None,
        })
        .expect("the workload seals the block")
}

/// Issue 10, NOR: a cut while block 0's summary is programmed leaves the
/// trailer's units done and the offset table's still erased. Open trusted
/// the trailer's own CRC, and synced entry 1 became unreadable ("entry
/// offset outside the block"). A summary is now trusted only when its table
/// validates; otherwise the block is replayed record by record.
#[test]
fn regression_nor_torn_summary_trailer_without_table() {
    let setup = Setup::nor("nor 256/4", 256, 4, 8, 64);
    let ops = [
        Op::Append(10),
        Op::Append(10),
        Op::Append(10),
        Op::Sync,
        Op::Append(200),
    ];
    let rec = record(&setup, setup.device(), State::default(), &ops, 0).unwrap();
    let (k, len) = summary_op(&rec, 0);
    let units = len / 4;
    // The trailer (last 40 bytes, 10 units) done; the table still erased.
    let plan = CutPlan {
        scatter: Survivors::Range(units - 10, usize::MAX),
        ..CutPlan::KEEP_ALL
    };
    let s = rec.state_at(k as u64);
    assert!(s.required.contains_key(&1));
    check_crash(&setup, rec.dev.crash_image(k, &plan), &s).unwrap();
}

/// Issue 10, files: a page cache writes dirty pages back independently. Of
/// an unsynced summary spanning two 512-byte sectors only the one holding
/// the trailer reached the disk: the trailer validated, the table was
/// stale, and entries of a sealed block were unreadable.
#[test]
fn regression_file_summary_across_pages_half_written_back() {
    let setup = Setup::file("file 4096/1", 4096, 1 << 16);
    let mut ops: Vec<Op> = (0..150).map(|_| Op::Append(0)).collect();
    ops.push(Op::Sync);
    ops.extend((0..40).map(|_| Op::Append(60)));
    let rec = record(&setup, setup.device(), State::default(), &ops, 0).unwrap();
    let (k, len) = summary_op(&rec, 0);
    assert!(len > 512, "the summary spans two sectors");
    // Cut right after the summary was issued: it is the only unsynced
    // write; of its two 512-byte pieces only the last survives.
    assert_eq!(rec.dev.unsynced_pieces(k + 1, 512), 2);
    let plan = CutPlan {
        survivors: Survivors::Mask(0b10),
        page: 512,
        ..CutPlan::KEEP_ALL
    };
    let s = rec.state_at(k as u64 + 1);
    assert!(s.required.contains_key(&150));
    check_crash(&setup, rec.dev.crash_image(k + 1, &plan), &s).unwrap();
}

/// A fixed-size file-like device (no growth).
fn fixed(block_size: u32, program_size: u32, blocks: u32, erase: Option<u8>) -> SimDevice {
    SimDevice::new(SimOptions::new(Geometry {
        block_size,
        program_size,
        block_count: blocks,
        erase_value: erase,
    }))
}

/// Appends empty entries until `Full`; returns the next index.
fn fill(w: &mut Wal<SimDevice>, mut i: u64) -> u64 {
    loop {
        match w.append(i, b"") {
            Ok(()) => i += 1,
            Err(Error::Full) => return i,
            Err(e) => panic!("append {i}: {e}"),
        }
        assert!(i < 100_000, "never full");
    }
}

/// Issue 10, liveness: a full log could not be compacted. 256 B blocks, 4
/// blocks: fill, sync, truncate, fill again, sync; then `compact` and
/// `truncate` returned `Full` (also after a reopen), so a Raft node whose
/// log filled up was dead. Appends now leave a reserve that truncate,
/// compact and meta changes may use (FORMAT.md, "Space"); a device too
/// small for the reserve (4 blocks) is refused at open.
#[test]
fn regression_full_log_can_always_be_compacted() {
    for erase in [None, Some(0xFF)] {
        let p = if erase.is_some() { 4 } else { 1 };
        assert!(matches!(
            Wal::open(fixed(256, p, 4, erase)),
            Err(Error::Geometry(_))
        ));
        let mut w = Wal::open(fixed(256, p, 5, erase)).unwrap();
        let next = fill(&mut w, 1);
        w.sync().unwrap();
        w.truncate(next - 2).unwrap();
        let next = fill(&mut w, next - 2);
        w.sync().unwrap();
        let full = w.into_device();
        let reopen = || Wal::open(full.restarted()).unwrap();
        // Each call on its own, on the full log reopened.
        let mut w = reopen();
        w.compact(next - 2).unwrap();
        let mut w = reopen();
        w.truncate(next - 1).unwrap();
        let mut w = reopen();
        w.set_meta("term", b"7").unwrap();
        // In a row, on one log: the control calls, then a compaction frees
        // room for appends again, and all of it survives a reopen.
        let mut w = reopen();
        w.truncate(next - 1).unwrap();
        w.compact(next - 3).unwrap();
        w.set_meta("term", b"7").unwrap();
        w.set_meta("vote", b"3").unwrap();
        w.compact(next - 2).unwrap();
        w.sync().unwrap();
        assert!(w.is_empty(), "{erase:?}");
        let again = fill(&mut w, next - 1);
        assert!(again > next, "compaction freed room ({erase:?})");
        w.sync().unwrap();
        let w = Wal::open(w.into_device().restarted()).unwrap();
        assert_eq!(w.get_meta("term"), Some(&b"7"[..]));
        assert_eq!(w.get_meta("vote"), Some(&b"3"[..]));
        assert_eq!(w.next_index(), Some(again));
    }
}

/// Issue 10: with 128 B blocks (accepted by `Geometry::validate`) one
/// append of 17 bytes opened a new empty block and recursed until the
/// device could not grow (65,536 blocks, then `Full`). Such geometries are
/// now refused at open, and every accepted one places any entry in a
/// bounded number of blocks.
#[test]
fn regression_one_append_cannot_grow_the_device_without_bound() {
    let cfg = SimOptions::new(Geometry {
        block_size: 128,
        program_size: 1,
        block_count: 4,
        erase_value: None,
    })
    .max_blocks(1 << 16);
    let dev = SimDevice::new(cfg);
    let mon = dev.monitor();
    assert!(matches!(Wal::open(dev), Err(Error::Geometry(_))));
    assert_eq!(mon.ops(), 0, "nothing written");
    // The smallest accepted blocks, every program unit: entries of every
    // length up to 3 blocks take a bounded number of blocks.
    for p in [1u32, 4, 16, 32, 64] {
        let bs = 256.max(4 * p);
        let cfg = SimOptions::new(Geometry {
            block_size: bs,
            program_size: p,
            block_count: 4,
            erase_value: None,
        })
        .max_blocks(1 << 16)
        .record(false);
        let mut w = Wal::open(SimDevice::new(cfg)).unwrap();
        for (i, len) in (0..3 * bs as usize).step_by(7).enumerate() {
            let before = w.geometry().block_count;
            w.append(i as u64 + 1, &vec![7u8; len]).unwrap();
            let grown = w.geometry().block_count - before;
            assert!(
                grown <= 8 + 4 * len as u32 / bs,
                "P {p}: {len} B grew {grown} blocks"
            );
            w.compact(i as u64).unwrap();
        }
    }
}

/// Issue 10: division by zero in `reserve_entry` on geometries 160 B / 32 B
/// units and 192 B / 64 B units (accepted then); now refused, typed.
#[test]
fn regression_tiny_blocks_with_large_units_are_refused_not_a_panic() {
    for (bs, p) in [(160, 32), (192, 64), (256, 128), (512, 256)] {
        let r = Wal::open(fixed(bs, p, 8, Some(0xFF)));
        assert!(matches!(r, Err(Error::Geometry(_))), "{bs}/{p}");
    }
    for (bs, p) in [(1024, 256), (512, 128), (256, 64)] {
        let mut w = Wal::open(fixed(bs, p, 16, Some(0xFF))).unwrap();
        for i in 1..=6u64 {
            w.append(i, &vec![1; (i as usize * 100) % (bs as usize)])
                .unwrap();
            w.compact(i - 1).unwrap();
            w.sync().unwrap();
        }
    }
}

/// Issue 10, item 6: limits are typed errors that carry the limit, before
/// anything is written; `MetaTooLarge` says which limit.
#[test]
fn regression_limits_are_typed_errors_before_any_write() {
    let mut w = Wal::open(fixed(512, 1, 6, None)).unwrap();
    w.append(1, b"x").unwrap();
    w.set_meta("k", b"v").unwrap();
    w.sync().unwrap();
    let before = w.into_device();
    let ops = before.ops();
    let mut w = Wal::open(before).unwrap();
    let long = "k".repeat(256);
    assert!(matches!(
        w.set_meta(&long, b"v"),
        Err(Error::MetaTooLarge {
            len: 256,
            max: 255,
            limit: MetaLimit::Key
        })
    ));
    // 512 - 48 header - 16 MARK (format v2: synced after the snapshot)
    // - 16 record header = 432 bytes of snapshot payload: count (4), then
    // 5 + key + value.
    let max_value = 432 - 4 - 5 - 3;
    assert_eq!(
        w.set_meta("big", &vec![0; max_value + 1]),
        Err(Error::MetaTooLarge {
            len: max_value + 1,
            max: max_value,
            limit: MetaLimit::Value
        })
    );
    // Fits alone, not with the key already there.
    assert!(matches!(
        w.set_meta("big", &vec![0; max_value]),
        Err(Error::MetaTooLarge {
            max: 432,
            limit: MetaLimit::Map,
            ..
        })
    ));
    // An entry larger than the device could ever hold.
    match w.append(2, &vec![0; 8 * 512]) {
        Err(Error::EntryTooLarge { len: 4096, max }) => assert!(max < 4096 && max > 0),
        other => panic!("{other:?}"),
    }
    let dev = w.into_device();
    assert_eq!(
        dev.trace()[ops as usize..]
            .iter()
            .filter(|o| matches!(o, SimOp::Program { .. } | SimOp::Erase { .. }))
            .count(),
        0,
        "nothing written"
    );
    // The largest value accepted, alone, survives a reopen.
    let mut w = Wal::open(dev).unwrap();
    w.remove_meta("k").unwrap();
    w.set_meta("big", &vec![9; max_value]).unwrap();
    let w = Wal::open(w.into_device().restarted()).unwrap();
    assert_eq!(w.get_meta("big").map(|v| v.len()), Some(max_value));
}

/// Issue 10, API atomicity: `append_batch` that hit `Full` left the first
/// entries appended (5 of 6); it is now all or nothing, and an entry that
/// can never fit the device gives `EntryTooLarge`, not `Full`.
#[test]
fn regression_append_batch_is_all_or_nothing() {
    for (p, erase) in [(1, None), (4, Some(0xFF))] {
        let mut w = Wal::open(fixed(256, p, 6, erase)).unwrap();
        let mut next = 1u64;
        let mut fulls = 0;
        for round in 0..200u64 {
            let batch: Vec<(u64, Vec<u8>)> = (0..1 + round % 6)
                .map(|k| {
                    (
                        next + k,
                        vec![k as u8; ((round * 37 + k * 11) % 90) as usize],
                    )
                })
                .collect();
            let last = w.last_index();
            match w.append_batch(&batch) {
                Ok(()) => next += batch.len() as u64,
                Err(Error::Full) => {
                    fulls += 1;
                    assert_eq!(w.last_index(), last, "round {round}: partial batch");
                    w.compact(next - 1).unwrap();
                }
                Err(e) => panic!("round {round}: {e}"),
            }
            w.sync().unwrap();
        }
        assert!(fulls > 3, "the device never filled");
        let huge = [(next, vec![0u8; 3000])];
        assert!(matches!(
            w.append_batch(&huge),
            Err(Error::EntryTooLarge { len: 3000, .. })
        ));
        assert_eq!(w.next_index(), Some(next));
    }
}

/// A sparse in-memory device for huge blocks (only written pages exist).
struct Sparse {
    geo: Geometry,
    pages: std::collections::BTreeMap<u64, Vec<u8>>,
}

impl BlockDevice for Sparse {
    type Error = std::convert::Infallible;
    fn geometry(&self) -> Geometry {
        self.geo
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
        for (k, b) in buf.iter_mut().enumerate() {
            let at = offset + k as u64;
            *b = self
                .pages
                .get(&(at >> 12))
                .map_or(0, |p| p[(at & 4095) as usize]);
        }
        Ok(())
    }
    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), Self::Error> {
        for (k, b) in data.iter().enumerate() {
            let at = offset + k as u64;
            self.pages.entry(at >> 12).or_insert_with(|| vec![0; 4096])[(at & 4095) as usize] = *b;
        }
        Ok(())
    }
    fn erase(&mut self, _: u32) -> Result<(), Self::Error> {
        Ok(())
    }
    fn sync(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Issue 10: `set_meta` of a value over 16 MiB on 32 MiB blocks overflowed
/// the 24-bit record length: acknowledged, then lost on reopen. Now a typed
/// error naming the value limit.
#[test]
fn regression_meta_value_over_the_record_length_is_refused() {
    let dev = Sparse {
        geo: Geometry {
            block_size: 32 << 20,
            program_size: 1,
            block_count: 5,
            erase_value: None,
        },
        pages: Default::default(),
    };
    let mut w = Wal::open(dev).unwrap();
    let max = (1 << 24) - 1 - 4 - 5 - 4;
    let r = w.set_meta("vote", &vec![1; (16 << 20) + 1]);
    assert_eq!(
        r,
        Err(Error::MetaTooLarge {
            len: (16 << 20) + 1,
            max,
            limit: MetaLimit::Value
        })
    );
    w.set_meta("vote", &vec![2; max]).unwrap();
    let w = Wal::open(w.into_device()).unwrap();
    assert_eq!(w.get_meta("vote").map(|v| v.len()), Some(max));
}
