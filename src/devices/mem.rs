//! `MemDevice`: a device in RAM that also checks the core keeps the contract.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::device::rules::{self, Breach};
use crate::device::{BlockDevice, Geometry};

/// What a [`MemDevice`] refuses: each is a breach of the device contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemError {
    /// Access outside the device.
    OutOfBounds {
        /// Offset asked for.
        offset: u64,
        /// Length asked for.
        len: usize,
    },
    /// A program not aligned to the program unit, or crossing a block.
    Misaligned {
        /// Offset asked for.
        offset: u64,
        /// Length asked for.
        len: usize,
    },
    /// A program unit programmed twice without an erase (devices with an erase value).
    Reprogrammed {
        /// Offset of the unit.
        offset: u64,
    },
    /// An erase of a block the device does not have.
    NoSuchBlock {
        /// The block asked for.
        block: u32,
    },
    /// Growing past the device's limit.
    NoSpace,
}

impl From<Breach> for MemError {
    fn from(b: Breach) -> Self {
        match b {
            Breach::OutOfBounds { offset, len } => MemError::OutOfBounds { offset, len },
            Breach::Misaligned { offset, len } | Breach::CrossesBlock { offset, len } => {
                MemError::Misaligned { offset, len }
            }
            Breach::Reprogrammed { offset } => MemError::Reprogrammed { offset },
            Breach::NoSuchBlock { block } => MemError::NoSuchBlock { block },
        }
    }
}

impl fmt::Display for MemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemError::OutOfBounds { offset, len } => write!(
                f,
                "access of {len} bytes at offset {offset} is outside the memory device"
            ),
            MemError::Misaligned { offset, len } => write!(
                f,
                "program of {len} bytes at offset {offset} is not aligned to the program unit \
                 or crosses a block"
            ),
            MemError::Reprogrammed { offset } => write!(
                f,
                "program unit at offset {offset} programmed twice without an erase"
            ),
            MemError::NoSuchBlock { block } => {
                write!(
                    f,
                    "erase of block {block}, which the memory device does not have"
                )
            }
            MemError::NoSpace => write!(f, "memory device is at its size limit"),
        }
    }
}

impl core::error::Error for MemError {}

/// A device held in memory. Growable up to `max_blocks`; on geometries with an
/// erase value it refuses to program a unit twice between erases, so tests on
/// it catch a core that would break NOR flash.
#[derive(Debug, Clone)]
pub struct MemDevice {
    geometry: Geometry,
    data: Vec<u8>,
    /// One flag per program unit: programmed since its block's last erase.
    programmed: Vec<bool>,
    max_blocks: u32,
}

impl MemDevice {
    /// A file-like device: program unit 1, no erase, growable to `max_blocks`.
    pub fn new(block_size: u32, block_count: u32, max_blocks: u32) -> Self {
        Self::with_geometry(
            Geometry {
                block_size,
                program_size: 1,
                block_count,
                erase_value: None,
            },
            max_blocks,
        )
    }

    /// A device of any geometry, growable to `max_blocks` (use
    /// `geometry.block_count` for a fixed size). Starts erased, or zeroed when
    /// there is no erase value.
    pub fn with_geometry(geometry: Geometry, max_blocks: u32) -> Self {
        let len = geometry.capacity() as usize;
        let units = len / geometry.program_size.max(1) as usize;
        MemDevice {
            geometry,
            data: vec![geometry.erase_value.unwrap_or(0); len],
            programmed: vec![false; units],
            max_blocks: max_blocks.max(geometry.block_count),
        }
    }

    /// Builds a device over an existing image (for example a flash dump).
    pub fn from_image(geometry: Geometry, image: Vec<u8>) -> Self {
        let mut d = Self::with_geometry(geometry, geometry.block_count);
        let n = image.len().min(d.data.len());
        d.data[..n].copy_from_slice(&image[..n]);
        if let Some(ev) = geometry.erase_value {
            let p = geometry.program_size as usize;
            for (u, chunk) in d.data.chunks(p).enumerate() {
                d.programmed[u] = chunk.iter().any(|&b| b != ev);
            }
        }
        d
    }

    /// The whole image, for inspection and corruption tests.
    pub fn image(&self) -> &[u8] {
        &self.data
    }

    /// The whole image, writable: tests flip bytes here.
    pub fn image_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }
}

impl BlockDevice for MemDevice {
    type Error = MemError;

    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let at = rules::check_bounds(self.data.len() as u64, offset, buf.len())?;
        buf.copy_from_slice(&self.data[at]);
        Ok(())
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), MemError> {
        let programmed = &self.programmed;
        let span = rules::check_program(&self.geometry, offset, data.len(), |u| programmed[u])?;
        if self.geometry.erase_value.is_some() {
            self.programmed[span.units].fill(true);
        }
        self.data[span.bytes].copy_from_slice(data);
        Ok(())
    }

    fn erase(&mut self, block: u32) -> Result<(), MemError> {
        let g = self.geometry;
        let bytes = rules::check_erase(&g, block)?;
        if let Some(ev) = g.erase_value {
            let p = g.program_size as usize;
            self.programmed[bytes.start / p..bytes.end / p].fill(false);
            self.data[bytes].fill(ev);
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), MemError> {
        Ok(())
    }

    fn grow(&mut self, blocks: u32) -> Result<bool, MemError> {
        let Some(count) = self.geometry.block_count.checked_add(blocks) else {
            return Ok(false);
        };
        if count > self.max_blocks {
            return Ok(false);
        }
        self.geometry.block_count = count;
        let len = self.geometry.capacity() as usize;
        self.data
            .resize(len, self.geometry.erase_value.unwrap_or(0));
        self.programmed
            .resize(len / self.geometry.program_size as usize, false);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn contract_breaches_are_refused_and_change_nothing() {
        let g = Geometry {
            block_size: 128,
            program_size: 4,
            block_count: 2,
            erase_value: Some(0xFF),
        };
        let mut d = MemDevice::with_geometry(g, 2);
        d.program(8, &[1; 4]).unwrap();
        assert_eq!(
            d.program(8, &[0; 4]),
            Err(MemError::Reprogrammed { offset: 8 })
        );
        assert_eq!(
            d.program(124, &[0; 8]),
            Err(MemError::Misaligned {
                offset: 124,
                len: 8
            })
        );
        assert_eq!(
            d.program(254, &[0; 4]),
            Err(MemError::OutOfBounds {
                offset: 254,
                len: 4
            })
        );
        assert_eq!(d.erase(2), Err(MemError::NoSuchBlock { block: 2 }));
        assert_eq!(
            &d.image()[..16],
            &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 1, 1, 1, 0xFF, 0xFF, 0xFF, 0xFF]
        );
        d.erase(0).unwrap();
        d.program(8, &[0; 4]).unwrap();
        assert_eq!(
            MemError::Reprogrammed { offset: 8 }.to_string(),
            "program unit at offset 8 programmed twice without an erase"
        );
    }
}
