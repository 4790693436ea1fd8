//! Regressions for the corruption and hostile-image findings of the
//! integrity issue: each opened successfully as a different log (or hung,
//! or panicked) before format version 2; now each is a typed error or the
//! same log.

use blockwal::verify::{verify, BlockKind};
use blockwal::{BlockDevice, Error, Geometry, MemDevice, MemError, Wal};

const FILE: Geometry = Geometry {
    block_size: 512,
    program_size: 1,
    block_count: 16,
    erase_value: None,
};

fn data(i: u64, len: usize) -> Vec<u8> {
    (0..len).map(|k| (i as usize * 7 + k) as u8).collect()
}

/// A version 2 block header (FORMAT.md, "Block header"), built by hand as a
/// reader from the document would.
fn header(seq: u64, prev: u64, base: u64, floor: u64, prev_end: u32, bs: u32) -> [u8; 48] {
    let mut b = [0u8; 48];
    b[0..4].copy_from_slice(b"BWAL");
    b[4] = 2;
    b[5] = 1;
    b[8..16].copy_from_slice(&seq.to_le_bytes());
    let back = if prev == 0 { 0 } else { (seq - prev) as u32 };
    b[16..20].copy_from_slice(&back.to_le_bytes());
    b[20..24].copy_from_slice(&prev_end.to_le_bytes());
    b[24..32].copy_from_slice(&base.to_le_bytes());
    b[32..40].copy_from_slice(&floor.to_le_bytes());
    b[40..44].copy_from_slice(&bs.to_le_bytes());
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(&b[..44]);
    b[44..48].copy_from_slice(&crc.to_le_bytes());
    b
}

fn seq_of(image: &[u8], g: Geometry, block: u32) -> u64 {
    let at = (block * g.block_size) as usize + 8;
    u64::from_le_bytes(image[at..at + 8].try_into().unwrap())
}

/// The live head and meta block of a sound image.
fn live(g: Geometry, image: &[u8]) -> (u32, Option<u32>, Vec<u32>) {
    let r = verify(&mut MemDevice::from_image(g, image.to_vec())).unwrap();
    assert!(r.is_sound(), "{:?}", r.problems);
    let meta = r
        .blocks
        .iter()
        .find(|b| b.live && b.kind == BlockKind::Meta)
        .map(|b| b.block);
    (*r.chain.last().unwrap(), meta, r.chain)
}

fn corrupt<T>(r: Result<T, Error<MemError>>) -> bool {
    matches!(r, Err(Error::Corrupt { .. }))
}

/// Term and vote moved to a second meta block (files keep the first, with
/// older values): a flipped header of the current one used to let the old
/// block rule (term reverted, vote lost).
#[test]
fn meta_header_flip_never_reverts_term_or_vote() {
    let mut w = Wal::open(MemDevice::with_geometry(FILE, 16)).unwrap();
    w.append(1, b"x").unwrap();
    w.sync().unwrap();
    for t in 0..40u32 {
        w.set_meta("term", t.to_string().as_bytes()).unwrap();
    }
    w.set_meta("vote", b"node-7").unwrap();
    let image = w.into_device().image().to_vec();
    let (_, meta, _) = live(FILE, &image);
    let meta = meta.unwrap();
    let mut bad_blocks = 0;
    for at in 0..48usize {
        for mask in [0x01u8, 0x80] {
            let mut bad = image.clone();
            bad[(meta * FILE.block_size) as usize + at] ^= mask;
            match Wal::open(MemDevice::from_image(FILE, bad)) {
                Err(Error::Corrupt { block, .. }) => {
                    assert_eq!(block, meta);
                    bad_blocks += 1;
                }
                Err(e) => panic!("header byte {at}: {e}"),
                Ok(w) => {
                    assert_eq!(w.get_meta("term"), Some(&b"39"[..]), "header byte {at}");
                    assert_eq!(w.get_meta("vote"), Some(&b"node-7"[..]), "header byte {at}");
                }
            }
        }
    }
    assert!(bad_blocks > 80, "{bad_blocks}");
}

