//! Exhaustive single-bit corruption of a fully synced log (FORMAT.md,
//! "Corruption, and why each class is seen"): every byte of the image is
//! flipped with two masks, the log is opened strictly and read in full.
//! Each outcome is *detected* (a typed error at open or read), *harmless*
//! (the same log as the model: first/last/next index, entries, meta), or
//! lies in the newest write of the log chain (the residual window, counted
//! apart). Anything else is *silent* and fails the test.

use std::collections::BTreeMap;

use blockwal::verify::verify;
use blockwal::{BlockDevice, Geometry, MemDevice, MemError, Wal, WalOptions};

/// Records which bytes each program wrote and how many syncs came before,
/// so the newest write can be told without parsing the format.
struct Tracker {
    inner: MemDevice,
    syncs: u64,
    /// (offset, len, syncs before it).
    programs: Vec<(u64, usize, u64)>,
}

impl BlockDevice for Tracker {
    type Error = MemError;
    fn geometry(&self) -> Geometry {
        self.inner.geometry()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), MemError> {
        self.inner.read(offset, buf)
    }
    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), MemError> {
        self.programs.push((offset, data.len(), self.syncs));
        self.inner.program(offset, data)
    }
    fn erase(&mut self, block: u32) -> Result<(), MemError> {
        self.inner.erase(block)
    }
    fn sync(&mut self) -> Result<(), MemError> {
        self.syncs += 1;
        self.inner.sync()
    }
}

/// The log a workload leaves, kept independently of the code under test.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Model {
    entries: BTreeMap<u64, Vec<u8>>,
    next: Option<u64>,
    meta: BTreeMap<String, Vec<u8>>,
}

fn opts() -> WalOptions {
    WalOptions::default()
        .cache_bytes(0)
        .cache_entries(0)
        .write_buffer(256)
        .read_window(512)
        .max_grow_blocks(0)
}

fn data(i: u64, gen: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|k| (i as usize * 31 + k * 7 + gen as usize * 13) as u8)
        .collect()
}

/// Appends, syncs, truncates, compacts (also past the last index), meta
/// set/remove; fully synced at the end. Meta changes follow a sync, so each
/// program into the head block belongs to exactly one sync interval.
fn workload(g: Geometry) -> (Tracker, Model) {
    let dev = Tracker {
        inner: MemDevice::with_geometry(g, g.block_count),
        syncs: 0,
        programs: Vec::new(),
    };
    let mut w = Wal::open_with(dev, opts()).unwrap();
    let mut m = Model::default();
    let unit = (g.block_size as usize / 16).max(8);
    let mut gen = 0;
    let mut append = |w: &mut Wal<Tracker>, m: &mut Model, i: u64, len: usize| {
        gen += 1;
        let d = data(i, gen, len);
        w.append(i, &d).unwrap();
        m.entries.insert(i, d);
        m.next = Some(i + 1);
    };
    let set = |w: &mut Wal<Tracker>, m: &mut Model, k: &str, v: &[u8]| {
        w.set_meta(k, v).unwrap();
        m.meta.insert(k.to_string(), v.to_vec());
    };
    set(&mut w, &mut m, "term", b"1");
    set(&mut w, &mut m, "vote", b"node-a");
    for i in 1..=30u64 {
        append(&mut w, &mut m, i, unit / 2 + (i as usize * 5) % unit);
        if i % 5 == 0 {
            w.sync().unwrap();
        }
    }
    w.sync().unwrap();
    // Truncate, then overwrite the tail with a new term's entries.
    w.truncate(27).unwrap();
    m.entries.split_off(&27);
    for i in 27..=34u64 {
        append(&mut w, &mut m, i, unit / 3 + i as usize % 7);
    }
    w.sync().unwrap();
    set(&mut w, &mut m, "term", b"2");
    w.remove_meta("vote").unwrap();
    m.meta.remove("vote");
    // One entry split over blocks.
    append(&mut w, &mut m, 35, g.block_size as usize * 7 / 10);
    w.sync().unwrap();
    w.compact(12).unwrap();
    m.entries = m.entries.split_off(&13);
    for i in 36..=45u64 {
        append(&mut w, &mut m, i, unit / 2 + i as usize % 11);
    }
    w.sync().unwrap();
    // Compact past the last index: an empty log whose next index is 49.
    w.compact(48).unwrap();
    m.entries.clear();
    m.next = Some(49);
    for i in 49..=60u64 {
        append(&mut w, &mut m, i, unit / 2 + i as usize % 13);
        if i % 4 == 0 {
            w.sync().unwrap();
        }
    }
    w.sync().unwrap();
    set(&mut w, &mut m, "vote", b"node-b");
    w.truncate(58).unwrap();
    m.entries.split_off(&58);
    m.next = Some(58);
    for i in 58..=61u64 {
        append(&mut w, &mut m, i, unit / 2);
    }
    w.sync().unwrap();
    let dev = w.into_device();
    (dev, m)
}

