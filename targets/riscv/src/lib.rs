//! The RISC-V side of the shared firmware code (targets/firmware-tests): its
//! [`Host`] through RISC-V semihosting (QEMU prints, writes host files and
//! exits with the status given).
#![no_std]

extern crate alloc;

use riscv as _; // links the critical-section implementation

pub use blockwal_firmware_tests::{run_firmware, run_tests, Host};

blockwal_firmware_tests::semihosting_host!(
    riscv_semihosting,
    "Semihosting on the emulated RISC-V hart."
);
