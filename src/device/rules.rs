//! The device contract as checks: every in-memory and flash adapter asks
//! these before it touches its storage, so the rules live in one place
//! (embedded-storage's `check_read`/`check_write`/`check_erase` are the model).
//!
//! [`check_program`] and [`check_erase`] apply the whole contract of
//! [`BlockDevice`](super::BlockDevice) for a [`Geometry`]; the pieces
//! ([`check_bounds`], [`check_aligned`], [`check_one_block`],
//! [`check_unprogrammed`]) serve devices with other rules, such as NOR flash
//! whose writes may span sectors. Ranges come back as `usize`, ready to
//! index the bytes of a device that holds its content in memory. Arithmetic
//! stays in `usize`, so 32-bit targets need no 64-bit division.

use core::fmt;
use core::ops::Range;

use super::Geometry;

/// A rule an operation broke. Offsets and lengths are those the caller gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Breach {
    /// The range does not lie inside the device.
    OutOfBounds {
        /// Offset asked for.
        offset: u64,
        /// Length asked for.
        len: usize,
    },
    /// Offset or length is not a multiple of the unit.
    Misaligned {
        /// Offset asked for.
        offset: u64,
        /// Length asked for.
        len: usize,
    },
    /// A program that starts in one block and ends in another.
    CrossesBlock {
        /// Offset asked for.
        offset: u64,
        /// Length asked for.
        len: usize,
    },
    /// A program unit programmed a second time since its block was erased.
    Reprogrammed {
        /// Byte offset of the first such unit.
        offset: u64,
    },
    /// An erase of a block the device does not have.
    NoSuchBlock {
        /// The block asked for.
        block: u32,
    },
}

impl fmt::Display for Breach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Breach::OutOfBounds { offset, len } => {
                write!(
                    f,
                    "access of {len} bytes at offset {offset} is outside the device"
                )
            }
            Breach::Misaligned { offset, len } => write!(
                f,
                "program of {len} bytes at offset {offset} is not aligned to the program unit"
            ),
            Breach::CrossesBlock { offset, len } => write!(
                f,
                "program of {len} bytes at offset {offset} crosses a block boundary"
            ),
            Breach::Reprogrammed { offset } => write!(
                f,
                "program unit at offset {offset} programmed twice without an erase"
            ),
            Breach::NoSuchBlock { block } => {
                write!(f, "erase of block {block}, which does not exist")
            }
        }
    }
}

impl core::error::Error for Breach {}

/// `offset..offset + len` as a `usize` range, if it lies inside `0..capacity`.
pub fn check_bounds(capacity: u64, offset: u64, len: usize) -> Result<Range<usize>, Breach> {
    let oob = Breach::OutOfBounds { offset, len };
    let end = offset.checked_add(len as u64).ok_or(oob)?;
    if end > capacity {
        return Err(oob);
    }
    let start = usize::try_from(offset).map_err(|_| oob)?;
    let end = usize::try_from(end).map_err(|_| oob)?;
    Ok(start..end)
}

/// Checks `range` (the caller's `offset`/`len`, already bounds-checked)
/// starts and ends on a multiple of `unit`.
pub fn check_aligned(unit: usize, range: &Range<usize>) -> Result<(), Breach> {
    let unit = unit.max(1);
    if range.start % unit != 0 || range.len() % unit != 0 {
        return Err(Breach::Misaligned {
            offset: range.start as u64,
            len: range.len(),
        });
    }
    Ok(())
}

/// Checks a non-empty `range` lies inside one block of `block_size` bytes.
pub fn check_one_block(block_size: usize, range: &Range<usize>) -> Result<(), Breach> {
    let bs = block_size.max(1);
    if !range.is_empty() && range.start / bs != (range.end - 1) / bs {
        return Err(Breach::CrossesBlock {
            offset: range.start as u64,
            len: range.len(),
        });
    }
    Ok(())
}

/// Checks no program unit of `range` (aligned to `unit`) is programmed yet,
/// asking `is_programmed(unit number)`; returns the units' numbers, for the
/// caller to mark once it has programmed them.
pub fn check_unprogrammed(
    unit: usize,
    range: &Range<usize>,
    is_programmed: impl Fn(usize) -> bool,
) -> Result<Range<usize>, Breach> {
    let unit = unit.max(1);
    let units = range.start / unit..range.end / unit;
    match units.clone().find(|&u| is_programmed(u)) {
        Some(u) => Err(Breach::Reprogrammed {
            offset: (u * unit) as u64,
        }),
        None => Ok(units),
    }
}

/// What a checked program covers.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProgramSpan {
    /// The bytes, as indexes into the device's content.
    pub bytes: Range<usize>,
    /// The program units, numbered from 0 at the device's start. On devices
    /// with an erase value the caller marks these programmed.
    pub units: Range<usize>,
}

