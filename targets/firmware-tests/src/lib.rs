//! blockwal on microcontrollers, the code shared by every architecture
//! (targets/cortex-m, targets/riscv): a global heap that remembers its peak
//! use, the flash double, the firmware workload whose size is measured, and
//! the on-target test suite ([`run_tests`]). An architecture crate gives a
//! [`Host`] (semihosting output, files and exit) and its entry point.
#![no_std]

extern crate alloc;

use core::alloc::{GlobalAlloc, Layout};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicUsize, Ordering};

use blockwal::{FlashDevice, Wal};
use embedded_alloc::LlffHeap;

mod host;
mod tests;
#[path = "../../../tests/one_format/workload.rs"]
pub mod workload;

pub use tests::run_tests;

/// What the tests need from the machine they run on.
pub trait Host {
    /// Prints one line on the host's console.
    fn print(&self, line: core::fmt::Arguments<'_>);
    /// Writes `data` to the host file `name` (relative to the emulator's
    /// working directory); `false` if the host refused.
    fn write_file(&self, name: &str, data: &[u8]) -> bool;
    /// Ends the program: the emulator exits with status 0 (`ok`) or 1.
    fn exit(&self, ok: bool) -> !;
}

/// Prints a formatted line through a [`Host`].
#[macro_export]
macro_rules! say {
    ($host:expr, $($arg:tt)*) => { $host.print(format_args!($($arg)*)) };
}

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

/// The flash double the firmware images use: 4-byte write unit, 4 KiB
/// sectors (the shape of many MCU flashes and SPI NOR chips).
pub type Flash = blockwal::devices::ram_flash::RamFlash<4, 4096>;

/// Sectors of [`Flash`] the firmware images use.
pub const FLASH_SECTORS: usize = 16;

/// A firmware's workload: `baseline` does nothing, `wal` runs [`raft_node`].
pub type Workload = fn(&mut Flash) -> bool;

/// The body of both firmware images: sets up the heap and a [`Flash`], drives
/// the flash driver directly once (so its code is in both images), runs
/// `workload` on it, prints the heap the workload used at most, and exits
/// with the workload's verdict.
pub fn run_firmware(host: &dyn Host, workload: Workload) -> ! {
    use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};

    init_heap();
    let Ok(mut flash) = Flash::new(FLASH_SECTORS * 4096) else {
        host.exit(false)
    };
    let last = (FLASH_SECTORS as u32 - 1) * 4096;
    let mut word = [0u8; 4];
    let driver_ok = flash.write(last, &[0x5A; 4]).is_ok()
        && flash.read(last, &mut word).is_ok()
        && word == [0x5A; 4]
        && flash.erase(last, last + 4096).is_ok();

    let before = heap_used();
    reset_heap_peak();
    let top = paint_stack();
    let ok = workload(&mut flash);
    let stack = stack_used(top);
    let peak = heap_peak().saturating_sub(before);
    say!(host, "workload heap peak bytes: {}", peak);
    match stack {
        Some(n) => say!(host, "workload stack peak bytes: {}", n),
        None => say!(host, "workload stack peak bytes: over {}", STACK_PROBE),
    }
    host.exit(driver_ok && ok && stack.is_some())
}

/// Bytes of stack below the caller that [`paint_stack`] paints: more than
/// any workload here needs (both boards have megabytes of RAM under it).
pub const STACK_PROBE: usize = 64 << 10;

/// Bytes just below `paint_stack`'s own local left unpainted: the rest of
/// its frame may live there while it paints. Counted as used, so the figure
/// is an upper bound, at most this much high.
const STACK_GUARD: usize = 64;

/// What unused stack holds.
const PAINT: u32 = 0xC0DE_57AC;

/// Paints the `STACK_PROBE` bytes of stack below the caller's frame (less
/// `STACK_GUARD`) and returns the top of the painted area; call
/// [`stack_used`] with it after the code to measure.
#[inline(never)]
pub fn paint_stack() -> usize {
    let marker = 0u8;
    let top = (core::ptr::addr_of!(marker) as usize - STACK_GUARD) & !3;
    let mut at = top - STACK_PROBE;
    while at < top {
        // SAFETY: [top - STACK_PROBE, top) is stack below every live frame
        // (the guard covers this one): no Rust object lives there, and
        // nothing but this code runs (no interrupts are enabled).
        unsafe { (at as *mut u32).write_volatile(PAINT) };
        at += 4;
    }
    top
}

/// Most stack bytes used below `top` since [`paint_stack`] returned it
/// (counted from the lowest word whose paint was overwritten, plus the
/// guard); `None` if even the lowest painted word was overwritten.
pub fn stack_used(top: usize) -> Option<usize> {
    let mut at = top - STACK_PROBE;
    while at < top {
        // SAFETY: as in `paint_stack`; this reads the words it wrote, below
        // the current frame.
        if unsafe { (at as *const u32).read_volatile() } != PAINT {
            break;
        }
        at += 4;
    }
    (at > top - STACK_PROBE).then(|| top - at + STACK_GUARD)
}

/// The `wal` firmware's workload: the whole Raft-log API a node needs (open,
/// append, sync, truncate, compact, metadata, reads, reopen) on [`Flash`].
/// Never inlined: in `run_firmware`'s frame its locals would sit above the
/// painted stack and go uncounted.
#[inline(never)]
pub fn raft_node(flash: &mut Flash) -> bool {
    let Ok(dev) = FlashDevice::new(flash, 0, (FLASH_SECTORS * 4096) as u32) else {
        return false;
    };
    raft_node_on(dev).is_some()
}

fn raft_node_on(dev: FlashDevice<&mut Flash>) -> Option<()> {
    let entry = [0xA5u8; 128];
    let mut wal = Wal::open(dev).ok()?;
    for index in 1..=64 {
        wal.append(index, &entry).ok()?;
    }
    wal.sync().ok()?;
    wal.truncate(61).ok()?; // a new leader overwrote 61..
    wal.compact(10).ok()?; // a snapshot covers ..=10
    wal.set_meta("term", &7u64.to_le_bytes()).ok()?;
    wal.set_meta("vote", &3u64.to_le_bytes()).ok()?;

    let wal = Wal::open(wal.into_device()).ok()?;
    let ok = wal.first_index() == Some(11)
        && wal.last_index() == Some(60)
        && wal.get(30).is_some_and(|e| e[..] == entry)
        && wal.get_meta("term") == Some(&7u64.to_le_bytes()[..]);
    ok.then_some(())
}
