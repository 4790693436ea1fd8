//! Support shared by the firmware images and the on-target tests: a global
//! heap that remembers its peak use, the flash double, and exit through
//! semihosting (QEMU ends with the status given).
#![no_std]

extern crate alloc;

use core::alloc::{GlobalAlloc, Layout};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicUsize, Ordering};

use cortex_m as _; // links the critical-section implementation
use cortex_m_semihosting::debug;
use embedded_alloc::LlffHeap;

pub use cortex_m_semihosting::hprintln;

/// Heap size: room for a few flash images of a few hundred KiB each.
pub const HEAP_SIZE: usize = 3 * 1024 * 1024;

/// The global heap: `embedded-alloc`'s linked-list heap plus a high-water mark.
pub struct TrackingHeap {
    heap: LlffHeap,
    peak: AtomicUsize,
}

impl TrackingHeap {
    const fn new() -> Self {
        TrackingHeap {
            heap: LlffHeap::empty(),
            peak: AtomicUsize::new(0),
        }
    }
}

// SAFETY: forwards to LlffHeap, which is a correct GlobalAlloc; the peak
// counter only observes.
unsafe impl GlobalAlloc for TrackingHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's obligations are passed on unchanged.
        let p = unsafe { self.heap.alloc(layout) };
        self.peak.fetch_max(self.heap.used(), Ordering::Relaxed);
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's obligations are passed on unchanged.
        unsafe { self.heap.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static HEAP: TrackingHeap = TrackingHeap::new();

/// Gives the heap its memory. Call once, first thing in `main`.
pub fn init_heap() {
    static mut MEM: [MaybeUninit<u8>; HEAP_SIZE] = [MaybeUninit::uninit(); HEAP_SIZE];
    static DONE: AtomicUsize = AtomicUsize::new(0);
    if DONE.swap(1, Ordering::AcqRel) == 0 {
        // SAFETY: runs once (guarded above); MEM is used by nothing else.
        unsafe { HEAP.heap.init(&raw mut MEM as usize, HEAP_SIZE) }
    }
}

/// Heap bytes in use now.
pub fn heap_used() -> usize {
    HEAP.heap.used()
}

/// Most heap bytes in use at once since the last [`reset_heap_peak`].
pub fn heap_peak() -> usize {
    HEAP.peak.load(Ordering::Relaxed)
}

/// Restarts the high-water mark from the current use.
pub fn reset_heap_peak() {
    HEAP.peak.store(heap_used(), Ordering::Relaxed);
}

/// Ends the program: QEMU exits with status 0 (`ok`) or 1.
pub fn exit(ok: bool) -> ! {
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    #[allow(clippy::empty_loop)]
    loop {}
}

/// The flash double the firmware images use: 4-byte write unit, 4 KiB
/// sectors (the shape of many MCU flashes and SPI NOR chips).
pub type Flash = blockwal::devices::ram_flash::RamFlash<4, 4096>;

/// Sectors of [`Flash`] the firmware images use.
pub const FLASH_SECTORS: usize = 16;

/// The body of both firmware images: sets up the heap and a [`Flash`], drives
/// the flash driver directly once (so its code is in both images), runs
/// `workload` on it, prints the heap the workload used at most, and exits
/// with the workload's verdict.
pub fn run_firmware(workload: fn(&mut Flash) -> bool) -> ! {
    use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};

    init_heap();
    let Ok(mut flash) = Flash::new(FLASH_SECTORS * 4096) else {
        exit(false)
    };
    let last = (FLASH_SECTORS as u32 - 1) * 4096;
    let mut word = [0u8; 4];
    let driver_ok = flash.write(last, &[0x5A; 4]).is_ok()
        && flash.read(last, &mut word).is_ok()
        && word == [0x5A; 4]
        && flash.erase(last, last + 4096).is_ok();

    let before = heap_used();
    reset_heap_peak();
    let ok = workload(&mut flash);
    let peak = heap_peak().saturating_sub(before);
    hprintln!("workload heap peak bytes: {}", peak);
    exit(driver_ok && ok)
}
