//! Opens arbitrary device images (raw, or a valid log with byte edits) and
//! reads everything: typed errors or a valid prefix, never a panic, a hang
//! or unbounded allocation. Logic: `tests/support/fuzz.rs`.
#![no_main]

#[path = "../../tests/support/mod.rs"]
mod support;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    support::fuzz::open_image(data);
});
