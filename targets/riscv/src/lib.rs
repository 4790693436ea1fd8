//! The RISC-V side of the shared firmware code (targets/firmware-tests): its
//! [`Host`] through RISC-V semihosting (QEMU prints, writes host files and
//! exits with the status given).
#![no_std]

extern crate alloc;

use alloc::vec::Vec;

use riscv as _; // links the critical-section implementation
use riscv_semihosting::{debug, hprintln, nr, syscall};

pub use blockwal_firmware_tests::{run_firmware, run_tests, Host};

/// Semihosting on the emulated RISC-V hart.
pub struct Semihosting;

impl Host for Semihosting {
    fn print(&self, line: core::fmt::Arguments<'_>) {
        hprintln!("{}", line);
    }

    fn write_file(&self, name: &str, data: &[u8]) -> bool {
        let mut path: Vec<u8> = name.as_bytes().to_vec();
        path.push(0);
        // SAFETY: SYS_OPEN reads `name.len()` bytes of the NUL-terminated path.
        let fd = unsafe { syscall!(OPEN, path.as_ptr(), nr::open::W_TRUNC_BINARY, name.len()) };
        if fd as isize == -1 {
            return false;
        }
        // SAFETY: SYS_WRITE reads `data.len()` bytes of `data`; it returns
        // the number of bytes not written.
        let left = unsafe { syscall!(WRITE, fd, data.as_ptr(), data.len()) };
        // SAFETY: closes the handle opened above.
        let closed = unsafe { syscall!(CLOSE, fd) } == 0;
        left == 0 && closed
    }

    fn exit(&self, ok: bool) -> ! {
        debug::exit(if ok {
            debug::EXIT_SUCCESS
        } else {
            debug::EXIT_FAILURE
        });
        #[allow(clippy::empty_loop)]
        loop {}
    }
}
