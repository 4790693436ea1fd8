//! Opening trusts a sealed block's summary on its trailer and its end (the
//! end must equal the newer block's `prev_end`) and reads no table; the
//! table is checked at the first lookup into the block. A table that does
//! not validate is never used: the block is replayed record by record, and
//! a replay that disagrees with the trailer is `Corrupt` at read, never a
//! wrong entry (FORMAT.md, "Summary").

use blockwal::verify::verify;
use blockwal::{BlockDevice, Error, MemDevice, Wal};

const BS: usize = 4096;
const LEN: usize = 100;

fn data(i: u64, tag: u8) -> Vec<u8> {
    (0..LEN).map(|k| (i as u8) ^ (k as u8) ^ tag).collect()
}

/// The table of `block`'s summary holding `n` entries, as (offset in the
/// image of word 0, words).
fn table(image: &[u8], block: u32, n: usize) -> (usize, Vec<u32>) {
    let end = (block as usize + 1) * BS;
    let at = end - 40 - 4 * (n + 1);
    let words = image[at..end - 40]
        .chunks(4)
        .map(|w| u32::from_le_bytes(w.try_into().unwrap()))
        .collect();
    (at, words)
}

/// A log whose oldest block holds entries 1..=5, then (after a truncate to
/// 3) new entries 3.. with other payloads, sealed behind two more blocks.
/// Returns the image, the oldest block and its entry count.
fn sealed_log() -> (MemDevice, u32, usize) {
    let mut w = Wal::open(MemDevice::new(BS as u32, 8, 8)).unwrap();
    for i in 1..=5 {
        w.append(i, &data(i, 0)).unwrap();
    }
    w.sync().unwrap();
    w.truncate(3).unwrap();
    let mut i = 3;
    while i < 120 {
        w.append(i, &data(i, 0x5A)).unwrap();
        i += 1;
    }
    w.sync().unwrap();
    let mut dev = w.into_device();
    let r = verify(&mut dev).unwrap();
    let oldest = r.chain[0];
    let image = dev.image();
    let count = u32::from_le_bytes(
        image[(oldest as usize + 1) * BS - 16..][..4]
            .try_into()
            .unwrap(),
    ) as usize;
    assert!(count > 10, "the oldest block is sealed: {count} entries");
    (dev, oldest, count)
}

fn reopen(image: Vec<u8>) -> Wal<MemDevice> {
    let g = MemDevice::new(BS as u32, 8, 8).geometry();
    Wal::open(MemDevice::from_image(g, image)).unwrap()
}

#[test]
fn an_intact_log_opens_without_scanning_sealed_blocks_and_reads_back() {
    let (dev, _, _) = sealed_log();
    let w = reopen(dev.image().to_vec());
    // Only the head is read record by record.
    assert_eq!(w.recovery_report().blocks_scanned, 1);
    for i in 1..120 {
        let tag = if i < 3 { 0 } else { 0x5A };
        assert_eq!(w.try_get(i).unwrap(), Some(data(i, tag).into()), "{i}");
    }
}

/// The trap a lazily checked table must not fall into: entry 3 was
/// truncated and written again in the same block, so the old record 3 is
/// still there, valid, with index 3. A table pointing at it (its CRC no
/// longer matching) must not be followed.
#[test]
fn a_table_pointing_at_a_truncated_record_is_never_followed() {
    let (dev, oldest, n) = sealed_log();
    let mut image = dev.image().to_vec();
    let (at, words) = table(&image, oldest, n);
    // Entries 1, 2 and the old 3 were written back to back, equal in size.
    let old3 = words[1] + (words[1] - words[0]);
    assert!(old3 < words[2], "the old record 3 precedes the new one");
    image[at + 8..at + 12].copy_from_slice(&old3.to_le_bytes());
    let w = reopen(image);
    // Opening did not read the table (it would have scanned the block):
    // only the head was read record by record.
    assert_eq!(w.recovery_report().blocks_scanned, 1);
    assert_eq!(
        w.try_get(3).unwrap(),
        Some(data(3, 0x5A).into()),
        "read through the damaged table"
    );
    for i in 1..120 {
        let tag = if i < 3 { 0 } else { 0x5A };
        assert_eq!(w.try_get(i).unwrap(), Some(data(i, tag).into()), "{i}");
    }
}