/// A flipped record in the newest block used to stop replay there and drop
/// the synced TRUNCATE after it: truncated entries came back.
#[test]
fn record_flip_in_newest_block_keeps_a_synced_truncate() {
    let mut w = Wal::open(MemDevice::with_geometry(FILE, 16)).unwrap();
    for i in 1..=40u64 {
        w.append(i, &data(i, 20)).unwrap();
        if i % 3 == 0 {
            w.sync().unwrap();
        }
    }
    w.sync().unwrap();
    w.truncate(38).unwrap();
    let image = w.into_device().image().to_vec();
    let (head, _, _) = live(FILE, &image);
    // The head's first record (written before the truncation's sync).
    let at = (head * FILE.block_size) as usize + 48 + 20;
    let mut bad = image.clone();
    bad[at] ^= 0x01;
    match Wal::open(MemDevice::from_image(FILE, bad)) {
        Err(Error::Corrupt { block, offset, .. }) => assert_eq!((block, offset), (head, 48)),
        Err(e) => panic!("{e}"),
        Ok(w) => panic!(
            "opened as a different log: last {:?} (truncated at 38)",
            w.last_index()
        ),
    }
}

/// A flipped log block header used to make the block look free: compacted
/// entries came back or synced ones vanished.
#[test]
fn block_header_flip_never_brings_back_compacted_entries() {
    let mut w = Wal::open(MemDevice::with_geometry(FILE, 16)).unwrap();
    for i in 1..=60u64 {
        w.append(i, &data(i, 30)).unwrap();
    }
    w.sync().unwrap();
    w.compact(50).unwrap();
    let image = w.into_device().image().to_vec();
    let (_, _, chain) = live(FILE, &image);
    for &b in &chain {
        for at in 0..48usize {
            let mut bad = image.clone();
            bad[(b * FILE.block_size) as usize + at] ^= 0x80;
            match Wal::open(MemDevice::from_image(FILE, bad)) {
                Err(Error::Corrupt { .. }) => {}
                Err(e) => panic!("block {b} byte {at}: {e}"),
                Ok(w) => assert_eq!(
                    (w.first_index(), w.last_index()),
                    (Some(51), Some(60)),
                    "block {b} byte {at}"
                ),
            }
        }
    }
}

/// NOR: a summary whose trailer units were programmed and whose table units
/// are still erased (an interrupted program) used to make synced entries
/// unreadable (lookups through offsets 0xFFFFFFFF).
#[test]
fn torn_nor_summary_keeps_entries_readable() {
    let g = Geometry {
        block_size: 256,
        program_size: 4,
        block_count: 8,
        erase_value: Some(0xFF),
    };
    let mut w = Wal::open(MemDevice::with_geometry(g, 8)).unwrap();
    for i in 1..=3u64 {
        w.append(i, &data(i, 10)).unwrap();
    }
    w.sync().unwrap();
    w.append(4, &data(4, 200)).unwrap();
    w.sync().unwrap();
    let mut image = w.into_device().image().to_vec();
    let r = verify(&mut MemDevice::from_image(g, image.clone())).unwrap();
    assert_eq!(r.chain[0], 0);
    // Block 0's summary: 3 entries, table of 4 offsets before the trailer.
    let table = 256 - 40 - 16..256 - 40;
    assert!(image[table.clone()].iter().any(|&b| b != 0xFF));
    image[table].fill(0xFF);
    let w = Wal::open(MemDevice::from_image(g, image)).unwrap();
    for i in 1..=3u64 {
        assert_eq!(
            w.try_get(i).unwrap().as_deref(),
            Some(&data(i, 10)[..]),
            "{i}"
        );
    }
    assert_eq!(w.try_get(4).unwrap().as_deref(), Some(&data(4, 200)[..]));
}

/// Hostile image (a): a NOR log block with seq 7, base 5 and header floor
/// 1000 opened with next = 1000, accepted `append(1000)` + `sync`, and lost
/// the entry at the next open. The floor rule refuses it.
#[test]
fn hostile_floor_above_base_is_refused() {
    let g = Geometry {
        block_size: 512,
        program_size: 4,
        block_count: 8,
        erase_value: Some(0xFF),
    };
    let mut image = vec![0xFFu8; 512 * 8];
    image[..48].copy_from_slice(&header(7, 0, 5, 1000, 0, 512));
    match Wal::open(MemDevice::from_image(g, image)) {
        Err(Error::Corrupt { block: 0, .. }) => {}
        Err(e) => panic!("{e}"),
        Ok(mut w) => {
            let next = w.next_index().unwrap();
            w.append(next, b"acknowledged").unwrap();
            w.sync().unwrap();
            let w = Wal::open(w.into_device()).unwrap();
            assert_eq!(w.get(next).as_deref(), Some(&b"acknowledged"[..]));
        }
    }
}

