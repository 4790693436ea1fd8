//! Empty: everything is in tests/on_wasi.rs, run by scripts/test-wasi.sh.