/// A damaged table over damaged records: the replay disagrees with the
/// trailer, so reads into the block fail with `Corrupt`; the other blocks
/// still read.
#[test]
fn a_damaged_table_over_damaged_records_is_corrupt_at_read() {
    let (dev, oldest, n) = sealed_log();
    let mut image = dev.image().to_vec();
    let (at, words) = table(&image, oldest, n);
    image[at + 4] ^= 0x01;
    // A record in the middle of the block: the replay stops there.
    let mid = oldest as usize * BS + words[n / 2] as usize + 20;
    image[mid] ^= 0x40;
    let w = reopen(image);
    match w.try_get(1) {
        Err(Error::Corrupt { block, .. }) => assert_eq!(block, oldest),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(w.try_get(119).unwrap(), Some(data(119, 0x5A).into()));
}

/// A flipped end (the table's last word) no longer equals the newer block's
/// `prev_end`: opening checks the table then and there, scans the block, and
/// the scan's end matches (harmless, as before).
#[test]
fn a_flipped_end_is_checked_at_open() {
    let (dev, oldest, n) = sealed_log();
    let mut image = dev.image().to_vec();
    let (at, _) = table(&image, oldest, n);
    image[at + 4 * n] ^= 0x01;
    let w = reopen(image);
    assert_eq!(w.recovery_report().blocks_scanned, 2);
    for i in 1..120 {
        let tag = if i < 3 { 0 } else { 0x5A };
        assert_eq!(w.try_get(i).unwrap(), Some(data(i, tag).into()), "{i}");
    }
}

/// A memory device that counts its reads.
struct Reads {
    mem: MemDevice,
    n: std::rc::Rc<std::cell::Cell<u64>>,
}

impl BlockDevice for Reads {
    type Error = blockwal::MemError;
    fn geometry(&self) -> blockwal::Geometry {
        self.mem.geometry()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
        self.n.set(self.n.get() + 1);
        self.mem.read(offset, buf)
    }
    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), Self::Error> {
        self.mem.program(offset, data)
    }
    fn erase(&mut self, block: u32) -> Result<(), Self::Error> {
        self.mem.erase(block)
    }
    fn sync(&mut self) -> Result<(), Self::Error> {
        self.mem.sync()
    }
}

/// Checking a table lazily costs no extra read: the first get into a
/// sealed block reads the whole table (to check it) and takes the extent
/// from it, later gets read two table words; then the record. Two device
/// reads per uncached get, the first one too.
#[test]
fn an_uncached_get_is_two_device_reads_also_the_first_into_a_block() {
    let (dev, _, _) = sealed_log();
    let n = std::rc::Rc::new(std::cell::Cell::new(0));
    let dev = Reads {
        mem: MemDevice::from_image(dev.geometry(), dev.image().to_vec()),
        n: n.clone(),
    };
    let w = Wal::open(dev).unwrap();
    let sealed: Vec<u64> = (1..120).filter(|i| w.try_get(*i).is_ok()).collect();
    drop(w);
    // Each get on a freshly opened log, so no cache and no checked table.
    let (dev, _, _) = sealed_log();
    for first_of_block in [true, false] {
        let g = dev.geometry();
        let dev = Reads {
            mem: MemDevice::from_image(g, dev.image().to_vec()),
            n: n.clone(),
        };
        let w = Wal::open(dev).unwrap();
        if !first_of_block {
            // Check every table first.
            for i in &sealed {
                w.try_get(*i).unwrap();
            }
        }
        let mut worst = 0;
        for i in sealed.iter().step_by(7) {
            let before = n.get();
            let tag = if *i < 3 { 0 } else { 0x5A };
            assert_eq!(w.try_get(*i).unwrap(), Some(data(*i, tag).into()));
            worst = worst.max(n.get() - before);
        }
        assert!(
            worst <= 2,
            "{worst} device reads for one get (first into its block: {first_of_block})"
        );
    }
}
