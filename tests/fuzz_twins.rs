//! The fuzz targets' logic (`tests/support/fuzz.rs`, run for long by
//! `scripts/fuzz.sh` under cargo-fuzz) exercised briefly in `cargo test`,
//! plus long-running stable stand-ins (`--ignored`, `FUZZ_TWIN_SECONDS`)
//! for machines without a nightly toolchain.

mod support;

use std::time::{Duration, Instant};

use proptest::collection::vec;
use proptest::prelude::*;
use support::{fuzz, Rng};

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn twin_open_image(data in vec(any::<u8>(), 0..2500)) {
        fuzz::open_image(&data);
    }

    #[test]
    fn twin_open_image_edits(g in any::<u8>(), seed in any::<u8>(), edits in vec(any::<u8>(), 0..60)) {
        let mut data = vec![g, seed | 1];
        data.extend(edits);
        fuzz::open_image(&data);
    }

    #[test]
    fn twin_power_cut(data in vec(any::<u8>(), 6..90)) {
        let r = fuzz::power_cut(&data);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn twin_salvage(data in vec(any::<u8>(), 2..60)) {
        let r = fuzz::salvage(&data);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}

fn budget() -> Duration {
    let s = std::env::var("FUZZ_TWIN_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(s)
}

/// A seed from the clock (printed, and settable with `FUZZ_TWIN_SEED`).
fn seed() -> u64 {
    let s = std::env::var("FUZZ_TWIN_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("FUZZ_TWIN_SEED={s}");
    s
}

fn random_input(r: &mut Rng, max: usize) -> Vec<u8> {
    let n = r.below(max as u64) as usize;
    (0..n).map(|_| r.next() as u8).collect()
}

/// Stand-in for `cargo fuzz run open_image` without nightly.
#[test]
#[ignore]
fn long_open_image() {
    let (t0, mut r, mut n) = (Instant::now(), Rng(seed()), 0u64);
    while t0.elapsed() < budget() {
        let data = random_input(&mut r, 3000);
        fuzz::open_image(&data);
        n += 1;
    }
    println!("open_image: {n} inputs in {:.0?}", t0.elapsed());
}

/// Stand-in for `cargo fuzz run power_cut` without nightly.
#[test]
#[ignore]
fn long_power_cut() {
    let (t0, mut r, mut n) = (Instant::now(), Rng(seed()), 0u64);
    while t0.elapsed() < budget() {
        let data = random_input(&mut r, 120);
        if let Err(e) = fuzz::power_cut(&data) {
            panic!("input {data:?}: {e}");
        }
        n += 1;
    }
    println!("power_cut: {n} inputs in {:.0?}", t0.elapsed());
}

/// Stand-in for `cargo fuzz run salvage` without nightly.
#[test]
#[ignore]
fn long_salvage() {
    let (t0, mut r, mut n) = (Instant::now(), Rng(seed()), 0u64);
    while t0.elapsed() < budget() {
        let data = random_input(&mut r, 60);
        if let Err(e) = fuzz::salvage(&data) {
            panic!("input {data:?}: {e}");
        }
        n += 1;
    }
    println!("salvage: {n} inputs in {:.0?}", t0.elapsed());
}
