//! The on-target tests, the same on every architecture: each target crate's
//! `tests/on_target.rs` calls [`run_tests`] in QEMU. Each test prints its
//! verdict through the [`Host`]; the run ends with "ARCH: N passed, M failed".

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use blockwal::devices::ram_flash::{RamFlash, RamFlashError};
use blockwal::{BlockDevice, FlashDevice, FlashError, Wal};
use embedded_storage::nor_flash::ReadNorFlash;

use crate::{heap_peak, say, workload, Host};

type Outcome = Result<(), String>;

struct Runner<'a> {
    host: &'a dyn Host,
    passed: u32,
    failed: u32,
}

impl Runner<'_> {
    fn run(&mut self, name: &str, test: impl FnOnce(&dyn Host) -> Outcome) {
        match test(self.host) {
            Ok(()) => {
                self.passed += 1;
                say!(self.host, "test {} ... ok", name);
            }
            Err(why) => {
                self.failed += 1;
                say!(self.host, "test {} ... FAILED: {}", name, why);
            }
        }
    }
}

/// Fails the test with a message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// `FlashDevice` keeps NOR rules and partition bounds, for one flash shape.
fn flash_rules<const W: usize, const E: usize, const R: usize>(_: &dyn Host) -> Outcome {
    const BLOCKS: u32 = 6;
    let e = E as u32;
    let flash = RamFlash::<W, E, R>::new(E * (BLOCKS as usize + 2)).map_err(|e| format!("{e}"))?;
    // Partition: sectors 1..=6 of 8.
    let mut dev = FlashDevice::new(flash, e, e * (1 + BLOCKS)).map_err(|e| format!("{e}"))?;
    let g = dev.geometry();
    ensure!(
        g.block_size == e
            && g.program_size == W as u32
            && g.block_count == BLOCKS
            && g.erase_value == Some(0xFF),
        "geometry {g:?}"
    );
    ensure!(g.validate().is_ok(), "geometry does not validate");

    // Program block 0 in runs of one to three write units, then read back.
    let pattern: Vec<u8> = (0..E).map(|i| (i * 31 + 7) as u8).collect();
    let mut at = 0usize;
    let mut run = 1usize;
    while at < E {
        let n = (run * W).min(E - at);
        dev.program(at as u64, &pattern[at..at + n])
            .map_err(|e| format!("program {at}: {e}"))?;
        at += n;
        run = run % 3 + 1;
    }
    let mut all = vec![0u8; E];
    dev.read(0, &mut all).map_err(|e| format!("{e}"))?;
    ensure!(all == pattern, "block 0 reads back wrong");
    for (off, len) in [
        (1, 1),
        (3, 5),
        (R + 1, 2 * R + 3),
        (E - 3, 3),
        (E / 2 - 1, 70),
    ] {
        let mut buf = vec![0u8; len];
        dev.read(off as u64, &mut buf)
            .map_err(|e| format!("read {off}+{len}: {e}"))?;
        ensure!(
            buf[..] == pattern[off..off + len],
            "unaligned read {off}+{len}"
        );
    }
    // Reading across into the erased block 1.
    let mut buf = [0u8; 9];
    dev.read(E as u64 - 4, &mut buf)
        .map_err(|e| format!("{e}"))?;
    ensure!(
        buf[..4] == pattern[E - 4..] && buf[4..] == [0xFF; 5],
        "read across blocks"
    );

    // Contract breaches are typed errors, not panics or flash damage.
    let unit = vec![0u8; W];
    ensure!(
        dev.program(0, &unit) == Err(FlashError::Flash(RamFlashError::Reprogrammed { offset: e })),
        "second program of a unit was not refused"
    );
    if W > 1 {
        ensure!(
            matches!(
                dev.program(E as u64 + 1, &unit),
                Err(FlashError::Misaligned { .. })
            ),
            "misaligned program accepted"
        );
    }
    let two = vec![0u8; 2 * W];
    ensure!(
        matches!(
            dev.program(2 * E as u64 - W as u64, &two),
            Err(FlashError::Misaligned { .. })
        ),
        "program across blocks accepted"
    );
    let cap = g.capacity();
    ensure!(
        matches!(dev.program(cap, &unit), Err(FlashError::OutOfBounds { .. })),
        "program past the end accepted"
    );
    ensure!(
        matches!(
            dev.read(cap - 1, &mut [0u8; 2]),
            Err(FlashError::OutOfBounds { .. })
        ),
        "read past the end accepted"
    );
    ensure!(
        matches!(dev.erase(BLOCKS), Err(FlashError::OutOfBounds { .. })),
        "erase past the end accepted"
    );

    // Erase gives the block back, erased, ready for programming.
    dev.erase(0).map_err(|e| format!("{e}"))?;
    dev.read(0, &mut all).map_err(|e| format!("{e}"))?;
    ensure!(all.iter().all(|&b| b == 0xFF), "erased block is not 0xFF");
    dev.program(0, &unit)
        .map_err(|e| format!("program after erase: {e}"))?;
    dev.sync().map_err(|e| format!("{e}"))?;

    // Only the partition was touched.
    let flash = dev.into_inner();
    let counts = flash.erase_counts();
    ensure!(
        counts[1] == 1 && counts.iter().sum::<u32>() == 1,
        "erase counts {counts:?}"
    );
    ensure!(
        flash.image()[..E].iter().all(|&b| b == 0xFF),
        "sector before the partition written"
    );
    ensure!(
        flash.image()[E * (BLOCKS as usize + 1)..]
            .iter()
            .all(|&b| b == 0xFF),
        "sector after the partition written"
    );
    ensure!(
        flash.bytes_programmed() == (E + W) as u64,
        "bytes programmed"
    );
    ensure!(flash.capacity() == E * (BLOCKS as usize + 2), "capacity");
    Ok(())
}

