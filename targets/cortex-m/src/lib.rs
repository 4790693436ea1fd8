//! The Cortex-M side of the shared firmware code (targets/firmware-tests):
//! its [`Host`] through ARM semihosting (QEMU prints, writes host files and
//! exits with the status given).
#![no_std]

extern crate alloc;

use cortex_m as _; // links the critical-section implementation

pub use blockwal_firmware_tests::{run_firmware, run_tests, Host};

blockwal_firmware_tests::semihosting_host!(
    cortex_m_semihosting,
    "Semihosting on the emulated Cortex-M4."
);
