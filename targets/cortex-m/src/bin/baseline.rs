//! Firmware without a log: the reference for the code-size difference.
#![no_std]
#![no_main]

use blockwal_cortex_m::{run_firmware, Host, Semihosting};
use cortex_m_rt::entry;

#[entry]
fn main() -> ! {
    run_firmware(&Semihosting, |_flash| true)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    Semihosting.exit(false)
}
