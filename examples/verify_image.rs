//! `blockwal::verify` as a library: check a log image read-only and print
//! what is wrong, where. Give it a raw image (for example a flash dump copied
//! off a board) and its geometry, or nothing to check a demo image with one
//! flipped byte.
//!
//! ```text
//! cargo run --example verify_image [-- IMAGE BLOCK_SIZE PROGRAM_SIZE [ERASE_VALUE]]
//! ```

use blockwal::verify::verify;
use blockwal::{Geometry, MemDevice, Wal};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let demo = args.is_empty();
    let mut dev = match &args[..] {
        [path, block, program, rest @ ..] => {
            let image = std::fs::read(path)?;
            let block_size: u32 = block.parse()?;
            let geometry = Geometry {
                block_size,
                program_size: program.parse()?,
                block_count: u32::try_from(image.len() / block_size.max(1) as usize)?,
                erase_value: rest.first().map(|v| v.parse()).transpose()?,
            };
            MemDevice::from_image(geometry, image)
        }
        _ => demo_image()?,
    };

    let report = verify(&mut dev)?;
    println!(
        "entries {:?}..={:?}, {} blocks on the chain, {} free",
        report.first_index,
        report.last_index,
        report.chain.len(),
        report.free_blocks
    );
    for n in &report.notes {
        println!("note: block {} offset {}: {}", n.block, n.offset, n.what);
    }
    for p in &report.problems {
        println!("problem: block {} offset {}: {}", p.block, p.offset, p.what);
    }
    match (report.is_sound(), demo) {
        (true, false) => println!("sound"),
        (false, false) => std::process::exit(1),
        (false, true) => println!("found the flipped byte, as expected"),
        (true, true) => return Err("verify missed the flipped byte of the demo image".into()),
    }
    Ok(())
}

/// A log of 50 entries over several blocks, with one byte of entry 5 (in an
/// older block, where a bad record is corruption, not a torn last write)
/// flipped.
fn demo_image() -> Result<MemDevice, Box<dyn std::error::Error>> {
    let mut wal = Wal::open(MemDevice::new(4096, 16, 16))?;
    for i in 1..=50u64 {
        wal.append(i, format!("entry {i:04} {:>190}", "").as_bytes())?;
    }
    wal.sync()?;
    let mut dev = wal.into_device();
    let at = dev
        .image()
        .windows(10)
        .position(|w| w == b"entry 0005")
        .ok_or("entry 5 not found in the image")?;
    dev.image_mut()[at] ^= 0x01;
    println!("demo image: flipped a byte of entry 5 at device offset {at}");
    Ok(dev)
}
