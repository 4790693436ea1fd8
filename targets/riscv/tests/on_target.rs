//! On-target tests on the emulated RISC-V (rv32imac, QEMU virt), run by `cargo test` (the runner
//! is QEMU, see .cargo/config.toml): the shared suite of
//! targets/firmware-tests. It ends with "riscv: N passed, M failed" and
//! exits 0 only when nothing failed. A panic prints its message and exits 1.
#![no_std]
#![no_main]

use blockwal_firmware_tests::{init_heap, say};
use blockwal_riscv::{run_tests, Host, Semihosting};
use riscv_rt::entry;

#[entry]
fn main() -> ! {
    init_heap();
    say!(
        Semihosting,
        "blockwal on-target tests (RISC-V rv32imac, QEMU virt)"
    );
    let ok = run_tests(&Semihosting, "riscv", "target/one-format-flash.img");
    Semihosting.exit(ok)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    say!(Semihosting, "panic: {}", info);
    say!(Semihosting, "riscv: 0 passed, 1 failed");
    Semihosting.exit(false)
}
