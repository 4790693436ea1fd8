//! Firmware with a log: identical to `baseline` but for the workload
//! (`blockwal_firmware_tests::raft_node`: open, append, sync, truncate,
//! compact, metadata, reads, reopen).
#![no_std]
#![no_main]

use blockwal_firmware_tests::raft_node;
use blockwal_riscv::{run_firmware, Host, Semihosting};
use riscv_rt::entry;

#[entry]
fn main() -> ! {
    run_firmware(&Semihosting, raft_node)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    Semihosting.exit(false)
}