/// Entry `i` of the Wal tests: its length varies and some entries span more
/// than one erase block.
fn entry(i: u64, block: usize) -> Vec<u8> {
    let len = match i % 23 {
        0 => block + block / 2,
        k => (k as usize * 37) % 300,
    };
    (0..len).map(|j| (i as usize * 7 + j) as u8).collect()
}

/// The log on `FlashDevice<RamFlash>` of one shape: append, sync, reopen,
/// truncate, compact, metadata, reopen again, and many wraps of the device
/// with wear spread over every block.
fn wal_on_flash<const W: usize, const E: usize>(host: &dyn Host) -> Outcome {
    // At least 12 blocks and 24 KiB: the first phase writes about 10 KiB.
    let blocks = (24 * 1024 / E).max(12) as u32;
    let err = |what: &str| {
        let what = String::from(what);
        move |e: blockwal::Error<FlashError<RamFlashError>>| format!("{what}: {e}")
    };
    let flash = RamFlash::<W, E>::new(E * blocks as usize).map_err(|e| format!("{e}"))?;
    let dev = FlashDevice::new(flash, 0, E as u32 * blocks).map_err(|e| format!("{e}"))?;
    let mut wal = Wal::open(dev).map_err(err("open empty"))?;
    ensure!(
        wal.is_empty() && wal.next_index().is_none(),
        "fresh log not empty"
    );
    for i in 1..=40 {
        wal.append(i, &entry(i, E)).map_err(err("append"))?;
    }
    wal.sync().map_err(err("sync"))?;
    wal.set_meta("term", &3u64.to_le_bytes())
        .map_err(err("set_meta"))?;

    let mut wal = Wal::open(wal.into_device()).map_err(err("reopen"))?;
    ensure!(
        wal.first_index() == Some(1) && wal.last_index() == Some(40),
        "after reopen: {:?}..={:?}",
        wal.first_index(),
        wal.last_index()
    );
    for i in 1..=40 {
        let got = wal.try_get(i).map_err(err("get"))?;
        ensure!(
            got.as_deref() == Some(&entry(i, E)[..]),
            "entry {i} differs after reopen"
        );
    }
    ensure!(
        wal.get_meta("term") == Some(&3u64.to_le_bytes()[..]),
        "meta lost"
    );

    wal.truncate(31).map_err(err("truncate"))?;
    wal.compact(5).map_err(err("compact"))?;
    wal.append(31, b"new leader")
        .map_err(err("append after truncate"))?;
    wal.sync().map_err(err("sync"))?;
    wal.set_meta("term", &4u64.to_le_bytes())
        .map_err(err("set_meta"))?;
    wal.set_meta("vote", &2u64.to_le_bytes())
        .map_err(err("set_meta"))?;

    let mut wal = Wal::open(wal.into_device()).map_err(err("reopen 2"))?;
    ensure!(
        wal.first_index() == Some(6) && wal.last_index() == Some(31),
        "after truncate+compact+reopen: {:?}..={:?}",
        wal.first_index(),
        wal.last_index()
    );
    ensure!(
        wal.get(5).is_none() && wal.get(32).is_none(),
        "removed entries came back"
    );
    ensure!(
        wal.get(31).as_deref() == Some(&b"new leader"[..]),
        "entry 31"
    );
    ensure!(
        wal.get(30).as_deref() == Some(&entry(30, E)[..]),
        "entry 30"
    );
    ensure!(
        wal.get_meta("term") == Some(&4u64.to_le_bytes()[..]),
        "term"
    );
    ensure!(
        wal.get_meta("vote") == Some(&2u64.to_le_bytes()[..]),
        "vote"
    );

    // Steady state: append and compact, many times around the device.
    let mut next = 32u64;
    let payload = [0x5Au8; 100];
    let rounds = (blocks as usize * E * 6) / 128;
    for _ in 0..rounds {
        wal.append(next, &payload).map_err(err("append (wrap)"))?;
        if next.is_multiple_of(8) {
            wal.sync().map_err(err("sync (wrap)"))?;
            wal.compact(next - 4).map_err(err("compact (wrap)"))?;
        }
        next += 1;
    }
    wal.sync().map_err(err("sync"))?;
    let wal = Wal::open(wal.into_device()).map_err(err("reopen 3"))?;
    ensure!(
        wal.last_index() == Some(next - 1),
        "last after wraps: {:?}",
        wal.last_index()
    );
    let flash = wal.into_device().into_inner();
    let counts = flash.erase_counts();
    let (min, max) = (counts.iter().min().copied(), counts.iter().max().copied());
    say!(host, "    erases per block: min {:?} max {:?}", min, max);
    ensure!(min.unwrap_or(0) > 0, "some block never used: {counts:?}");
    Ok(())
}

