//! `MemDevice`: a device in RAM that also checks the core keeps the contract.

use alloc::vec;
use alloc::vec::Vec;

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
    /// Growing past the device's limit.
    NoSpace,
}

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

    fn check(&self, offset: u64, len: usize) -> Result<usize, MemError> {
        let end = offset
            .checked_add(len as u64)
            .ok_or(MemError::OutOfBounds { offset, len })?;
        if end > self.data.len() as u64 {
            return Err(MemError::OutOfBounds { offset, len });
        }
        Ok(offset as usize)
    }
}

impl BlockDevice for MemDevice {
    type Error = MemError;

    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let at = self.check(offset, buf.len())?;
        buf.copy_from_slice(&self.data[at..at + buf.len()]);
        Ok(())
    }

    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), MemError> {
        let at = self.check(offset, data.len())?;
        let g = self.geometry;
        let p = u64::from(g.program_size);
        let bs = u64::from(g.block_size);
        let misaligned = offset % p != 0
            || data.len() as u64 % p != 0
            || (!data.is_empty() && offset / bs != (offset + data.len() as u64 - 1) / bs);
        if misaligned {
            return Err(MemError::Misaligned {
                offset,
                len: data.len(),
            });
        }
        if g.erase_value.is_some() {
            let first = (offset / p) as usize;
            let units = data.len() / p as usize;
            if let Some(u) = (first..first + units).find(|&u| self.programmed[u]) {
                return Err(MemError::Reprogrammed {
                    offset: u as u64 * p,
                });
            }
            self.programmed[first..first + units]
                .iter_mut()
                .for_each(|f| *f = true);
        }
        self.data[at..at + data.len()].copy_from_slice(data);
        Ok(())
    }

    fn erase(&mut self, block: u32) -> Result<(), MemError> {
        let g = self.geometry;
        let start = self.check(g.block_offset(block), g.block_size as usize)?;
        if let Some(ev) = g.erase_value {
            self.data[start..start + g.block_size as usize].fill(ev);
            let p = g.program_size as usize;
            self.programmed[start / p..(start + g.block_size as usize) / p].fill(false);
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
