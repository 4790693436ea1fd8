//! `FlashDevice`: a blockwal device over a partition of raw NOR flash, through
//! the `embedded-storage` [`NorFlash`] trait every flash HAL implements.
//!
//! The partition is a byte range `start..end` of the flash, aligned to the
//! flash's erase size. One erase sector is one blockwal block, one flash write
//! unit is one program unit and erased flash reads `0xFF`, so the geometry is:
//!
//! | `Geometry` field | value |
//! |---|---|
//! | `block_size` | `F::ERASE_SIZE` |
//! | `program_size` | `F::WRITE_SIZE` |
//! | `block_count` | `(end - start) / F::ERASE_SIZE` |
//! | `erase_value` | `Some(0xFF)` |
//!
//! The adapter is a thin translation: offsets are shifted by `start`, each
//! `program` becomes exactly one `NorFlash::write` of the same bytes (the core
//! never programs a word twice per erase, and the adapter adds no writes of its
//! own, so flash with ECC and no `MultiwriteNorFlash` support is safe), each
//! `erase` becomes one sector erase. Reads of any offset and length are served
//! even when the flash has a `READ_SIZE` above 1, through a small bounce buffer
//! on the stack. Nothing is allocated.

use core::fmt;
use core::ops::Range;

use embedded_storage::nor_flash::NorFlash;

use crate::device::rules;
use crate::device::{BlockDevice, Geometry};

/// The fewest erase blocks a partition may have: the log needs two metadata
/// blocks and at least two log blocks to move forward while compacting.
pub const MIN_BLOCKS: u32 = 4;

/// The largest `READ_SIZE` a flash may have: unaligned reads go through a
/// bounce buffer of this many bytes on the stack.
pub const MAX_READ_SIZE: usize = 64;

/// What a [`FlashDevice`] refuses or reports. `E` is the flash driver's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlashError<E> {
    /// The flash driver failed; its own error is inside.
    Flash(E),
    /// `start` or `end` is not a multiple of the erase size: move the partition
    /// boundaries onto erase-sector boundaries.
    PartitionMisaligned {
        /// Start address given.
        start: u32,
        /// End address given.
        end: u32,
        /// The flash's erase size, which both must be multiples of.
        erase_size: u32,
    },
    /// `end` is not after `start`.
    PartitionEmpty {
        /// Start address given.
        start: u32,
        /// End address given.
        end: u32,
    },
    /// The partition ends past the end of the flash.
    PartitionOutOfRange {
        /// End address given.
        end: u32,
        /// The flash's capacity in bytes.
        capacity: usize,
    },
    /// The partition holds fewer than [`MIN_BLOCKS`] erase blocks.
    PartitionTooSmall {
        /// Blocks in the partition.
        blocks: u32,
        /// The fewest blocks accepted.
        min: u32,
    },
    /// The flash's `READ_SIZE`, `WRITE_SIZE` or `ERASE_SIZE` cannot carry a log
    /// (for example a write unit that is not a power of two, or an erase
    /// sector smaller than 128 bytes); says which.
    UnsupportedFlash(&'static str),
    /// An access outside the partition (a breach of the device contract).
    OutOfBounds {
        /// Offset inside the partition.
        offset: u64,
        /// Length asked for.
        len: usize,
    },
    /// A program not aligned to the write unit, or crossing an erase block (a
    /// breach of the device contract).
    Misaligned {
        /// Offset inside the partition.
        offset: u64,
        /// Length asked for.
        len: usize,
    },
}

