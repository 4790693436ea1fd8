//! Wear and write amplification on raw NOR flash: 128-byte entries appended
//! through many wraps of the ring, compacted as a Raft node does after each
//! snapshot, with a term update now and then. Prints the figures and holds
//! 4-byte write units to the targets: at most 1.25 bytes programmed per
//! payload byte, and no block erased more than 1.1 times as often as another.
#![cfg(feature = "flash")]

use blockwal::devices::ram_flash::RamFlash;
use blockwal::{FlashDevice, Wal};

struct Figures {
    amplification: f64,
    min_erases: u32,
    max_erases: u32,
    wraps: f64,
}

fn run<const W: usize, const E: usize>(blocks: usize) -> Figures {
    let flash = RamFlash::<W, E>::new(E * blocks).unwrap();
    let mut wal = Wal::open(FlashDevice::new(flash, 0, (E * blocks) as u32).unwrap()).unwrap();
    let entry = [0x5Au8; 128];
    let per_block = E / 150;
    // Keep about a third of the device as live log, like a node that
    // snapshots regularly.
    let keep = (per_block * blocks / 3) as u64;
    let mut payload = 0u64;
    // Enough entries for about 25 wraps of the ring (each takes ~150 bytes
    // of flash with its share of block headers and summaries).
    let total = (25 * E * blocks / 150) as u64;
    for i in 1..=total {
        wal.append(i, &entry).unwrap();
        payload += entry.len() as u64;
        if i % 4 == 0 {
            wal.sync().unwrap();
        }
        if i % 64 == 0 && i > keep {
            wal.compact(i - keep).unwrap();
        }
        if i % 1000 == 0 {
            wal.set_meta("term", &(i / 1000).to_le_bytes()).unwrap();
        }
    }
    wal.sync().unwrap();
    let dev = wal.into_device();
    let f = dev.flash();
    let counts = f.erase_counts();
    Figures {
        amplification: f.bytes_programmed() as f64 / payload as f64,
        min_erases: *counts.iter().min().unwrap(),
        max_erases: *counts.iter().max().unwrap(),
        wraps: counts.iter().map(|&c| u64::from(c)).sum::<u64>() as f64 / blocks as f64,
    }
}

fn report(name: &str, f: &Figures) {
    println!(
        "flash {name}: bytes programmed / payload = {:.3}, erase count max/min = {}/{} = {:.3} after {:.1} wraps",
        f.amplification,
        f.max_erases,
        f.min_erases,
        f.max_erases as f64 / f.min_erases as f64,
        f.wraps
    );
}

#[test]
fn wear_and_amplification_4_byte_units() {
    let f = run::<4, 4096>(32);
    report("write 4 B, erase 4 KiB", &f);
    assert!(f.wraps >= 20.0);
    assert!(
        f.amplification <= 1.25,
        "amplification {:.3} > 1.25",
        f.amplification
    );
    assert!(
        f.max_erases as f64 / f.min_erases as f64 <= 1.1,
        "wear {}/{}",
        f.max_erases,
        f.min_erases
    );
}

#[test]
fn wear_and_amplification_other_units() {
    // Reported, not held to the 4-byte target: a 32-byte unit pads each
    // 144-byte record to 160 bytes on its own.
    for (name, f) in [
        ("write 1 B, erase 4 KiB", run::<1, 4096>(32)),
        ("write 8 B, erase 2 KiB", run::<8, 2048>(48)),
        ("write 16 B, erase 4 KiB", run::<16, 4096>(32)),
        ("write 32 B, erase 4 KiB", run::<32, 4096>(32)),
    ] {
        report(name, &f);
        assert!(f.wraps >= 20.0);
        assert!(
            f.max_erases as f64 / f.min_erases as f64 <= 1.1,
            "{name}: wear {}/{}",
            f.max_erases,
            f.min_erases
        );
    }
}
