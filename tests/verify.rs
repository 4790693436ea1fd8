//! `blockwal::verify` finds a flipped byte in every kind of place a log
//! keeps bytes, on a file-like and a flash-like geometry, and passes a sound
//! log (including one reopened and continued, as after a crash).

use blockwal::verify::{verify, BlockKind, Report, SummaryState};
use blockwal::{Geometry, MemDevice, Wal, WalOptions};

const BS: u32 = 4096;

fn geometries() -> [Geometry; 2] {
    [
        Geometry {
            block_size: BS,
            program_size: 1,
            block_count: 16,
            erase_value: None,
        },
        Geometry {
            block_size: BS,
            program_size: 4,
            block_count: 16,
            erase_value: Some(0xFF),
        },
    ]
}

fn payload(i: u64) -> Vec<u8> {
    let mut v = format!("entry {i} ").into_bytes();
    v.resize(100 + (i % 7) as usize * 4, b'a' + (i % 26) as u8);
    v
}

/// A log over several sealed blocks, a head with a few records, and a meta
/// block holding a snapshot and later SET records.
fn build(g: Geometry) -> MemDevice {
    let opts = WalOptions::default()
        .cache_bytes(4096)
        .cache_entries(16)
        .write_buffer(1024)
        .read_window(1024)
        .max_grow_blocks(4);
    let mut wal = Wal::open_with(MemDevice::with_geometry(g, g.block_count), opts).unwrap();
    wal.set_meta("term", b"1").unwrap();
    for i in 1..=150u64 {
        wal.append(i, &payload(i)).unwrap();
        if i % 10 == 0 {
            wal.sync().unwrap();
        }
    }
    wal.compact(20).unwrap();
    wal.truncate(146).unwrap();
    wal.set_meta("term", b"2").unwrap();
    wal.set_meta("vote", b"node-1").unwrap();
    for i in 146..=150u64 {
        wal.append(i, &payload(i)).unwrap();
    }
    wal.sync().unwrap();
    // One more synced write: the head's earlier records are then followed
    // by a record that says they were durable (the newest write of a chain
    // cannot be told from a torn one; FORMAT.md, "The residual window").
    wal.append(151, &payload(151)).unwrap();
    wal.sync().unwrap();
    wal.into_device()
}

fn check(dev: &mut MemDevice) -> Report {
    verify(dev).unwrap()
}

fn rec_span(image: &[u8], at: usize, p: usize) -> (usize, usize) {
    let len = (u32::from_le_bytes(image[at + 4..at + 8].try_into().unwrap()) >> 8) as usize;
    (len, (16 + len).div_ceil(p) * p)
}

#[test]
fn a_sound_log_has_no_problems() {
    for g in geometries() {
        let mut dev = build(g);
        let r = check(&mut dev);
        assert!(r.is_sound(), "{g:?}: {:?}", r.problems);
        assert_eq!(r.first_index, Some(21));
        assert_eq!(r.last_index, Some(151));
        assert_eq!(r.meta.len(), 2);
        let sealed = r
            .blocks
            .iter()
            .filter(|b| b.live && b.summary == SummaryState::Valid)
            .count();
        assert!(sealed >= 2, "{g:?}: {:?}", r.blocks);
        // Reopen and continue: the reopened head is sealed as it was found.
        let mut wal = Wal::open(&mut dev).unwrap();
        for i in 152..=300u64 {
            wal.append(i, &payload(i)).unwrap();
        }
        wal.sync().unwrap();
        drop(wal);
        let r = check(&mut dev);
        assert!(r.is_sound(), "{g:?} reopened: {:?}", r.problems);
        assert_eq!(r.last_index, Some(300));
    }
}

