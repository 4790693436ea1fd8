//! The semihosting [`Host`](crate::Host) every architecture crate defines
//! the same way: Cortex-M and RISC-V speak the same semihosting calls, only
//! the crate that traps into the debugger differs.

/// Defines `pub struct Semihosting` implementing [`Host`](crate::Host)
/// through the semihosting crate `$sh` (`cortex_m_semihosting`,
/// `riscv_semihosting`). The calling crate must have `extern crate alloc`.
#[macro_export]
macro_rules! semihosting_host {
    ($sh:ident, $doc:literal) => {
        #[doc = $doc]
        pub struct Semihosting;

        impl $crate::Host for Semihosting {
            fn print(&self, line: core::fmt::Arguments<'_>) {
                $sh::hprintln!("{}", line);
            }

            fn write_file(&self, name: &str, data: &[u8]) -> bool {
                let mut path: alloc::vec::Vec<u8> = name.as_bytes().to_vec();
                path.push(0);
                // SAFETY: SYS_OPEN reads `name.len()` bytes of the
                // NUL-terminated path.
                let fd = unsafe {
                    $sh::syscall!(
                        OPEN,
                        path.as_ptr(),
                        $sh::nr::open::W_TRUNC_BINARY,
                        name.len()
                    )
                };
                if fd as isize == -1 {
                    return false;
                }
                // SAFETY: SYS_WRITE reads `data.len()` bytes of `data`; it
                // returns the number of bytes not written.
                let left = unsafe { $sh::syscall!(WRITE, fd, data.as_ptr(), data.len()) };
                // SAFETY: closes the handle opened above.
                let closed = unsafe { $sh::syscall!(CLOSE, fd) } == 0;
                left == 0 && closed
            }

            fn exit(&self, ok: bool) -> ! {
                $sh::debug::exit(if ok {
                    $sh::debug::EXIT_SUCCESS
                } else {
                    $sh::debug::EXIT_FAILURE
                });
                #[allow(clippy::empty_loop)]
                loop {}
            }
        }
    };
}
