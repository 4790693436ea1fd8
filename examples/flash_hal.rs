//! Wiring a microcontroller's NOR flash into blockwal.
//!
//! Every flash HAL in the embedded Rust ecosystem (the STM32, nRF, RP2040,
//! ESP32 HALs, SPI NOR drivers, ...) implements
//! `embedded_storage::nor_flash::NorFlash`. blockwal's `FlashDevice` takes any
//! such driver plus the byte range of the flash set aside for the log, so the
//! wiring is three steps:
//!
//! 1. get the flash driver from your HAL;
//! 2. pick a partition: whole erase sectors, not overlapping your firmware
//!    (your linker script tells you where the firmware ends);
//! 3. wrap it in a `FlashDevice` and open the log on it.
//!
//! On the host there is no flash chip, so `RamFlash`, blockwal's NOR flash in
//! RAM, stands in for the HAL driver here: it has the same trait and is
//! stricter than a real chip (it refuses any second write to a word before an
//! erase). Run with `cargo run --example flash_hal --features flash`.

use blockwal::devices::ram_flash::RamFlash;
use blockwal::{BlockDevice, FlashDevice, Wal};

/// Stand-in for `hal::flash::Flash`: a 1 MiB flash with 4 KiB sectors and a
/// 4-byte (32-bit word) write unit, the shape of many MCU flash banks.
type HalFlash = RamFlash<4, 4096>;

/// Where the firmware ends and the log's partition begins: 256 KiB for code,
/// the remaining 768 KiB for the log. Both ends must be sector multiples;
/// `FlashDevice::new` checks them and says what is wrong if they are not.
const LOG_START: u32 = 256 * 1024;
const LOG_END: u32 = 1024 * 1024;

fn main() {
    // 1. On a board: `let flash = hal::flash::Flash::new(peripherals.FLASH);`
    let flash = HalFlash::new(1024 * 1024).expect("RamFlash of whole sectors");

    // 2 + 3. The partition becomes blockwal's device: one sector per block.
    // Passing `&mut flash` instead would keep the driver usable for other
    // regions (NorFlash is implemented for `&mut F`).
    let device = match FlashDevice::new(flash, LOG_START, LOG_END) {
        Ok(device) => device,
        Err(e) => {
            // A typed error, for example a partition that is not sector-aligned.
            eprintln!("cannot use the flash partition: {e}");
            std::process::exit(1);
        }
    };
    let g = device.geometry();
    println!(
        "log partition {:#x}..{:#x}: {} blocks of {} bytes, write unit {} bytes",
        LOG_START, LOG_END, g.block_count, g.block_size, g.program_size
    );

    // Open the log: an erased partition is an empty log; a partition written
    // before (by this firmware, before a reset or power loss) is recovered.
    let mut wal = Wal::open(device).expect("open");
    let next = wal.next_index().unwrap_or(1);
    for index in next..next + 100 {
        wal.append(index, format!("entry {index}").as_bytes())
            .expect("append");
    }
    // One sync makes the whole batch durable (flash writes are synchronous,
    // so this programs the buffered tail).
    wal.sync().expect("sync");
    // Raft's durable state: term and vote survive any reset.
    wal.set_meta("term", &5u64.to_le_bytes()).expect("set_meta");
    // A snapshot covers everything up to next + 49: free those blocks.
    wal.compact(next + 49).expect("compact");

    // After a reset the firmware opens the same partition again.
    let device = wal.into_device();
    let wal = Wal::open(device).expect("reopen");
    println!(
        "after reopen: entries {:?}..={:?}, term {:?}",
        wal.first_index(),
        wal.last_index(),
        wal.get_meta("term")
            .map(|v| u64::from_le_bytes(v.try_into().unwrap_or([0; 8])))
    );
    let last = wal.last_index().expect("entries");
    assert_eq!(
        wal.get(last).as_deref(),
        Some(format!("entry {last}").as_bytes())
    );

    // The driver comes back out; RamFlash also reports wear and bytes written.
    let flash = wal.into_device().into_inner();
    println!(
        "flash: {} bytes programmed, {} sector erases",
        flash.bytes_programmed(),
        flash.total_erases()
    );
}
