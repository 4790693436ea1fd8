//! Property tests: random operation sequences cut by power losses at random
//! operations, each recovery checked against the model and used as the
//! starting point of the next segment (crash, reopen, go on, crash again).
//! Failing cases found so far are kept as named regression tests below.

mod support;

use proptest::collection::vec;
use proptest::prelude::*;
use support::*;

fn op(bs: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..bs / 2).prop_map(Op::Append),
        1 => (bs..3 * bs).prop_map(Op::Append),
        2 => vec(0..bs / 3, 1..6).prop_map(Op::Batch),
        3 => Just(Op::Sync),
        1 => Just(Op::Flush),
        1 => any::<u16>().prop_map(Op::Truncate),
        1 => any::<u16>().prop_map(Op::Compact),
        1 => (any::<u8>(), 0..bs / 6).prop_map(|(k, l)| Op::SetMeta(k, l)),
        1 => any::<u8>().prop_map(Op::RemoveMeta),
        1 => Just(Op::Reopen),
    ]
}

/// A segment: a workload, then a cut at operation `cut % (ops + 1)` played
/// out as the three plan bytes say (see `fuzz::decode_plan`).
type Segment = (Vec<Op>, u16, [u8; 3]);

fn segments(bs: usize) -> impl Strategy<Value = Vec<Segment>> {
    vec((vec(op(bs), 0..24), any::<u16>(), any::<[u8; 3]>()), 1..5)
}

/// Runs the segments one after the other on one device, each starting from
/// the image the previous cut left.
fn run(setup: &Setup, segs: &[Segment]) -> Result<u64, String> {
    let mut dev = setup.device();
    let mut init = State::default();
    let mut gen = 0;
    let mut points = 0;
    for (n, (ops, cut, plan)) in segs.iter().enumerate() {
        let rec = record(setup, dev, init, ops, gen).map_err(|e| format!("segment {n}: {e}"))?;
        let total = rec.dev.trace().len();
        let k = usize::from(*cut) % (total + 1);
        let plan = fuzz::decode_plan(*plan);
        let s = rec.state_at(k as u64);
        let img = rec.dev.crash_image(k, &plan);
        let v = check_crash(setup, img.clone(), &s)
            .map_err(|e| format!("segment {n}: cut at op {k}/{total} ({plan:?}): {e}"))?;
        points += 1;
        dev = setup.device_from(img);
        init = State::from_view(&v, s.floor);
        gen = rec.gen + 1_000_000;
    }
    Ok(points)
}

fn setup(i: usize) -> Setup {
    fuzz::setups()[i % 5]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn random_ops_crashes_and_reopens_small_blocks(s in 0usize..5, segs in segments(256)) {
        let r = run(&setup(s), &segs);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_ops_crashes_and_reopens_nor_tight(segs in segments(256)) {
        // A device barely larger than the reserve: Full is a normal outcome.
        let setup = Setup::nor("nor 256/4 tight", 256, 4, 5, 64);
        let r = run(&setup, &segs);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}
