//! The deterministic workload of the one-format test, shared word for word by
//! tests/one_format.rs (Linux, Windows under wine, WASI) and the firmware
//! tests (targets/firmware-tests: Cortex-M, RISC-V): appends, syncs, a
//! truncation, a compaction and metadata, then the model the log must match.
//! `no_std + alloc`, generic over the device.

// Each includer uses part of it (the flash shape only where there is flash).
#![allow(dead_code)]

use alloc::vec::Vec;

use blockwal::{BlockDevice, Error, Wal};

/// First index left after the workload's compaction.
pub const FIRST: u64 = 21;
/// Last index left after the workload's truncation.
pub const LAST: u64 = 300;
/// The metadata the workload leaves.
pub const META: [(&str, &[u8]); 2] = [("term", b"term 7"), ("vote", b"node-3")];

/// Entry `i`: 0 to 699 bytes, a function of `i` alone.
pub fn entry(i: u64) -> Vec<u8> {
    let len = (i.wrapping_mul(7919) % 700) as usize;
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Writes the workload into an empty log.
pub fn write<D: BlockDevice>(wal: &mut Wal<D>) -> Result<(), Error<D::Error>> {
    for i in 1..=LAST + 20 {
        wal.append(i, &entry(i))?;
        if i % 16 == 0 {
            wal.sync()?;
        }
    }
    wal.sync()?;
    wal.truncate(LAST + 1)?;
    wal.compact(FIRST - 1)?;
    wal.set_meta("vote", b"node-1")?;
    for (k, v) in META {
        wal.set_meta(k, v)?;
    }
    wal.sync()
}

/// Checks a log against what [`write`] leaves: `Err` says what differs.
pub fn check<D: BlockDevice>(wal: &Wal<D>) -> Result<(), &'static str> {
    if wal.first_index() != Some(FIRST) || wal.last_index() != Some(LAST) {
        return Err("first or last index differs");
    }
    for i in FIRST..=LAST {
        match wal.try_get(i) {
            Ok(Some(e)) if e[..] == entry(i)[..] => {}
            Ok(_) => return Err("an entry differs"),
            Err(_) => return Err("an entry cannot be read"),
        }
    }
    if wal.iter().count() as u64 != LAST - FIRST + 1 {
        return Err("iteration does not yield every entry");
    }
    for (k, v) in META {
        if wal.get_meta(k) != Some(v) {
            return Err("metadata differs");
        }
    }
    Ok(())
}

/// The flash the firmware writes the workload on: `RamFlash<FLASH_WRITE,
/// FLASH_SECTOR>` of `FLASH_SECTORS` sectors, all of it the log, opened with
/// `WalOptions::small()`.
pub const FLASH_WRITE: usize = 4;
/// Erase sector (block) size of the workload's flash.
pub const FLASH_SECTOR: usize = 4096;
/// Sectors of the workload's flash.
pub const FLASH_SECTORS: usize = 64;