/// `embedded-storage` asks flash errors for `Debug` only, so the driver's
/// error shows as its `Debug`; every other case is a sentence.
impl<E: fmt::Debug> fmt::Display for FlashError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlashError::Flash(e) => write!(f, "flash driver error: {e:?}"),
            FlashError::PartitionMisaligned {
                start,
                end,
                erase_size,
            } => write!(
                f,
                "flash partition {start:#x}..{end:#x} is not aligned to the erase size \
                 {erase_size:#x}: put both ends on erase-sector boundaries"
            ),
            FlashError::PartitionEmpty { start, end } => {
                write!(
                    f,
                    "flash partition {start:#x}..{end:#x} is empty: end must be after start"
                )
            }
            FlashError::PartitionOutOfRange { end, capacity } => write!(
                f,
                "flash partition ends at {end:#x}, past the flash's capacity of {capacity:#x} bytes"
            ),
            FlashError::PartitionTooSmall { blocks, min } => write!(
                f,
                "flash partition holds {blocks} erase blocks; a log needs at least {min}"
            ),
            FlashError::UnsupportedFlash(what) => write!(f, "unsupported flash: {what}"),
            FlashError::OutOfBounds { offset, len } => write!(
                f,
                "access of {len} bytes at offset {offset} is outside the flash partition"
            ),
            FlashError::Misaligned { offset, len } => write!(
                f,
                "program of {len} bytes at offset {offset} is not aligned to the write unit \
                 or crosses an erase block"
            ),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for FlashError<E> {}

/// A blockwal device over the byte range `start..end` of a NOR flash.
///
/// Build it from the flash peripheral your HAL gives you (or a `&mut` to it,
/// to keep the peripheral when construction fails), then open a log on it.
/// Writes are synchronous in `embedded-storage`, so [`BlockDevice::sync`] has
/// nothing left to do.
#[derive(Debug)]
pub struct FlashDevice<F: NorFlash> {
    flash: F,
    start: u32,
    geometry: Geometry,
}

impl<F: NorFlash> FlashDevice<F> {
    /// Wraps `flash`, using the partition `start..end` (byte addresses of the
    /// flash, multiples of `F::ERASE_SIZE`, at least [`MIN_BLOCKS`] sectors).
    ///
    /// Nothing is read, written or erased here. The error says what is wrong
    /// with the partition or with the flash's parameters.
    pub fn new(flash: F, start: u32, end: u32) -> Result<Self, FlashError<F::Error>> {
        let geometry = partition_geometry(
            F::READ_SIZE,
            F::WRITE_SIZE,
            F::ERASE_SIZE,
            flash.capacity(),
            start,
            end,
        )?;
        Ok(FlashDevice {
            flash,
            start,
            geometry,
        })
    }

    /// The partition, as byte addresses of the flash.
    pub fn partition(&self) -> Range<u32> {
        // Cannot overflow: `new` checked `start + capacity == end`, an u32.
        self.start..self.start + (self.geometry.capacity() as u32)
    }

    /// The flash, for inspection.
    pub fn flash(&self) -> &F {
        &self.flash
    }

    /// The flash, writable. Writing inside the partition behind the log's back
    /// can break the no-double-program rule; use it for tests and for areas
    /// outside the partition.
    pub fn flash_mut(&mut self) -> &mut F {
        &mut self.flash
    }

    /// Gives the flash back.
    pub fn into_inner(self) -> F {
        self.flash
    }

    /// Flash address of `offset..offset + len` of the partition, if it lies
    /// inside the partition.
    fn locate(&self, offset: u64, len: usize) -> Result<u32, FlashError<F::Error>> {
        let bytes = rules::check_bounds(self.geometry.capacity(), offset, len)
            .map_err(|_| FlashError::OutOfBounds { offset, len })?;
        // Fits: the partition `start..start + capacity` lies in u32.
        Ok(self.start + bytes.start as u32)
    }
}