/// The whole contract for `program(offset, len)` on a device of geometry
/// `g`: inside the device, aligned to the program unit, inside one block,
/// and, when `g.erase_value` is `Some`, no unit programmed since its block's
/// last erase (`is_programmed` is asked only then). Checked in that order;
/// the first rule broken is returned.
pub fn check_program(
    g: &Geometry,
    offset: u64,
    len: usize,
    is_programmed: impl Fn(usize) -> bool,
) -> Result<ProgramSpan, Breach> {
    let bytes = check_bounds(g.capacity(), offset, len)?;
    let p = g.program_size as usize;
    check_aligned(p, &bytes)?;
    check_one_block(g.block_size as usize, &bytes)?;
    let units = if g.erase_value.is_some() {
        check_unprogrammed(p, &bytes, is_programmed)?
    } else {
        let p = p.max(1);
        bytes.start / p..bytes.end / p
    };
    Ok(ProgramSpan { bytes, units })
}

/// The contract for `erase(block)`: the block exists. Returns its bytes.
pub fn check_erase(g: &Geometry, block: u32) -> Result<Range<usize>, Breach> {
    if block >= g.block_count {
        return Err(Breach::NoSuchBlock { block });
    }
    check_bounds(g.capacity(), g.block_offset(block), g.block_size as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geo(program_size: u32, erase_value: Option<u8>) -> Geometry {
        Geometry {
            block_size: 256,
            program_size,
            block_count: 4,
            erase_value,
        }
    }

    #[test]
    fn bounds_refuse_overflow_and_the_end() {
        assert_eq!(check_bounds(1024, 0, 1024), Ok(0..1024));
        assert_eq!(check_bounds(1024, 1024, 0), Ok(1024..1024));
        for (offset, len) in [(1020, 8), (1025, 0), (u64::MAX, 1), (u64::MAX - 1, 4)] {
            assert_eq!(
                check_bounds(1024, offset, len),
                Err(Breach::OutOfBounds { offset, len })
            );
        }
    }

    #[test]
    fn programs_are_aligned_and_inside_one_block() {
        let g = geo(4, None);
        let never = |_| panic!("no program-once rule without an erase value");
        assert_eq!(
            check_program(&g, 8, 8, never),
            Ok(ProgramSpan {
                bytes: 8..16,
                units: 2..4
            })
        );
        assert_eq!(
            check_program(&g, 2, 4, never),
            Err(Breach::Misaligned { offset: 2, len: 4 })
        );
        assert_eq!(
            check_program(&g, 4, 6, never),
            Err(Breach::Misaligned { offset: 4, len: 6 })
        );
        assert_eq!(
            check_program(&g, 252, 8, never),
            Err(Breach::CrossesBlock {
                offset: 252,
                len: 8
            })
        );
        // Bounds come first: an unaligned program past the end is out of bounds.
        assert_eq!(
            check_program(&g, 1022, 4, never),
            Err(Breach::OutOfBounds {
                offset: 1022,
                len: 4
            })
        );
        assert_eq!(
            check_program(&g, 256, 0, never).map(|s| s.units),
            Ok(64..64)
        );
        assert_eq!(
            check_program(&g, 768, 256, never).map(|s| s.bytes),
            Ok(768..1024)
        );
    }

    #[test]
    fn flash_units_are_programmed_once() {
        let g = geo(8, Some(0xFF));
        let programmed = |u: usize| u == 5;
        assert_eq!(
            check_program(&g, 16, 32, programmed),
            Err(Breach::Reprogrammed { offset: 40 })
        );
        assert_eq!(
            check_program(&g, 48, 16, programmed).map(|s| s.units),
            Ok(6..8)
        );
        assert_eq!(
            check_unprogrammed(1, &(3..9), |u| u >= 7),
            Err(Breach::Reprogrammed { offset: 7 })
        );
    }

    #[test]
    fn erases_name_an_existing_block() {
        let g = geo(1, Some(0));
        assert_eq!(check_erase(&g, 3), Ok(768..1024));
        assert_eq!(check_erase(&g, 4), Err(Breach::NoSuchBlock { block: 4 }));
        assert_eq!(
            check_erase(&g, u32::MAX),
            Err(Breach::NoSuchBlock { block: u32::MAX })
        );
    }

    #[test]
    fn breaches_read_as_sentences() {
        use alloc::string::ToString;
        assert_eq!(
            Breach::CrossesBlock {
                offset: 252,
                len: 8
            }
            .to_string(),
            "program of 8 bytes at offset 252 crosses a block boundary"
        );
        assert_eq!(
            Breach::Reprogrammed { offset: 40 }.to_string(),
            "program unit at offset 40 programmed twice without an erase"
        );
    }
}
