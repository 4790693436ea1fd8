//! On-target tests on the emulated Cortex-M4, run by `cargo test` (the runner
//! is QEMU, see .cargo/config.toml): the shared suite of
//! targets/firmware-tests. It ends with "cortex-m: N passed, M failed" and
//! exits 0 only when nothing failed. A panic prints its message and exits 1.
#![no_std]
#![no_main]

use blockwal_cortex_m::{run_tests, Host, Semihosting};
use blockwal_firmware_tests::{init_heap, say};
use cortex_m_rt::entry;

#[entry]
fn main() -> ! {
    init_heap();
    say!(
        Semihosting,
        "blockwal on-target tests (Cortex-M4, QEMU mps2-an386)"
    );
    let ok = run_tests(&Semihosting, "cortex-m", "target/one-format-flash.img");
    Semihosting.exit(ok)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    say!(Semihosting, "panic: {}", info);
    say!(Semihosting, "cortex-m: 0 passed, 1 failed");
    Semihosting.exit(false)
}