/// Checks the flash parameters and the partition, and returns the geometry.
fn partition_geometry<E>(
    read_size: usize,
    write_size: usize,
    erase_size: usize,
    capacity: usize,
    start: u32,
    end: u32,
) -> Result<Geometry, FlashError<E>> {
    if read_size == 0 || read_size > MAX_READ_SIZE {
        return Err(FlashError::UnsupportedFlash(
            "READ_SIZE must be between 1 and 64 bytes",
        ));
    }
    let Ok(es) = u32::try_from(erase_size) else {
        return Err(FlashError::UnsupportedFlash(
            "ERASE_SIZE does not fit in 32 bits",
        ));
    };
    let Ok(ws) = u32::try_from(write_size) else {
        return Err(FlashError::UnsupportedFlash(
            "WRITE_SIZE does not fit in 32 bits",
        ));
    };
    if es == 0 || erase_size % read_size != 0 {
        return Err(FlashError::UnsupportedFlash(
            "ERASE_SIZE must be a non-zero multiple of READ_SIZE",
        ));
    }
    let geometry = Geometry {
        block_size: es,
        program_size: ws,
        block_count: 0,
        erase_value: Some(0xFF),
    };
    geometry.validate().map_err(FlashError::UnsupportedFlash)?;
    if start % es != 0 || end % es != 0 {
        return Err(FlashError::PartitionMisaligned {
            start,
            end,
            erase_size: es,
        });
    }
    if end <= start {
        return Err(FlashError::PartitionEmpty { start, end });
    }
    if u64::from(end) > capacity as u64 {
        return Err(FlashError::PartitionOutOfRange { end, capacity });
    }
    let blocks = (end - start) / es;
    if blocks < MIN_BLOCKS {
        return Err(FlashError::PartitionTooSmall {
            blocks,
            min: MIN_BLOCKS,
        });
    }
    Ok(Geometry {
        block_count: blocks,
        ..geometry
    })
}

