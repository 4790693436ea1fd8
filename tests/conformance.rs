//! The conformance suite on every host device and several geometries.

use blockwal::conformance::run_all;
use blockwal::{FileDevice, Geometry, MemDevice};

const MIB: usize = 1 << 20;

fn mem(block_size: u32, program_size: u32, erase_value: Option<u8>) {
    let g = Geometry {
        block_size,
        program_size,
        block_count: 8,
        erase_value,
    };
    let max = (64 * MIB as u32 / block_size).max(64);
    let n = run_all(&mut || MemDevice::with_geometry(g, max), MIB)
        .unwrap_or_else(|f| panic!("{g:?}: {}: {}", f.test, f.what));
    assert_eq!(n, 12);
}

#[test]
fn mem_tiny_blocks() {
    mem(256, 1, None);
}

#[test]
fn mem_4k_blocks() {
    mem(4096, 1, None);
}

#[test]
fn mem_1m_blocks() {
    mem(1 << 20, 1, None);
}

#[test]
fn mem_flash_like_geometries() {
    for (bs, p) in [(256, 4), (512, 8), (4096, 16), (4096, 32)] {
        mem(bs, p, Some(0xFF));
    }
}

#[test]
fn mem_fixed_size_fills_and_recovers() {
    // 256 KiB, fixed: only `full_device_recovers` fills it.
    let g = Geometry {
        block_size: 1024,
        program_size: 4,
        block_count: 256,
        erase_value: Some(0xFF),
    };
    run_all(&mut || MemDevice::with_geometry(g, 256), 4096)
        .unwrap_or_else(|f| panic!("{}: {}", f.test, f.what));
}

fn file(block_size: u32, max_blocks: u32) {
    let dirs = std::cell::RefCell::new(Vec::new());
    let mut make = || {
        let d = tempfile::tempdir().unwrap();
        let dev = FileDevice::open(d.path(), block_size, 4, max_blocks).unwrap();
        dirs.borrow_mut().push(d);
        dev
    };
    run_all(&mut make, MIB).unwrap_or_else(|f| panic!("file {block_size}: {}: {}", f.test, f.what));
}

#[test]
fn file_tiny_blocks() {
    file(256, 1 << 16);
}

#[test]
fn file_4k_blocks() {
    file(4096, 1 << 14);
}

#[test]
fn file_1m_blocks() {
    file(1 << 20, 256);
}

/// `FlashDevice` over the RAM NorFlash double, for write units 1..32 and
/// erase sizes 256 B..128 KiB. The suite writes about 60 blocks' worth of
/// entries and must fill a fixed device within 64 blocks + 1 MiB.
#[cfg(feature = "flash")]
#[test]
fn flash_devices() {
    use blockwal::devices::ram_flash::RamFlash;
    use blockwal::FlashDevice;
    fn run<const W: usize, const E: usize, const R: usize>(blocks: u32, big: usize) {
        let mut make = || {
            let flash = RamFlash::<W, E, R>::new(E * blocks as usize).unwrap();
            FlashDevice::new(flash, 0, E as u32 * blocks).unwrap()
        };
        if let Err(f) = run_all(&mut make, big) {
            panic!("W={W} E={E} R={R} blocks={blocks}: {}: {}", f.test, f.what);
        }
    }
    run::<1, 256, 1>(256, 4096);
    run::<4, 4096, 4>(96, 64 * 1024);
    run::<8, 2048, 1>(96, 32 * 1024);
    run::<16, 1024, 8>(128, 16 * 1024);
    run::<32, 4096, 4>(96, 32 * 1024);
    run::<8, 131072, 1>(68, 1024 * 1024);
}
