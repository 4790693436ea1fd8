//! `RamFlash`: NOR flash in RAM, for tests, host examples and on-target tests.
//!
//! It implements `embedded-storage`'s [`ReadNorFlash`] and [`NorFlash`] and is
//! strict where real NOR flash is unforgiving, so code that works on it keeps
//! the rules of real chips:
//!
//! - reads, writes and erases must be aligned to `READ`, `WRITE` and `ERASE`
//!   bytes and lie inside the flash;
//! - each write unit is written at most once between two erases of its sector
//!   (flash with ECC forbids a second write even of the same bits);
//! - a write can only turn 1 bits into 0 bits.
//!
//! A breach returns a [`RamFlashError`] and changes nothing. The flash also
//! counts erases per sector and bytes written, for wear and write
//! amplification figures.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

use crate::device::rules::{self, Breach};

/// A rule of NOR flash that a [`RamFlash`] operation broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RamFlashError {
    /// Offset or length not a multiple of the operation's unit.
    NotAligned {
        /// Offset given.
        offset: u32,
        /// Length given.
        len: usize,
    },
    /// The range does not lie inside the flash (or `from > to` in an erase).
    OutOfBounds {
        /// Offset given.
        offset: u32,
        /// Length given.
        len: usize,
    },
    /// A write unit written a second time since its sector was last erased.
    Reprogrammed {
        /// Address of the unit.
        offset: u32,
    },
    /// A write that would turn a 0 bit back into 1 (only an erase can).
    ZeroToOne {
        /// Address of the byte.
        offset: u32,
    },
    /// Capacity not a multiple of `ERASE`, larger than 4 GiB, or the unit
    /// sizes are unusable (zero, or `ERASE` not a multiple of `WRITE` and
    /// `READ`); says which.
    BadParameters(&'static str),
}

impl NorFlashError for RamFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            RamFlashError::NotAligned { .. } => NorFlashErrorKind::NotAligned,
            RamFlashError::OutOfBounds { .. } => NorFlashErrorKind::OutOfBounds,
            _ => NorFlashErrorKind::Other,
        }
    }
}

impl fmt::Display for RamFlashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RamFlashError::NotAligned { offset, len } => {
                write!(
                    f,
                    "flash access of {len} bytes at {offset:#x} is not aligned"
                )
            }
            RamFlashError::OutOfBounds { offset, len } => {
                write!(
                    f,
                    "flash access of {len} bytes at {offset:#x} is out of bounds"
                )
            }
            RamFlashError::Reprogrammed { offset } => {
                write!(
                    f,
                    "flash write unit at {offset:#x} written twice without an erase"
                )
            }
            RamFlashError::ZeroToOne { offset } => {
                write!(f, "flash write at {offset:#x} would turn a 0 bit into 1")
            }
            RamFlashError::BadParameters(what) => write!(f, "bad flash parameters: {what}"),
        }
    }
}

impl core::error::Error for RamFlashError {}

/// NOR flash held in RAM: write unit `WRITE` bytes, erase sector `ERASE`
/// bytes, read unit `READ` bytes (default 1), capacity chosen at run time.
/// Starts fully erased (`0xFF`).
///
/// ```
/// # use blockwal::devices::ram_flash::RamFlash;
/// use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
/// let mut flash = RamFlash::<4, 4096>::new(16 * 4096).unwrap();
/// flash.write(8, &[1, 2, 3, 4]).unwrap();
/// assert!(flash.write(8, &[0, 0, 0, 0]).is_err()); // once per erase
/// flash.erase(0, 4096).unwrap();
/// assert_eq!(flash.erase_counts()[0], 1);
/// ```
#[derive(Debug, Clone)]
pub struct RamFlash<const WRITE: usize, const ERASE: usize, const READ: usize = 1> {
    data: Vec<u8>,
    /// One bit per write unit: written since its sector's last erase.
    written: Vec<u32>,
    erases: Vec<u32>,
    bytes_programmed: u64,
    write_calls: u64,
}