impl<F: NorFlash> BlockDevice for FlashDevice<F> {
    type Error = FlashError<F::Error>;

    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
        let mut at = self.locate(offset, buf.len())?;
        let unit = F::READ_SIZE;
        if unit == 1 {
            return self.flash.read(at, buf).map_err(FlashError::Flash);
        }
        // READ_SIZE > 1: read aligned runs straight into `buf`, and the
        // unaligned head and tail through a bounce buffer of one read unit.
        // The partition is aligned to ERASE_SIZE, a multiple of READ_SIZE, so
        // the unit around any partition byte lies inside the partition.
        let mut rest = buf;
        while !rest.is_empty() {
            let skew = at as usize % unit;
            let n = if skew == 0 && rest.len() >= unit {
                let n = rest.len() - rest.len() % unit;
                self.flash
                    .read(at, &mut rest[..n])
                    .map_err(FlashError::Flash)?;
                n
            } else {
                let mut bounce = [0u8; MAX_READ_SIZE];
                let bounce = &mut bounce[..unit];
                self.flash
                    .read(at - skew as u32, bounce)
                    .map_err(FlashError::Flash)?;
                let n = (unit - skew).min(rest.len());
                rest[..n].copy_from_slice(&bounce[skew..skew + n]);
                n
            };
            rest = &mut rest[n..];
            at += n as u32;
        }
        Ok(())
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), Self::Error> {
        let at = self.locate(offset, data.len())?;
        if data.is_empty() {
            return Ok(());
        }
        // Program-once is left to the flash, which refuses a second write.
        let g = self.geometry;
        let rel = (at - self.start) as usize;
        let bytes = rel..rel + data.len();
        rules::check_aligned(g.program_size as usize, &bytes)
            .and_then(|()| rules::check_one_block(g.block_size as usize, &bytes))
            .map_err(|_| FlashError::Misaligned {
                offset,
                len: data.len(),
            })?;
        self.flash.write(at, data).map_err(FlashError::Flash)
    }

    fn erase(&mut self, block: u32) -> Result<(), Self::Error> {
        let g = self.geometry;
        let bytes = rules::check_erase(&g, block).map_err(|_| FlashError::OutOfBounds {
            offset: g.block_offset(block),
            len: g.block_size as usize,
        })?;
        let from = self.start + bytes.start as u32;
        self.flash
            .erase(from, from + g.block_size)
            .map_err(FlashError::Flash)
    }

    /// Nothing to do: `NorFlash::write` and `erase` return once the flash
    /// holds the data.
    fn sync(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::ram_flash::{RamFlash, RamFlashError};
    use alloc::string::ToString;
    use alloc::vec;
    use alloc::vec::Vec;

    type Flash = RamFlash<4, 256, 4>;

    fn dev(blocks: usize, start_block: u32) -> FlashDevice<Flash> {
        let flash = Flash::new((blocks + start_block as usize + 1) * 256).unwrap();
        let start = start_block * 256;
        FlashDevice::new(flash, start, start + blocks as u32 * 256).unwrap()
    }

    #[test]
    fn geometry_follows_the_flash() {
        let d = dev(8, 2);
        let g = d.geometry();
        assert_eq!(
            g,
            Geometry {
                block_size: 256,
                program_size: 4,
                block_count: 8,
                erase_value: Some(0xFF)
            }
        );
        assert_eq!(d.partition(), 512..512 + 8 * 256);
        assert_eq!(g.validate(), Ok(()));
    }

    #[test]
    fn bad_partitions_are_refused() {
        let cap = 16 * 256;
        let mk = |s, e| FlashDevice::new(Flash::new(cap).unwrap(), s, e).map(|_| ());
        assert_eq!(
            mk(1, 8 * 256),
            Err(FlashError::PartitionMisaligned {
                start: 1,
                end: 2048,
                erase_size: 256
            })
        );
        assert!(matches!(
            mk(0, 8 * 256 + 4),
            Err(FlashError::PartitionMisaligned { .. })
        ));
        assert_eq!(
            mk(512, 512),
            Err(FlashError::PartitionEmpty {
                start: 512,
                end: 512
            })
        );
        assert_eq!(
            mk(1024, 0),
            Err(FlashError::PartitionEmpty {
                start: 1024,
                end: 0
            })
        );
        assert_eq!(
            mk(0, 17 * 256),
            Err(FlashError::PartitionOutOfRange {
                end: 17 * 256,
                capacity: cap
            })
        );
        assert_eq!(
            mk(0, 3 * 256),
            Err(FlashError::PartitionTooSmall { blocks: 3, min: 4 })
        );
        assert!(mk(12 * 256, 16 * 256).is_ok());
        assert!(mk(0, u32::MAX - 255).is_err());
    }

    #[test]
    fn unusable_flash_parameters_are_refused() {
        let e = |r, w, es| partition_geometry::<()>(r, w, es, 1 << 20, 0, 8 * es as u32);
        assert!(matches!(
            e(128, 4, 4096),
            Err(FlashError::UnsupportedFlash(_))
        ));
        assert!(matches!(
            e(0, 4, 4096),
            Err(FlashError::UnsupportedFlash(_))
        ));
        assert!(matches!(
            e(1, 3, 4096),
            Err(FlashError::UnsupportedFlash(_))
        ));
        assert!(matches!(
            e(1, 0, 4096),
            Err(FlashError::UnsupportedFlash(_))
        ));
        assert!(matches!(e(1, 4, 64), Err(FlashError::UnsupportedFlash(_))));
        assert!(matches!(
            e(8, 4, 4100),
            Err(FlashError::UnsupportedFlash(_))
        ));
        for w in [1, 4, 8, 16, 32] {
            for es in [256, 1024, 4096, 65536, 131072] {
                let g = partition_geometry::<()>(4, w, es, 1 << 24, 0, 8 * es as u32).unwrap();
                assert_eq!(
                    (g.program_size, g.block_size, g.block_count),
                    (w as u32, es as u32, 8)
                );
            }
        }
    }

    #[test]
    fn offsets_are_shifted_by_the_partition_start() {
        let mut d = dev(4, 3);
        d.program(0, &[1, 2, 3, 4]).unwrap();
        d.program(256 + 8, &[5, 6, 7, 8]).unwrap();
        let img = d.flash().image();
        assert_eq!(&img[768..772], &[1, 2, 3, 4]);
        assert_eq!(&img[768 + 264..768 + 268], &[5, 6, 7, 8]);
        assert!(img[..768].iter().all(|&b| b == 0xFF));
        d.erase(0).unwrap();
        assert_eq!(d.flash().erase_counts()[3], 1);
        assert!(d.flash().image()[768..1024].iter().all(|&b| b == 0xFF));
        assert_eq!(d.flash().bytes_programmed(), 8);
        let flash = d.into_inner();
        assert_eq!(&flash.image()[768 + 264..768 + 268], &[5, 6, 7, 8]);
    }

    #[test]
    fn unaligned_reads_match_the_image() {
        let mut d = dev(4, 1);
        let pattern: Vec<u8> = (0..1024u32).map(|i| (i * 7 + 3) as u8).collect();
        for (b, chunk) in pattern.chunks(256).enumerate() {
            d.program(b as u64 * 256, chunk).unwrap();
        }
        for off in 0..40u64 {
            for len in 0..40usize {
                let mut buf = vec![0u8; len];
                d.read(off + 250, &mut buf).unwrap();
                let o = off as usize + 250;
                assert_eq!(&buf[..], &pattern[o..o + len], "offset {o} len {len}");
            }
        }
        let mut all = vec![0u8; 1024];
        d.read(0, &mut all).unwrap();
        assert_eq!(all, pattern);
        let mut tail = [0u8; 3];
        d.read(1021, &mut tail).unwrap();
        assert_eq!(&tail, &pattern[1021..]);
    }

    #[test]
    fn contract_breaches_are_typed_errors() {
        let mut d = dev(4, 0);
        let mut buf = [0u8; 8];
        assert_eq!(
            d.read(1020, &mut buf),
            Err(FlashError::OutOfBounds {
                offset: 1020,
                len: 8
            })
        );
        assert!(matches!(
            d.read(u64::MAX, &mut buf),
            Err(FlashError::OutOfBounds { .. })
        ));
        assert!(matches!(
            d.program(u64::MAX - 1, &[0; 4]),
            Err(FlashError::OutOfBounds { .. })
        ));
        assert!(matches!(
            d.program(1024, &[0; 4]),
            Err(FlashError::OutOfBounds { .. })
        ));
        assert_eq!(
            d.program(2, &[0; 4]),
            Err(FlashError::Misaligned { offset: 2, len: 4 })
        );
        assert_eq!(
            d.program(0, &[0; 6]),
            Err(FlashError::Misaligned { offset: 0, len: 6 })
        );
        assert_eq!(
            d.program(252, &[0; 8]),
            Err(FlashError::Misaligned {
                offset: 252,
                len: 8
            })
        );
        assert!(matches!(d.erase(4), Err(FlashError::OutOfBounds { .. })));
        assert!(matches!(
            d.erase(u32::MAX),
            Err(FlashError::OutOfBounds { .. })
        ));
        assert_eq!(d.program(8, &[]), Ok(()));
        assert_eq!(d.read(1024, &mut []), Ok(()));
        // A double program reaches the flash, which refuses it.
        d.program(8, &[0; 4]).unwrap();
        assert_eq!(
            d.program(8, &[0; 4]),
            Err(FlashError::Flash(RamFlashError::Reprogrammed { offset: 8 }))
        );
        assert_eq!(d.sync(), Ok(()));
    }

    #[test]
    fn each_program_is_one_write_of_the_same_bytes() {
        let mut d = dev(4, 0);
        d.program(0, &[0xAB; 256]).unwrap();
        d.program(256, &[0xCD; 4]).unwrap();
        assert_eq!(d.flash().bytes_programmed(), 260);
        assert_eq!(d.flash().write_calls(), 2);
    }

    #[test]
    fn errors_display_in_words() {
        let e: FlashError<()> = FlashError::PartitionTooSmall { blocks: 2, min: 4 };
        assert_eq!(
            e.to_string(),
            "flash partition holds 2 erase blocks; a log needs at least 4"
        );
    }
}