/// The log as a strict open reads it; `Err` if any typed error shows.
fn read_back(g: Geometry, image: Vec<u8>) -> Result<Model, String> {
    let w = Wal::open_with(MemDevice::from_image(g, image), opts()).map_err(|e| e.to_string())?;
    let mut m = Model {
        next: w.next_index(),
        ..Model::default()
    };
    if let (Some(first), Some(last)) = (w.first_index(), w.last_index()) {
        for i in first..=last {
            match w.try_get(i) {
                Ok(Some(d)) => {
                    m.entries.insert(i, d.into_owned());
                }
                Ok(None) => return Ok(Model::default()),
                Err(e) => return Err(e.to_string()),
            }
        }
    }
    let keys: Vec<String> = w.meta_keys().map(String::from).collect();
    for k in keys {
        m.meta.insert(k.clone(), w.get_meta(&k).unwrap().to_vec());
    }
    Ok(m)
}

#[derive(Default, Debug)]
struct Tally {
    flips: u64,
    detected: u64,
    harmless: u64,
    newest: u64,
    silent: u64,
}

fn run(name: &str, g: Geometry) -> Tally {
    let (dev, model) = workload(g);
    let image = dev.inner.image().to_vec();
    assert_eq!(
        read_back(g, image.clone()),
        Ok(model.clone()),
        "{name}: clean image"
    );
    // The newest write of the log chain: what was programmed into the head
    // block after the last sync that preceded a program into it.
    let mut probe = MemDevice::from_image(g, image.clone());
    let report = verify(&mut probe).unwrap();
    assert!(report.is_sound(), "{name}: {:?}", report.problems);
    let head = u64::from(*report.chain.last().unwrap());
    let bs = u64::from(g.block_size);
    let in_head: Vec<_> = dev
        .programs
        .iter()
        .filter(|(off, _, _)| off / bs == head)
        .collect();
    let last_epoch = in_head.iter().map(|p| p.2).max().unwrap();
    let newest: Vec<(u64, u64)> = in_head
        .iter()
        .filter(|p| p.2 == last_epoch)
        .map(|&&(off, len, _)| (off, off + len as u64))
        .collect();
    let mut t = Tally::default();
    let mut shown = 0;
    for pos in 0..image.len() {
        for mask in [0x01u8, 0x80] {
            let mut bad = image.clone();
            bad[pos] ^= mask;
            t.flips += 1;
            match read_back(g, bad) {
                Err(_) => t.detected += 1,
                Ok(got) if got == model.clone() => t.harmless += 1,
                Ok(got) => {
                    let p = pos as u64;
                    if newest.iter().any(|&(a, b)| a <= p && p < b) {
                        t.newest += 1;
                    } else {
                        t.silent += 1;
                        if shown < 5 {
                            shown += 1;
                            eprintln!(
                                "{name}: SILENT byte {pos} (block {}, offset {}) ^ {mask:#x}: got first {:?} next {:?} meta {:?}, want first {:?} next {:?} meta {:?}",
                                p / bs,
                                p % bs,
                                got.entries.keys().next(),
                                got.next,
                                got.meta,
                                model.entries.keys().next(),
                                model.next,
                                model.meta
                            );
                        }
                    }
                }
            }
        }
    }
    println!(
        "{name}: bit flips: {}, detected: {}, harmless: {}, newest write: {}, silent: {}",
        t.flips, t.detected, t.harmless, t.newest, t.silent
    );
    t
}

fn check(name: &str, g: Geometry) {
    let t = run(name, g);
    assert!(t.detected > 0 && t.harmless > 0, "{name}: {t:?}");
    assert_eq!(t.silent, 0, "{name}: silent corruption: {t:?}");
}

#[test]
fn bitflips_file_512() {
    check(
        "file 512 B",
        Geometry {
            block_size: 512,
            program_size: 1,
            block_count: 14,
            erase_value: None,
        },
    );
}

#[test]
fn bitflips_file_4k() {
    check(
        "file 4 KiB",
        Geometry {
            block_size: 4096,
            program_size: 1,
            block_count: 8,
            erase_value: None,
        },
    );
}

#[test]
fn bitflips_flash_4() {
    check(
        "flash 512 B / 4 B units",
        Geometry {
            block_size: 512,
            program_size: 4,
            block_count: 14,
            erase_value: Some(0xFF),
        },
    );
}

#[test]
fn bitflips_flash_8() {
    check(
        "flash 1 KiB / 8 B units",
        Geometry {
            block_size: 1024,
            program_size: 8,
            block_count: 12,
            erase_value: Some(0xFF),
        },
    );
}