impl<const WRITE: usize, const ERASE: usize, const READ: usize> RamFlash<WRITE, ERASE, READ> {
    /// An erased flash of `capacity` bytes (a multiple of `ERASE`, at most
    /// `u32::MAX`).
    pub fn new(capacity: usize) -> Result<Self, RamFlashError> {
        Self::check_parameters(capacity)?;
        let units = capacity / WRITE;
        Ok(RamFlash {
            data: vec![0xFF; capacity],
            written: vec![0; units.div_ceil(32)],
            erases: vec![0; capacity / ERASE],
            bytes_programmed: 0,
            write_calls: 0,
        })
    }

    /// A flash holding `image` (for example a dump of a real chip). Write units
    /// that are not all `0xFF` count as written.
    pub fn from_image(image: Vec<u8>) -> Result<Self, RamFlashError> {
        let mut flash = Self::new(image.len())?;
        for (u, chunk) in image.chunks(WRITE).enumerate() {
            if chunk.iter().any(|&b| b != 0xFF) {
                flash.written[u / 32] |= 1 << (u % 32);
            }
        }
        flash.data = image;
        Ok(flash)
    }

    fn check_parameters(capacity: usize) -> Result<(), RamFlashError> {
        if WRITE == 0 || READ == 0 || ERASE == 0 {
            return Err(RamFlashError::BadParameters(
                "READ, WRITE and ERASE must be non-zero",
            ));
        }
        if ERASE % WRITE != 0 || ERASE % READ != 0 {
            return Err(RamFlashError::BadParameters(
                "ERASE must be a multiple of READ and WRITE",
            ));
        }
        if capacity % ERASE != 0 || capacity as u64 > u64::from(u32::MAX) {
            return Err(RamFlashError::BadParameters(
                "capacity must be a multiple of ERASE and at most u32::MAX",
            ));
        }
        Ok(())
    }

    /// The whole flash content.
    pub fn image(&self) -> &[u8] {
        &self.data
    }

    /// The whole flash content, writable, for corruption tests. Changes made
    /// here bypass the NOR rules and do not mark units as written.
    pub fn image_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// Gives the content back.
    pub fn into_image(self) -> Vec<u8> {
        self.data
    }

    /// How many times each erase sector has been erased.
    pub fn erase_counts(&self) -> &[u32] {
        &self.erases
    }

    /// Total sector erases.
    pub fn total_erases(&self) -> u64 {
        self.erases.iter().map(|&e| u64::from(e)).sum()
    }

    /// Bytes written by successful `write` calls.
    pub fn bytes_programmed(&self) -> u64 {
        self.bytes_programmed
    }

    /// Successful `write` calls.
    pub fn write_calls(&self) -> u64 {
        self.write_calls
    }

    /// Sets the erase counts, bytes-programmed and write-call counters to 0.
    pub fn reset_counters(&mut self) {
        self.erases.fill(0);
        self.bytes_programmed = 0;
        self.write_calls = 0;
    }

    fn is_written(&self, unit: usize) -> bool {
        self.written[unit / 32] & (1 << (unit % 32)) != 0
    }

    /// Checks `offset..offset + len` is inside and aligned to `align`; returns
    /// it as a range of `usize`.
    fn check(&self, align: usize, offset: u32, len: usize) -> Result<Range<usize>, RamFlashError> {
        let bytes = rules::check_bounds(self.data.len() as u64, u64::from(offset), len)
            .map_err(|_| RamFlashError::OutOfBounds { offset, len })?;
        rules::check_aligned(align, &bytes)
            .map_err(|_| RamFlashError::NotAligned { offset, len })?;
        Ok(bytes)
    }
}

impl<const WRITE: usize, const ERASE: usize, const READ: usize> ErrorType
    for RamFlash<WRITE, ERASE, READ>
{
    type Error = RamFlashError;
}

impl<const WRITE: usize, const ERASE: usize, const READ: usize> ReadNorFlash
    for RamFlash<WRITE, ERASE, READ>
{
    const READ_SIZE: usize = READ;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), RamFlashError> {
        let at = self.check(READ, offset, bytes.len())?;
        bytes.copy_from_slice(&self.data[at]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.data.len()
    }
}

