//! Salvage on damaged valid logs (format version 2): a salvage open either
//! fails with a typed error or opens a log that a strict open then accepts
//! as the same log (the cut is durable), reading back only written bytes.
#![no_main]

#[path = "../../tests/support/mod.rs"]
mod support;

use blockwal::{Geometry, MemDevice, RecoveryMode, Wal, WalOptions};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let g = Geometry {
        block_size: 512,
        program_size: [1, 4, 8][data[0] as usize % 3],
        block_count: 12,
        erase_value: [None, Some(0xFF)][(data[0] as usize / 3) % 2],
    };
    let mut img = support::fuzz::valid_image(g, data[1] % 16);
    let len = img.len();
    for e in data[2..].chunks_exact(3) {
        let at = (usize::from(e[0]) | usize::from(e[1]) << 8) % len;
        img[at] ^= e[2] | 1;
    }
    let opts = WalOptions::small();
    let Ok(w) = Wal::open_mode(MemDevice::from_image(g, img), opts, RecoveryMode::Salvage) else {
        return;
    };
    let (first, last) = (w.first_index(), w.last_index());
    let w = Wal::open_with(w.into_device(), opts).expect("strict open after salvage");
    assert_eq!((w.first_index(), w.last_index()), (first, last));
});