/// blockwal's generic conformance suite (the one every device runs) on
/// `FlashDevice<RamFlash>` of one shape; it reopens the log throughout.
fn conformance<const W: usize, const E: usize, const R: usize>(
    host: &dyn Host,
    blocks: u32,
    big: usize,
) -> Outcome {
    // A panic here (bad shape) ends the run through the panic handler.
    let mut make = || {
        let flash = RamFlash::<W, E, R>::new(E * blocks as usize).expect("flash");
        FlashDevice::new(flash, 0, E as u32 * blocks).expect("partition")
    };
    let n = blockwal::conformance::run_all(&mut make, big)
        .map_err(|f| format!("{}: {}", f.test, f.what))?;
    say!(host, "    {} conformance tests passed", n);
    Ok(())
}

/// Bad partitions are refused at construction with a typed error.
fn bad_partitions(_: &dyn Host) -> Outcome {
    let mk = |start, end| {
        let flash = RamFlash::<4, 4096>::new(8 * 4096).map_err(|e| format!("{e}"))?;
        Ok::<_, String>(FlashDevice::new(flash, start, end).map(|_| ()))
    };
    ensure!(
        matches!(
            mk(100, 4096 * 5)?,
            Err(FlashError::PartitionMisaligned { .. })
        ),
        "misaligned start"
    );
    ensure!(
        matches!(
            mk(0, 4096 * 9)?,
            Err(FlashError::PartitionOutOfRange { .. })
        ),
        "end past the flash"
    );
    ensure!(
        matches!(
            mk(0, 4096 * 3)?,
            Err(FlashError::PartitionTooSmall { blocks: 3, .. })
        ),
        "three blocks"
    );
    ensure!(
        matches!(mk(4096, 4096)?, Err(FlashError::PartitionEmpty { .. })),
        "empty"
    );
    ensure!(
        mk(4096 * 4, 4096 * 8)?.is_ok(),
        "four blocks at the end refused"
    );
    Ok(())
}

/// These builds leave out the `salvage` feature (it is what the size figures
/// measure): a salvage open is refused with `Unsupported` and leaves the
/// flash as it was; a strict open still reads the log.
fn salvage_left_out(_: &dyn Host) -> Outcome {
    use blockwal::{Error, RecoveryMode, WalOptions};
    let mut flash = RamFlash::<4, 4096>::new(8 * 4096).map_err(|e| format!("{e}"))?;
    type Flash4k = RamFlash<4, 4096>;
    fn part(f: &mut Flash4k) -> Result<FlashDevice<&mut Flash4k>, String> {
        FlashDevice::new(f, 0, 8 * 4096).map_err(|e| format!("{e}"))
    }
    let mut wal = Wal::open(part(&mut flash)?).map_err(|e| format!("{e}"))?;
    for i in 1..=5 {
        wal.append(i, &entry(i, 4096)).map_err(|e| format!("{e}"))?;
    }
    wal.sync().map_err(|e| format!("{e}"))?;
    drop(wal);
    let before = flash.image().to_vec();
    let Err(e) = Wal::open_mode(
        part(&mut flash)?,
        WalOptions::small(),
        RecoveryMode::Salvage,
    ) else {
        return Err(String::from("a salvage open succeeded without the feature"));
    };
    ensure!(matches!(e, Error::Unsupported(_)), "salvage open: {e}");
    ensure!(
        format!("{e}").contains("salvage"),
        "the error does not name the feature: {e}"
    );
    ensure!(
        flash.image() == &before[..],
        "the refused open wrote to flash"
    );
    let wal = Wal::open(part(&mut flash)?).map_err(|e| format!("strict open: {e}"))?;
    ensure!(
        wal.last_index() == Some(5) && wal.get(3).is_some_and(|d| d[..] == entry(3, 4096)[..]),
        "the log changed"
    );
    Ok(())
}

