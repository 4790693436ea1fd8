//! Regression tests for the findings of issue 10 against the write path and
//! the simulator's harder models: each failed before its fix.

mod support;

use blockwal::{BlockDevice, CutPlan, SimOp, Survivors};
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
