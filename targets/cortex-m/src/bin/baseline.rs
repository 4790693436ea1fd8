//! Firmware without a log: the reference for the code-size difference.
#![no_std]
#![no_main]

use blockwal_cortex_m::{exit, run_firmware};
use cortex_m_rt::entry;

#[entry]
fn main() -> ! {
    run_firmware(|_flash| true)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(false)
}