/// Hostile image (b): a crafted head without records, linked to an older
/// block than the newest remaining one, used to be dropped and the walk
/// continued from its predecessor: the newest blocks were silently lost.
#[test]
fn hostile_dropped_head_must_link_to_the_newest_remaining_block() {
    let mut w = Wal::open(MemDevice::with_geometry(FILE, 16)).unwrap();
    for i in 1..=40u64 {
        w.append(i, &data(i, 40)).unwrap();
    }
    w.sync().unwrap();
    let mut image = w.into_device().image().to_vec();
    let (_, _, chain) = live(FILE, &image);
    assert!(chain.len() >= 3);
    let old = chain[0];
    let max_seq = (0..16).map(|b| seq_of(&image, FILE, b)).max().unwrap();
    let free = (0..16u32).find(|b| !chain.contains(b)).unwrap();
    let at = (free * 512) as usize;
    image[at..at + 512].fill(0);
    let h = header(max_seq + 1, seq_of(&image, FILE, old), 5, 1, 500, 512);
    image[at..at + 48].copy_from_slice(&h);
    match Wal::open(MemDevice::from_image(FILE, image)) {
        Err(Error::Corrupt { .. }) => {}
        Err(e) => panic!("{e}"),
        Ok(w) => assert_eq!(w.last_index(), Some(40), "opened an older chain"),
    }
}

/// Counts device reads.
struct Counting {
    inner: MemDevice,
    reads: u64,
}

impl BlockDevice for Counting {
    type Error = MemError;
    fn geometry(&self) -> Geometry {
        self.inner.geometry()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), MemError> {
        self.reads += 1;
        self.inner.read(offset, buf)
    }
    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), MemError> {
        self.inner.program(offset, data)
    }
    fn erase(&mut self, block: u32) -> Result<(), MemError> {
        self.inner.erase(block)
    }
    fn sync(&mut self) -> Result<(), MemError> {
        self.inner.sync()
    }
}

/// A crafted chain of 16,384 empty 256 B blocks (128 B ones, as first
/// reported, are refused at open now) whose oldest link is broken:
/// every restart used to walk the whole chain again (134 M reads, 12 s).
/// The walk is linear now: a few reads per block.
#[test]
fn crafted_chain_opens_in_linear_reads() {
    let n = 16_384u32;
    let g = Geometry {
        block_size: 256,
        program_size: 1,
        block_count: n,
        erase_value: None,
    };
    let mut image = vec![0u8; 256 * n as usize];
    for b in 0..n {
        let seq = u64::from(b) + 1;
        // The oldest block claims a base the next one does not continue.
        let base = if b == 0 { 0 } else { 1 };
        let h = header(seq, seq - 1, base, 0, 48, 256);
        image[(b * 256) as usize..(b * 256) as usize + 48].copy_from_slice(&h);
    }
    let mut dev = Counting {
        inner: MemDevice::from_image(g, image),
        reads: 0,
    };
    let r = Wal::open(&mut dev).map(|w| w.next_index());
    assert!(corrupt(r), "the broken oldest link must be reported");
    assert!(
        dev.reads < 8 * u64::from(n),
        "{} device reads for {n} blocks",
        dev.reads
    );
}

/// A head whose seq is 2^64 - 2 used to open, then overflow `seq + 1` when
/// the next block was allocated (a panic in debug, a wrap in release).
#[test]
fn seq_near_the_top_is_a_typed_error() {
    for seq in [u64::MAX - 1, u64::MAX, 1 << 63, (1 << 63) - 1] {
        let mut image = vec![0u8; 512 * 8];
        image[..48].copy_from_slice(&header(seq, 0, 1, 1, 0, 512));
        let g = Geometry {
            block_count: 8,
            ..FILE
        };
        match Wal::open(MemDevice::from_image(g, image)) {
            Err(Error::Corrupt { .. }) => {}
            Err(e) => panic!("seq {seq}: {e}"),
            Ok(_) => panic!("seq {seq}: opened"),
        }
    }
}

/// Found by the long crash run (10^7 points): a version 2 header torn right
/// after its magic, with garbage whose first byte is 1 where the version
/// goes, was taken for a format version 1 log and the open refused the
/// whole device. Only a whole, valid version 1 header means a v1 log.
#[test]
fn torn_header_is_not_a_version_1_log() {
    let g = Geometry {
        block_count: 8,
        ..FILE
    };
    let mut image = vec![0u8; 512 * 8];
    image[0..4].copy_from_slice(b"BWAL");
    image[4] = 1;
    for (k, b) in image[5..48].iter_mut().enumerate() {
        *b = (k as u8).wrapping_mul(37).wrapping_add(11);
    }
    let w = Wal::open(MemDevice::from_image(g, image)).expect("a torn header is a free block");
    assert_eq!(w.first_index(), None);

    // A whole version 1 header (its CRC at 44, over bytes 0..44) is refused.
    let mut v1 = [0u8; 48];
    v1[0..4].copy_from_slice(b"BWAL");
    v1[4] = 1;
    v1[5] = 1;
    v1[8..16].copy_from_slice(&1u64.to_le_bytes());
    v1[40..44].copy_from_slice(&512u32.to_le_bytes());
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(&v1[..44]);
    v1[44..48].copy_from_slice(&crc.to_le_bytes());
    let mut image = vec![0u8; 512 * 8];
    image[..48].copy_from_slice(&v1);
    match Wal::open(MemDevice::from_image(g, image)) {
        Err(Error::Geometry(w)) => assert!(w.contains("version 1"), "{w}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a version 1 log opened"),
    }
}

