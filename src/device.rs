//! The block-device contract: the only thing the core knows about storage.

pub mod rules;

/// The shape of a device, fixed for the device's life except for growth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Erase unit in bytes: the core allocates, erases and frees whole blocks.
    pub block_size: u32,
    /// Program (write) unit in bytes. Every `program` is aligned to it and a
    /// multiple of it long. 1 for files and OPFS, 1..=32 for NOR flash.
    pub program_size: u32,
    /// Number of blocks the device holds now (growable devices may add more).
    pub block_count: u32,
    /// `Some(v)`: erasing sets every byte to `v` and each program unit may be
    /// programmed once per erase (NOR flash, `Some(0xFF)`). `None`: erase is a
    /// no-op and blocks may hold stale bytes from an earlier use (files, OPFS).
    pub erase_value: Option<u8>,
}

impl Geometry {
    /// Total bytes the device holds now.
    pub fn capacity(&self) -> u64 {
        u64::from(self.block_size) * u64::from(self.block_count)
    }

    /// Byte offset of the start of `block`.
    pub fn block_offset(&self, block: u32) -> u64 {
        u64::from(block) * u64::from(self.block_size)
    }

    /// Checks the invariants the core relies on; returns what is wrong.
    pub fn validate(&self) -> Result<(), &'static str> {
        let p = self.program_size;
        if p == 0 || !p.is_power_of_two() || p > 256 {
            return Err("program_size must be a power of two between 1 and 256");
        }
        // A block must hold a header, a one-entry summary and a record with
        // a 64-byte fragment (each padded to the program unit): smaller
        // blocks would leave the writer nowhere to put an entry.
        if self.block_size < 256 || self.block_size / 4 < p || self.block_size % p != 0 {
            return Err(
                "block_size must be at least 256 bytes, at least 4 program units and a multiple of program_size",
            );
        }
        if self.block_size > 1 << 30 {
            return Err("block_size must be at most 1 GiB");
        }
        Ok(())
    }
}

/// Storage addressed in bytes, erased in blocks. Implemented by the adapters
/// (`MemDevice`, `FileDevice`, `FlashDevice`, `OpfsDevice`, `SimDevice`).
///
/// The core promises every implementation that:
/// - `program` targets are aligned to `program_size`, a multiple of it long,
///   and lie inside one block;
/// - on devices with `erase_value: Some(_)`, no program unit is programmed
///   twice between two erases of its block;
/// - nothing is read or written outside `0..capacity()`.
pub trait BlockDevice {
    /// The adapter's own error; the core wraps it in [`crate::Error::Device`],
    /// whose `Display` shows this error's `Display` (and whose `source` is
    /// this error when it implements `core::error::Error`).
    type Error: core::fmt::Debug + core::fmt::Display;

    /// The device's shape.
    fn geometry(&self) -> Geometry;

    /// Reads `buf.len()` bytes at `offset`. Any alignment is allowed.
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error>;

    /// Writes `data` at `offset` (see the trait docs for the alignment rules).
    /// The bytes need not be durable until [`BlockDevice::sync`] returns.
    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), Self::Error>;

    /// Erases `block`. On devices without a real erase this may do nothing.
    fn erase(&mut self, block: u32) -> Result<(), Self::Error>;

    /// Makes everything programmed and erased so far durable.
    fn sync(&mut self) -> Result<(), Self::Error>;

    /// Tries to add `blocks` blocks at the end. `Ok(false)`: the device cannot
    /// grow (fixed size, disk full, quota); the core then reports `Full`.
    fn grow(&mut self, blocks: u32) -> Result<bool, Self::Error> {
        let _ = blocks;
        Ok(false)
    }

    /// A hint that `len` bytes at `offset` will be read soon, so a device
    /// with slow random reads (a file on a disk) can start fetching them in
    /// the background. Opening a log hints every block's header and summary
    /// trailer before reading them. The default does nothing.
    fn prefetch(&mut self, offset: u64, len: u64) {
        let _ = (offset, len);
    }
}

impl<T: BlockDevice + ?Sized> BlockDevice for &mut T {
    type Error = T::Error;
    fn geometry(&self) -> Geometry {
        (**self).geometry()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
        (**self).read(offset, buf)
    }
    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), Self::Error> {
        (**self).program(offset, data)
    }
    fn erase(&mut self, block: u32) -> Result<(), Self::Error> {
        (**self).erase(block)
    }
    fn sync(&mut self) -> Result<(), Self::Error> {
        (**self).sync()
    }
    fn grow(&mut self, blocks: u32) -> Result<bool, Self::Error> {
        (**self).grow(blocks)
    }
    fn prefetch(&mut self, offset: u64, len: u64) {
        (**self).prefetch(offset, len)
    }
}
