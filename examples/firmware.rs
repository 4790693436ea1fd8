//! A firmware's log: what runs on a microcontroller, with its heap set up and
//! the RAM it needs measured.
//!
//! `firmware` below uses only `core` and `alloc`, as a `#![no_std]` binary
//! does. On the host, `main` gives it `RamFlash` (NOR flash in RAM) and
//! measures the heap the log uses at its peak; on a board, give it your HAL's
//! flash and set up a heap first. With `embedded-alloc` on a Cortex-M:
//!
//! ```text
//! #[global_allocator]
//! static HEAP: embedded_alloc::LlffHeap = embedded_alloc::LlffHeap::empty();
//!
//! #[cortex_m_rt::entry]
//! fn main() -> ! {
//!     // Size it from this example's figure plus your entries' sizes.
//!     const HEAP_SIZE: usize = 16 * 1024;
//!     static mut HEAP_MEM: [core::mem::MaybeUninit<u8>; HEAP_SIZE] =
//!         [core::mem::MaybeUninit::uninit(); HEAP_SIZE];
//!     unsafe { HEAP.init(core::ptr::addr_of_mut!(HEAP_MEM) as usize, HEAP_SIZE) }
//!     let flash = hal::flash::Flash::new(peripherals.FLASH); // your HAL
//!     let boots = firmware::count_boot(flash, LOG_START, LOG_END);
//!     loop {}
//! }
//! ```
//!
//! Build the firmware without `std`:
//! `blockwal = { version = "0.1", default-features = false, features = ["flash"] }`.
//!
//! ```text
//! cargo run --example firmware --features flash
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use blockwal::devices::ram_flash::RamFlash;

/// The firmware's part: `core` + `alloc` only.
mod firmware {
    use blockwal::{FlashDevice, Wal, WalOptions};
    use embedded_storage::nor_flash::NorFlash;

    /// Opens the log in `start..end` of the flash, logs this boot (entry =
    /// boot number) and keeps the last 32 boots. Returns the boot number.
    pub fn count_boot<F: NorFlash>(flash: F, start: u32, end: u32) -> Option<u64> {
        let dev = FlashDevice::new(flash, start, end).ok()?;
        // `small()` is the default without `std`; a host build has to ask.
        let mut wal = Wal::open_with(dev, WalOptions::small()).ok()?;
        let boot = wal.next_index().unwrap_or(1);
        wal.append(boot, &boot.to_le_bytes()).ok()?;
        wal.sync().ok()?;
        if boot > 32 {
            wal.compact(boot - 32).ok()?;
        }
        Some(boot)
    }
}

/// Log partition: the last 32 KiB of a 64 KiB flash, 4 KiB sectors, 4-byte
/// write unit (the shape of many MCU flash banks).
const LOG_START: u32 = 32 * 1024;
const LOG_END: u32 = 64 * 1024;
/// The heap budget this example holds the log to.
const HEAP_BUDGET: usize = 16 * 1024;

fn main() {
    let mut flash = RamFlash::<4, 4096>::new(64 * 1024).expect("whole sectors");
    let mut peak = 0;
    for reboot in 1..=100 {
        let before = USED.load(Relaxed);
        PEAK.store(before, Relaxed);
        let boot = firmware::count_boot(&mut flash, LOG_START, LOG_END);
        assert_eq!(boot, Some(reboot), "the log counts every boot");
        peak = peak.max(PEAK.load(Relaxed) - before);
    }
    println!("100 boots logged; peak heap of the log: {peak} bytes (64-bit host)");
    assert!(
        peak <= HEAP_BUDGET,
        "peak heap {peak} over {HEAP_BUDGET} bytes"
    );
}

// Heap accounting for the figure above (host only; a board needs none).
static USED: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

struct Counting;

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = USED.fetch_add(layout.size(), Relaxed) + layout.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        USED.fetch_sub(layout.size(), Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;
