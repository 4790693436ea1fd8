//! Corrupted device content: open returns the valid prefix or a typed error,
//! never a panic, and never returns bytes that were not written.

use blockwal::conformance::payload;
use blockwal::{Error, Geometry, MemDevice, Wal};

/// (index, payload length) of entries.
type Lens = Vec<(u64, usize)>;

/// A log spread over many small blocks: entries, a fragmented entry,
/// truncation, compaction and metadata, all synced. Returns the image, the
/// entries the log holds, and every entry ever written.
fn build(g: Geometry) -> (Vec<u8>, Lens, Lens) {
    let mut w = Wal::open(MemDevice::with_geometry(g, g.block_count)).unwrap();
    let mut lens = Vec::new();
    for i in 1..=40u64 {
        let len = if i == 17 { 700 } else { (i as usize * 11) % 90 };
        w.append(i, &payload(i, len)).unwrap();
        lens.push((i, len));
        if i % 7 == 0 {
            w.sync().unwrap();
        }
    }
    let written = lens.clone();
    w.truncate(36).unwrap();
    lens.truncate(35);
    w.compact(3).unwrap();
    lens.drain(..3);
    w.set_meta("term", b"3").unwrap();
    w.sync().unwrap();
    (w.into_device().image().to_vec(), lens, written)
}

/// The block holding the newest log block header (highest sequence number).
fn head_block(g: Geometry, image: &[u8]) -> usize {
    let bs = g.block_size as usize;
    (0..g.block_count as usize)
        .filter(|b| &image[b * bs..b * bs + 4] == b"BWAL" && image[b * bs + 5] == 1)
        .max_by_key(|b| u64::from_le_bytes(image[b * bs + 8..b * bs + 16].try_into().unwrap()))
        .unwrap()
}

/// Opens `image` and checks whatever it yields: never bytes that were not
/// written (`lens`: the entries that may appear).
fn check(g: Geometry, image: Vec<u8>, lens: &[(u64, usize)]) -> Result<usize, String> {
    let w = match Wal::open(MemDevice::from_image(g, image)) {
        Ok(w) => w,
        Err(Error::Corrupt { .. }) => return Ok(0),
        Err(e) => return Err(format!("open gave an unexpected error: {e}")),
    };
    let (Some(first), Some(last)) = (w.first_index(), w.last_index()) else {
        return Ok(0);
    };
    let mut good = 0;
    for i in first..=last {
        let Some(&(_, len)) = lens.iter().find(|(k, _)| *k == i) else {
            return Err(format!("entry {i} appeared that the log never held"));
        };
        match w.try_get(i) {
            Ok(Some(d)) if d.as_ref() == payload(i, len).as_slice() => good += 1,
            Ok(Some(_)) => return Err(format!("entry {i} returned wrong bytes")),
            Ok(None) => return Err(format!("entry {i} missing inside [{first}, {last}]")),
            Err(Error::Corrupt { .. }) => {}
            Err(e) => return Err(format!("entry {i}: unexpected error {e}")),
        }
    }
    if let Some(v) = w.get_meta("term") {
        if v != b"3" {
            return Err(format!("meta term = {v:?}"));
        }
    }
    Ok(good)
}

/// Flips every byte in turn. Outside the newest block's records the result
/// must be exactly the log, a subset whose missing entries are read errors,
/// or a corruption error. Inside them a flip cannot be told from a torn
/// unsynced tail (files may keep later writes and lose earlier ones), so
/// replay stops there: the log may then show older state, but still never
/// bytes that were not written.
fn every_byte_flipped(g: Geometry) {
    let (image, lens, written) = build(g);
    assert_eq!(
        check(g, image.clone(), &lens),
        Ok(lens.len()),
        "clean image"
    );
    let bs = g.block_size as usize;
    let head = head_block(g, &image);
    let used = image.len()
        - image
            .iter()
            .rev()
            .take_while(|&&b| b == g.erase_value.unwrap_or(0))
            .count();
    for pos in 0..used {
        let in_head_records = pos / bs == head && pos % bs >= 48;
        let allowed = if in_head_records { &written } else { &lens };
        for mask in [0x01u8, 0x80] {
            let mut bad = image.clone();
            bad[pos] ^= mask;
            if let Err(e) = check(g, bad, allowed) {
                panic!(
                    "byte {pos} ^ {mask:#x} (block {}, head {head}): {e}",
                    pos / bs
                );
            }
        }
    }
}

#[test]
fn flips_on_file_like_geometry() {
    every_byte_flipped(Geometry {
        block_size: 256,
        program_size: 1,
        block_count: 48,
        erase_value: None,
    });
}

#[test]
fn flips_on_flash_like_geometry() {
    every_byte_flipped(Geometry {
        block_size: 512,
        program_size: 8,
        block_count: 32,
        erase_value: Some(0xFF),
    });
}

#[test]
fn random_garbage_images_never_panic() {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for round in 0..300 {
        let g = Geometry {
            block_size: 256 << (round % 3),
            program_size: 1 << (round % 4),
            block_count: 8 + round % 9,
            erase_value: [None, Some(0xFF)][round as usize % 2],
        };
        let image: Vec<u8> = (0..g.capacity())
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        check(g, image, &[]).unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
}

#[test]
fn garbage_blocks_spliced_into_a_valid_log() {
    let g = Geometry {
        block_size: 256,
        program_size: 1,
        block_count: 48,
        erase_value: None,
    };
    let (image, lens, _) = build(g);
    for victim in 0..g.block_count as usize {
        let mut bad = image.clone();
        // Stale copy of another block: a valid-looking block in the wrong place.
        let src = (victim + 5) % g.block_count as usize;
        let (a, b) = (victim * 256, src * 256);
        let copy = bad[b..b + 256].to_vec();
        bad[a..a + 256].copy_from_slice(&copy);
        check(g, bad, &lens).unwrap_or_else(|e| panic!("block {victim} replaced by {src}: {e}"));
    }
}

/// A head whose link (`seq - prev`, FORMAT.md) points to itself or forward
/// must not make recovery loop: such a header is not valid, and the sealed
/// block below it then shows the newest block is missing.
#[test]
fn self_and_forward_links_terminate() {
    let g = Geometry {
        block_size: 256,
        program_size: 1,
        block_count: 48,
        erase_value: None,
    };
    let (image, _, _) = build(g);
    let head = head_block(g, &image) * 256;
    let seq = u64::from_le_bytes(image[head + 8..head + 16].try_into().unwrap());
    for back in [seq, seq + 1, u64::from(u32::MAX)] {
        let mut bad = image.clone();
        bad[head + 16..head + 20].copy_from_slice(&(back as u32).to_le_bytes());
        // Re-seal the header so only the link is wrong.
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(&bad[head..head + 44]);
        bad[head + 44..head + 48].copy_from_slice(&crc.to_le_bytes());
        match Wal::open(MemDevice::from_image(g, bad)) {
            Err(Error::Corrupt { .. }) => {}
            Err(e) => panic!("back = {back}: unexpected {e}"),
            Ok(_) => panic!("back = {back}: a forward link was accepted"),
        }
    }
}