/// The one-format workload (tests/one_format/workload.rs) on the workload's
/// flash shape; the image is checked here after a reopen, then written to
/// the host file `image_file` for Linux to compare byte for byte.
fn one_format_image(host: &dyn Host, image_file: &str) -> Outcome {
    use workload::{FLASH_SECTOR, FLASH_SECTORS, FLASH_WRITE};
    let size = FLASH_SECTOR * FLASH_SECTORS;
    let flash = RamFlash::<FLASH_WRITE, FLASH_SECTOR>::new(size).map_err(|e| format!("{e}"))?;
    let dev = FlashDevice::new(flash, 0, size as u32).map_err(|e| format!("{e}"))?;
    let mut wal = Wal::open_with(dev, blockwal::WalOptions::small()).map_err(|e| format!("{e}"))?;
    workload::write(&mut wal).map_err(|e| format!("workload: {e}"))?;
    let wal = Wal::open_with(wal.into_device(), blockwal::WalOptions::small())
        .map_err(|e| format!("reopen: {e}"))?;
    workload::check(&wal).map_err(|e| format!("after reopen: {e}"))?;
    let flash = wal.into_device().into_inner();
    ensure!(
        host.write_file(image_file, flash.image()),
        "the host refused to write {image_file}"
    );
    Ok(())
}

/// Runs every on-target test; prints "ARCH: N passed, M failed" last and
/// returns whether all passed. `image_file`: where the one-format flash
/// image goes on the host.
pub fn run_tests(host: &dyn Host, arch: &str, image_file: &str) -> bool {
    let mut t = Runner {
        host,
        passed: 0,
        failed: 0,
    };
    t.run("flash_rules_w1_e256_r1", flash_rules::<1, 256, 1>);
    t.run("flash_rules_w4_e4096_r4", flash_rules::<4, 4096, 4>);
    t.run("flash_rules_w8_e2048_r1", flash_rules::<8, 2048, 1>);
    t.run("flash_rules_w16_e1024_r8", flash_rules::<16, 1024, 8>);
    t.run("flash_rules_w32_e131072_r4", flash_rules::<32, 131072, 4>);
    t.run("flash_rules_w4_e256_r64", flash_rules::<4, 256, 64>);
    t.run("bad_partitions", bad_partitions);
    t.run("salvage_left_out", salvage_left_out);
    t.run("wal_on_flash_w1_e256", wal_on_flash::<1, 256>);
    t.run("wal_on_flash_w4_e4096", wal_on_flash::<4, 4096>);
    t.run("wal_on_flash_w8_e2048", wal_on_flash::<8, 2048>);
    t.run("wal_on_flash_w16_e1024", wal_on_flash::<16, 1024>);
    t.run("wal_on_flash_w32_e512", wal_on_flash::<32, 512>);
    t.run("conformance_w1_e256_r1", |h| {
        conformance::<1, 256, 1>(h, 256, 4096)
    });
    t.run("conformance_w4_e4096_r4", |h| {
        conformance::<4, 4096, 4>(h, 96, 64 * 1024)
    });
    t.run("conformance_w8_e2048_r1", |h| {
        conformance::<8, 2048, 1>(h, 96, 32 * 1024)
    });
    t.run("conformance_w16_e1024_r8", |h| {
        conformance::<16, 1024, 8>(h, 128, 16 * 1024)
    });
    t.run("conformance_w32_e4096_r4", |h| {
        conformance::<32, 4096, 4>(h, 96, 32 * 1024)
    });
    t.run("one_format_image", |h| one_format_image(h, image_file));
    say!(host, "heap peak: {} bytes", heap_peak());
    say!(host, "{}: {} passed, {} failed", arch, t.passed, t.failed);
    t.failed == 0
}