impl<const WRITE: usize, const ERASE: usize, const READ: usize> NorFlash
    for RamFlash<WRITE, ERASE, READ>
{
    const WRITE_SIZE: usize = WRITE;
    const ERASE_SIZE: usize = ERASE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), RamFlashError> {
        if from > to {
            return Err(RamFlashError::OutOfBounds {
                offset: from,
                len: 0,
            });
        }
        let bytes = self.check(ERASE, from, (to - from) as usize)?;
        for unit in bytes.start / WRITE..bytes.end / WRITE {
            self.written[unit / 32] &= !(1 << (unit % 32));
        }
        for count in &mut self.erases[bytes.start / ERASE..bytes.end / ERASE] {
            *count = count.saturating_add(1);
        }
        self.data[bytes].fill(0xFF);
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), RamFlashError> {
        let at = self.check(WRITE, offset, bytes.len())?;
        let units = rules::check_unprogrammed(WRITE, &at, |u| self.is_written(u)).map_err(|b| {
            let unit = match b {
                Breach::Reprogrammed { offset } => offset as u32,
                _ => offset,
            };
            RamFlashError::Reprogrammed { offset: unit }
        })?;
        let old = &self.data[at.clone()];
        if let Some(i) = old.iter().zip(bytes).position(|(&o, &n)| o & n != n) {
            return Err(RamFlashError::ZeroToOne {
                offset: (at.start + i) as u32,
            });
        }
        for (o, &n) in self.data[at].iter_mut().zip(bytes) {
            *o &= n;
        }
        for u in units {
            self.written[u / 32] |= 1 << (u % 32);
        }
        self.bytes_programmed += bytes.len() as u64;
        self.write_calls += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type F4 = RamFlash<4, 256>;

    #[test]
    fn starts_erased_and_reads_back_writes() {
        let mut f = F4::new(4 * 256).unwrap();
        assert_eq!(f.capacity(), 1024);
        assert!(f.image().iter().all(|&b| b == 0xFF));
        f.write(16, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        let mut buf = [0u8; 10];
        f.read(15, &mut buf).unwrap();
        assert_eq!(buf, [0xFF, 1, 2, 3, 4, 5, 6, 7, 8, 0xFF]);
        assert_eq!(f.bytes_programmed(), 8);
        assert_eq!(f.write_calls(), 1);
    }

    #[test]
    fn each_unit_is_written_once_per_erase() {
        let mut f = F4::new(4 * 256).unwrap();
        f.write(256, &[0xF0; 4]).unwrap();
        // Same bits, fewer bits, overlapping: all refused, nothing changes.
        assert_eq!(
            f.write(256, &[0xF0; 4]),
            Err(RamFlashError::Reprogrammed { offset: 256 })
        );
        assert_eq!(
            f.write(256, &[0x00; 4]),
            Err(RamFlashError::Reprogrammed { offset: 256 })
        );
        assert_eq!(
            f.write(252, &[0; 8]),
            Err(RamFlashError::Reprogrammed { offset: 256 })
        );
        assert_eq!(
            &f.image()[252..260],
            &[0xFF, 0xFF, 0xFF, 0xFF, 0xF0, 0xF0, 0xF0, 0xF0]
        );
        assert_eq!(f.bytes_programmed(), 4);
        // Neighbours are free.
        f.write(260, &[0; 4]).unwrap();
        f.write(252, &[0; 4]).unwrap();
        // An erase of another sector does not free it; its own does.
        f.erase(0, 256).unwrap();
        assert!(f.write(256, &[0; 4]).is_err());
        f.erase(256, 512).unwrap();
        f.write(256, &[0; 4]).unwrap();
        assert_eq!(f.erase_counts(), &[1, 1, 0, 0]);
        assert_eq!(f.total_erases(), 2);
    }

    #[test]
    fn writes_only_clear_bits() {
        let mut img = vec![0xFF; 512];
        img[10] = 0x0F;
        let mut f = RamFlash::<1, 256>::from_image(img).unwrap();
        // Byte 10 holds data: counts as written.
        assert_eq!(
            f.write(10, &[0x0F]),
            Err(RamFlashError::Reprogrammed { offset: 10 })
        );
        // Bypass the written flags to check the bit rule on its own.
        f.image_mut()[20] = 0x0F;
        assert_eq!(
            f.write(20, &[0xF0]),
            Err(RamFlashError::ZeroToOne { offset: 20 })
        );
        assert_eq!(f.image()[20], 0x0F);
        f.write(20, &[0x03]).unwrap();
        assert_eq!(f.image()[20], 0x03);
    }

    #[test]
    fn misaligned_and_out_of_bounds_are_refused() {
        let mut f = RamFlash::<8, 256, 4>::new(2 * 256).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(
            f.read(2, &mut buf[..4]),
            Err(RamFlashError::NotAligned { offset: 2, len: 4 })
        );
        assert_eq!(
            f.read(4, &mut buf[..3]),
            Err(RamFlashError::NotAligned { offset: 4, len: 3 })
        );
        assert_eq!(
            f.read(508, &mut buf),
            Err(RamFlashError::OutOfBounds {
                offset: 508,
                len: 8
            })
        );
        assert!(f.read(u32::MAX, &mut buf).is_err());
        assert_eq!(
            f.write(4, &[0; 8]),
            Err(RamFlashError::NotAligned { offset: 4, len: 8 })
        );
        assert_eq!(
            f.write(8, &[0; 4]),
            Err(RamFlashError::NotAligned { offset: 8, len: 4 })
        );
        assert_eq!(
            f.write(512, &[0; 8]),
            Err(RamFlashError::OutOfBounds {
                offset: 512,
                len: 8
            })
        );
        assert!(f.write(u32::MAX - 3, &[0; 8]).is_err());
        assert_eq!(
            f.erase(0, 100),
            Err(RamFlashError::NotAligned {
                offset: 0,
                len: 100
            })
        );
        assert_eq!(
            f.erase(256, 0),
            Err(RamFlashError::OutOfBounds {
                offset: 256,
                len: 0
            })
        );
        assert_eq!(
            f.erase(256, 768),
            Err(RamFlashError::OutOfBounds {
                offset: 256,
                len: 512
            })
        );
        assert_eq!(f.erase(256, 256), Ok(()));
        assert_eq!(f.erase_counts(), &[0, 0]);
        assert_eq!(f.bytes_programmed(), 0);
        assert!(f.image().iter().all(|&b| b == 0xFF));
    }

    #[test]
    fn error_kinds_map_to_embedded_storage() {
        let k = |e: RamFlashError| e.kind();
        assert_eq!(
            k(RamFlashError::NotAligned { offset: 0, len: 1 }),
            NorFlashErrorKind::NotAligned
        );
        assert_eq!(
            k(RamFlashError::OutOfBounds { offset: 0, len: 1 }),
            NorFlashErrorKind::OutOfBounds
        );
        assert_eq!(
            k(RamFlashError::Reprogrammed { offset: 0 }),
            NorFlashErrorKind::Other
        );
        assert_eq!(
            k(RamFlashError::ZeroToOne { offset: 0 }),
            NorFlashErrorKind::Other
        );
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert!(matches!(F4::new(300), Err(RamFlashError::BadParameters(_))));
        assert!(matches!(
            RamFlash::<3, 256>::new(256),
            Err(RamFlashError::BadParameters(_))
        ));
        assert!(matches!(
            RamFlash::<0, 256>::new(256),
            Err(RamFlashError::BadParameters(_))
        ));
        assert!(matches!(
            RamFlash::<4, 256, 3>::new(256),
            Err(RamFlashError::BadParameters(_))
        ));
        assert!(F4::new(0).is_ok());
    }

    #[test]
    fn multi_sector_erase_and_counters() {
        let mut f = F4::new(4 * 256).unwrap();
        f.write(0, &[0; 1024]).unwrap();
        f.erase(256, 1024).unwrap();
        assert_eq!(f.erase_counts(), &[0, 1, 1, 1]);
        assert!(f.image()[256..].iter().all(|&b| b == 0xFF));
        assert!(f.image()[..256].iter().all(|&b| b == 0));
        f.write(512, &[0; 4]).unwrap();
        assert_eq!(f.bytes_programmed(), 1028);
        f.reset_counters();
        assert_eq!(
            (f.total_erases(), f.bytes_programmed(), f.write_calls()),
            (0, 0, 0)
        );
        assert_eq!(f.clone().into_image().len(), 1024);
    }
}
