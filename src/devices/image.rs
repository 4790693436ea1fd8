//! `ImageDevice`: a read-only view of a raw log image in a file (a flash dump
//! copied off a board, or a log file), with the geometry the caller gives.
//! It shares the file device's OS layer (positional reads on every platform)
//! and its errors ([`FileError`]: the path and the operation).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::device::{BlockDevice, Geometry};
use crate::devices::file::{read_exact_at, FileError, FileOp};
use crate::format::{BlockHeader, HEADER_LEN};

/// A raw image opened read-only. Reads come from the file; `program`,
/// `erase`, `sync` and `grow` fail, so a [`crate::Wal`] opened over it can
/// be read but never changes the image. Unlike [`crate::FileDevice`], the
/// geometry is the caller's: a NOR flash dump keeps its program size and
/// erase value, so decisions such as "is this area still erased" come out
/// as they would on the board.
#[derive(Debug)]
pub struct ImageDevice {
    file: File,
    path: PathBuf,
    geo: Geometry,
}

impl ImageDevice {
    /// Opens `path` read-only with `block_size`, `program_size` and
    /// `erase_value`; the block count is the file length over the block
    /// size (a partial last block is ignored).
    pub fn open(
        path: impl AsRef<Path>,
        block_size: u32,
        program_size: u32,
        erase_value: Option<u8>,
    ) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(at(FileOp::Open, &path))?;
        let len = file.metadata().map_err(at(FileOp::Metadata, &path))?.len();
        let invalid = |what: &str| {
            let e = io::Error::new(io::ErrorKind::InvalidInput, what.to_string());
            at(FileOp::Open, &path)(e)
        };
        if block_size == 0 {
            return Err(invalid("block size must not be 0"));
        }
        let geo = Geometry {
            block_size,
            program_size,
            block_count: u32::try_from(len / u64::from(block_size))
                .map_err(|_| invalid("image holds more than 2^32 blocks"))?,
            erase_value,
        };
        geo.validate().map_err(invalid)?;
        Ok(ImageDevice { file, path, geo })
    }

    /// Reads the block size a log image was written with from the first
    /// valid block header found at offset 0 or at a power-of-two block
    /// boundary (512 B to 64 MiB). `None` if no header is found.
    pub fn detect_block_size(path: impl AsRef<Path>) -> io::Result<Option<u32>> {
        let path = path.as_ref();
        let file = File::open(path).map_err(at(FileOp::Open, path))?;
        let len = file.metadata().map_err(at(FileOp::Metadata, path))?.len();
        let mut offsets = vec![0u64];
        for shift in 9..=26u32 {
            offsets.extend((1..4u64).map(|k| k << shift));
        }
        for off in offsets {
            if off + HEADER_LEN as u64 > len {
                continue;
            }
            let mut h = [0u8; HEADER_LEN];
            read_exact_at(&file, &mut h, off).map_err(at(FileOp::Read(off), path))?;
            if let Some(bs) = BlockHeader::block_size_of(&h) {
                if bs.is_power_of_two() || off == 0 || off % u64::from(bs.max(1)) == 0 {
                    return Ok(Some(bs));
                }
            }
        }
        Ok(None)
    }
}

/// Wraps an OS error with the operation and the image's path.
fn at(op: FileOp, path: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| FileError::new(op, path, e).into()
}

fn read_only() -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        "the image is opened read-only",
    )
}

impl BlockDevice for ImageDevice {
    type Error = io::Error;

    fn geometry(&self) -> Geometry {
        self.geo
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        read_exact_at(&self.file, buf, offset).map_err(at(FileOp::Read(offset), &self.path))
    }

    fn program(&mut self, _offset: u64, _data: &[u8]) -> io::Result<()> {
        Err(read_only())
    }

    fn erase(&mut self, _block: u32) -> io::Result<()> {
        Err(read_only())
    }

    fn sync(&mut self) -> io::Result<()> {
        Err(read_only())
    }
}
