//! Firmware with a log: identical to `baseline` but for the workload, which
//! uses the whole Raft-log API a node needs: open, append, sync, truncate,
//! compact, metadata, reads, and reopen.
#![no_std]
#![no_main]

use blockwal::{FlashDevice, Wal};
use blockwal_cortex_m::{exit, run_firmware, Flash, FLASH_SECTORS};
use cortex_m_rt::entry;

fn workload(flash: &mut Flash) -> bool {
    let Ok(dev) = FlashDevice::new(flash, 0, (FLASH_SECTORS * 4096) as u32) else {
        return false;
    };
    raft_node(dev).is_some()
}

fn raft_node(dev: FlashDevice<&mut Flash>) -> Option<()> {
    let entry = [0xA5u8; 128];
    let mut wal = Wal::open(dev).ok()?;
    for index in 1..=64 {
        wal.append(index, &entry).ok()?;
    }
    wal.sync().ok()?;
    wal.truncate(61).ok()?; // a new leader overwrote 61..
    wal.compact(10).ok()?; // a snapshot covers ..=10
    wal.set_meta("term", &7u64.to_le_bytes()).ok()?;
    wal.set_meta("vote", &3u64.to_le_bytes()).ok()?;

    let wal = Wal::open(wal.into_device()).ok()?;
    let ok = wal.first_index() == Some(11)
        && wal.last_index() == Some(60)
        && wal.get(30).is_some_and(|e| e[..] == entry)
        && wal.get_meta("term") == Some(&7u64.to_le_bytes()[..]);
    ok.then_some(())
}

#[entry]
fn main() -> ! {
    run_firmware(workload)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(false)
}
