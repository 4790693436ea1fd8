//! Random operations with a power cut on a SimDevice, checked against the
//! durability model. Logic: `tests/support/fuzz.rs`.
#![no_main]

#[path = "../../tests/support/mod.rs"]
mod support;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(e) = support::fuzz::power_cut(data) {
        panic!("{e}");
    }
});