#[test]
fn every_flipped_byte_class_is_found() {
    for g in geometries() {
        let clean = build(g);
        let mut probe = clean.clone();
        let r = check(&mut probe);
        let p = g.program_size as usize;
        let hdr = 48usize.div_ceil(p) * p;
        let base = |b: u32| b as usize * BS as usize;
        let sealed = r
            .blocks
            .iter()
            .find(|b| b.live && b.kind == BlockKind::Log && b.summary == SummaryState::Valid)
            .unwrap()
            .block;
        let head = *r.chain.last().unwrap();
        let meta = r
            .blocks
            .iter()
            .find(|b| b.live && b.kind == BlockKind::Meta)
            .unwrap()
            .block;
        let img = clean.image();
        let (len0, span0) = rec_span(img, base(sealed) + hdr, p);
        let (hlen0, _) = rec_span(img, base(head) + hdr, p);
        let (mlen0, _) = rec_span(img, base(meta) + hdr, p);
        let end = base(sealed) + BS as usize;
        let mut spots: Vec<(&str, u32, usize)> = Vec::new();
        for (name, off) in [
            ("header magic", 0),
            ("header kind", 5),
            ("header seq", 9),
            ("header prev", 17),
            ("header prev_end", 21),
            ("header base", 25),
            ("header floor", 33),
            ("header crc", 45),
        ] {
            spots.push((name, sealed, base(sealed) + off));
            spots.push((name, head, base(head) + off));
        }
        spots.push(("meta header", meta, base(meta) + 9));
        for (name, off) in [
            ("record crc", 1),
            ("record kind", 4),
            ("record len", 5),
            ("record index", 9),
        ] {
            spots.push((name, sealed, base(sealed) + hdr + off));
            spots.push((name, sealed, base(sealed) + hdr + span0 + off));
            spots.push((name, head, base(head) + hdr + off));
        }
        spots.push(("payload", sealed, base(sealed) + hdr + 16 + len0 / 2));
        spots.push(("payload end", sealed, base(sealed) + hdr + 16 + len0 - 1));
        spots.push(("head payload", head, base(head) + hdr + 16 + hlen0 / 2));
        for (name, back) in [
            ("trailer crc", 2),
            ("table crc", 6),
            ("trailer flags", 12),
            ("trailer count", 16),
            ("trailer next", 20),
            ("trailer floor", 30),
            ("trailer low", 38),
            ("table end", 42),
            ("table", 46),
        ] {
            spots.push((name, sealed, end - back));
        }
        spots.push(("meta snapshot header", meta, base(meta) + hdr + 5));
        spots.push((
            "meta snapshot payload",
            meta,
            base(meta) + hdr + 16 + mlen0 / 2,
        ));

        for (name, block, at) in spots {
            let mut dev = clean.clone();
            dev.image_mut()[at] ^= 0x10;
            let r = check(&mut dev);
            assert!(
                r.problems.iter().any(|f| f.block == block),
                "{g:?}: flipped {name} at {at} (block {block}): problems {:?}, notes {:?}",
                r.problems,
                r.notes
            );
            let first = r.first_problem().unwrap();
            assert!(first.offset <= at as u64 + BS as u64);
            // Opening never panics on it either.
            let _ = Wal::open(&mut dev).map(|w| w.last_index());
        }
    }
}

#[test]
fn garbage_and_heavily_damaged_images_never_panic() {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    for g in geometries() {
        let clean = build(g);
        for round in 0..200 {
            let mut dev = clean.clone();
            let img = dev.image_mut();
            let flips = 1 + rnd() % 64;
            for _ in 0..flips {
                let at = (rnd() % img.len() as u64) as usize;
                img[at] = if round % 2 == 0 {
                    rnd() as u8
                } else {
                    img[at] ^ 0xFF
                };
            }
            let r = check(&mut dev);
            let _ = (r.is_sound(), r.first_problem());
            let _ = Wal::open(&mut dev).map(|w| w.iter().count());
        }
        let mut junk = vec![0u8; (g.block_size * g.block_count) as usize];
        for b in junk.iter_mut() {
            *b = rnd() as u8;
        }
        let mut dev = MemDevice::from_image(g, junk);
        let _ = check(&mut dev);
    }
}
