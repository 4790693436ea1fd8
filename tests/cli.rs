//! The `blockwal` tool's `inspect`, `dump` and `verify` on a raw image of a
//! log written through the flash adapter on a RAM NOR flash (program unit 4,
//! erase value 0xFF), as a dump copied off a board would be.
#![cfg(all(feature = "cli", feature = "flash"))]

use std::process::Command;

use blockwal::devices::ram_flash::RamFlash;
use blockwal::{FlashDevice, Wal};

const SECTOR: usize = 4096;
const SECTORS: usize = 16;

fn image() -> Vec<u8> {
    let flash = RamFlash::<4, SECTOR>::new(SECTOR * SECTORS).unwrap();
    let dev = FlashDevice::new(flash, 0, (SECTOR * SECTORS) as u32).unwrap();
    let mut wal = Wal::open(dev).unwrap();
    wal.set_meta("term", b"3").unwrap();
    wal.set_meta("vote", b"node-2").unwrap();
    for i in 1..=200u64 {
        wal.append(i, format!("hello entry {i}").as_bytes())
            .unwrap();
        if i % 16 == 0 {
            wal.sync().unwrap();
        }
    }
    wal.sync().unwrap();
    wal.compact(10).unwrap();
    wal.into_device().into_inner().into_image()
}

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_blockwal"))
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn inspect_dump_verify_a_flash_image() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flash.bin");
    let img = image();
    std::fs::write(&path, &img).unwrap();
    let p = path.to_str().unwrap();
    let geo = [
        "--image",
        p,
        "--block-size",
        "4096",
        "--program-size",
        "4",
        "--erase-value",
        "0xff",
    ];

    let (ok, out) = run(&[&["inspect"][..], &geo].concat());
    assert!(ok, "{out}");
    assert!(out.contains("16 blocks of 4096 B"), "{out}");
    assert!(out.contains("program size 4, erase value 0xff"), "{out}");
    assert!(out.contains("first index 11, last index 200"), "{out}");
    assert!(out.contains("meta keys: term (1 B), vote (6 B)"), "{out}");
    assert!(out.contains("live (head)"), "{out}");
    // The block size is found from the headers when not given.
    let (ok, out2) = run(&[
        "inspect",
        "--image",
        p,
        "--program-size",
        "4",
        "--erase-value",
        "0xff",
    ]);
    assert!(
        ok && out2.contains("first index 11, last index 200"),
        "{out2}"
    );

    let (ok, out) = run(&[&["dump"][..], &geo, &["--from", "50", "--to", "52"]].concat());
    assert!(ok, "{out}");
    assert!(out.contains("meta vote = node-2"), "{out}");
    assert!(out.contains("entries 50..=52 of 11..=200"), "{out}");
    assert!(out.contains("hello entry 51"), "{out}");
    assert!(out.contains(&hex(b"hello entry 52")[..16]), "{out}");

    let (ok, out) = run(&[&["verify"][..], &geo].concat());
    assert!(ok, "{out}");
    assert!(out.contains("ok: entries 11..=200"), "{out}");

    // A flipped byte in an entry of a sealed block: exit code non-zero and
    // the offset named.
    let report = {
        let mut bad = img.clone();
        let at = SECTOR + 64 + 20;
        bad[at] ^= 0x01;
        std::fs::write(&path, &bad).unwrap();
        run(&[&["verify"][..], &geo].concat())
    };
    assert!(!report.0, "{}", report.1);
    assert!(
        report.1.contains("CORRUPT: first problem at offset"),
        "{}",
        report.1
    );
}

fn hex(v: &[u8]) -> String {
    v.iter().map(|b| format!("{b:02x}")).collect()
}
