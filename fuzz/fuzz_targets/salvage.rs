//! Salvage on damaged valid logs (format version 2): a salvage open either
//! fails with a typed error or opens a log that a strict open then accepts
//! as the same log (the cut is durable). Logic: `tests/support/fuzz.rs`.
#![no_main]

#[path = "../../tests/support/mod.rs"]
mod support;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(e) = support::fuzz::salvage(data) {
        panic!("{e}");
    }
});