/// `set_meta_deferred` costs no sync of its own and rides on the next one
/// (one sync where `set_meta` takes two: record, then MARK); a power cut
/// before that sync keeps the old value, after it the new one, and a
/// durable change after it is not mistaken for corruption.
#[test]
fn deferred_meta_rides_on_the_next_sync() {
    use blockwal::{CutPlan, SimDevice, SimOpKind, SimOptions};
    // Device syncs of one session (open, `f`, close) on `d`.
    fn run(d: SimDevice, f: impl FnOnce(&mut Wal<SimDevice>)) -> (u64, SimDevice) {
        let before = d.count(SimOpKind::Sync);
        let mut w = Wal::open(d).unwrap();
        f(&mut w);
        let d = w.into_device();
        (d.count(SimOpKind::Sync) - before, d)
    }
    // A reopened file's meta block takes no appends (its tail is unknown):
    // a session's first change starts a new one. The syncs `f` costs after
    // such a warm-up change: a session with it less one without.
    fn session(d: SimDevice, f: impl FnOnce(&mut Wal<SimDevice>)) -> (u64, SimDevice) {
        let warm = |w: &mut Wal<SimDevice>| w.set_meta("warm", b"").unwrap();
        let (base, d) = run(d, warm);
        let (all, d) = run(d, |w| {
            warm(w);
            f(w);
        });
        (all - base, d)
    }
    let mut w = Wal::open(SimDevice::new(SimOptions::new(FILE))).unwrap();
    w.set_meta("c", b"old").unwrap();
    w.set_meta("vote", b"v0").unwrap();
    let d = w.into_device();
    let (one, d) = session(d, |w| w.set_meta("vote", b"v1").unwrap());
    let (two, d) = session(d, |w| {
        w.set_meta("vote", b"v1").unwrap();
        w.set_meta("vote", b"v1").unwrap();
    });
    assert_eq!(
        two - one,
        2,
        "a durable set: the record's sync, then the MARK's"
    );
    let (plain, d) = session(d, |w| {
        w.append(1, b"entry").unwrap();
        w.sync().unwrap();
    });
    let (riding, d) = session(d, |w| {
        w.append(2, b"entry").unwrap();
        w.set_meta_deferred("c", b"new").unwrap();
        w.sync().unwrap();
    });
    assert_eq!(riding, plain, "the entry's sync carries the deferred set");
    let w = Wal::open(d.after_crash(&CutPlan::LOSE_UNSYNCED)).unwrap();
    assert_eq!(w.get_meta("c"), Some(&b"new"[..]));

    // Cut before any sync: the old value survives.
    let (zero, _) = run(d.clone(), |w| w.set_meta("warm", b"").unwrap());
    let (none, d) = run(d, |w| {
        w.set_meta("warm", b"").unwrap();
        w.set_meta_deferred("c", b"lost").unwrap();
        assert_eq!(w.get_meta("c"), Some(&b"lost"[..]));
    });
    assert_eq!(none, zero, "a deferred set syncs nothing");
    let mut w = Wal::open(d.after_crash(&CutPlan::LOSE_UNSYNCED)).unwrap();
    assert_eq!(w.get_meta("c"), Some(&b"new"[..]));
    assert_eq!(w.get_meta("vote"), Some(&b"v1"[..]));
    // A deferred set, then a durable one: both survive, nothing is corrupt.
    w.set_meta_deferred("c", b"third").unwrap();
    w.set_meta("vote", b"v2").unwrap();
    let d = w.into_device();
    let w = Wal::open(d.after_crash(&CutPlan::LOSE_UNSYNCED)).unwrap();
    assert_eq!(w.get_meta("c"), Some(&b"third"[..]));
    assert_eq!(w.get_meta("vote"), Some(&b"v2"[..]));
}
