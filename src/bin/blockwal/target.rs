//! Which log a command looks at (a log directory or a raw image,
//! with its geometry), and opening it. Numbers are range-checked at parse
//! time: a value that does not fit is a usage error, never wrapped.

use std::fs::File;
use std::io::{self, Read as _};
use std::path::PathBuf;

use blockwal::devices::file::LOG_FILE;
use blockwal::devices::image::ImageDevice;
use blockwal::FileDevice;
use clap::Args;

use crate::out::{io_text, wal_error, Fail, Res};

/// The log: `--dir` or `--image`, exactly one.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct LogPath {
    /// A log directory (the one given to `RaftWal::open`).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// A raw image, e.g. a flash dump copied off a board (opened read-only;
    /// `salvage` writes it in place, and only a file-like image).
    #[arg(long, value_name = "FILE")]
    image: Option<PathBuf>,
}

/// The log and its geometry.
#[derive(Args, Debug)]
pub struct Target {
    #[command(flatten)]
    log: LogPath,
    /// Block size in bytes (decimal or 0x hex); read from the first block
    /// header when not given.
    #[arg(long, value_name = "BYTES", value_parser = parse_u32)]
    block_size: Option<u32>,
    /// Program unit of the medium in bytes (4 or 8 on many NOR flashes).
    #[arg(long, value_name = "BYTES", value_parser = parse_u32, default_value = "1")]
    program_size: u32,
    /// What erased flash reads as (0xff on NOR flash), or `none` (files).
    #[arg(long, value_name = "BYTE|none", value_parser = parse_erase, default_value = "none")]
    erase_value: EraseValue,
}

/// `--erase-value`: a byte, or none.
#[derive(Clone, Copy, Debug)]
pub struct EraseValue(Option<u8>);

/// A number in decimal or `0x` hex, as u64.
fn parse_u64(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse(),
    };
    r.map_err(|e| format!("not a number ({e})"))
}

/// A number that must fit in 32 bits.
pub fn parse_u32(s: &str) -> Result<u32, String> {
    let v = parse_u64(s)?;
    u32::try_from(v).map_err(|_| format!("{v} is out of range: at most {}", u32::MAX))
}

fn parse_erase(s: &str) -> Result<EraseValue, String> {
    if s == "none" {
        return Ok(EraseValue(None));
    }
    let v = parse_u64(s)?;
    u8::try_from(v)
        .map(|b| EraseValue(Some(b)))
        .map_err(|_| format!("{v} is out of range: a byte (0..=255, e.g. 0xff) or `none`"))
}

/// What a file opened for writing holds.
pub enum Writable {
    /// The log, locked.
    Log(FileDevice),
    /// Blank (a log never written to).
    Blank,
    /// Not a blockwal log.
    NotALog {
        /// The first byte that is not blank.
        offset: u64,
    },
}

/// What the file holds.
pub enum Opened {
    /// A device to read the log from.
    Log(ImageDevice),
    /// No block header, and every byte blank: a log never written to.
    Blank,
    /// No block header, but not blank either: this is not a blockwal log.
    NotALog {
        /// The first byte that is not blank.
        offset: u64,
    },
}

impl Target {
    /// The file holding the log.
    pub fn path(&self) -> PathBuf {
        match (&self.log.dir, &self.log.image) {
            (Some(d), _) => d.join(LOG_FILE),
            (None, Some(i)) => i.clone(),
            // clap's group makes one of them required.
            (None, None) => PathBuf::new(),
        }
    }

    /// Opens the log read-only, reading the block size from the headers when
    /// not given.
    pub fn open(&self) -> Res<Opened> {
        let path = self.path();
        let io_err = |e: io::Error| Fail::Error(format!("{}: {}", path.display(), io_text(&e)));
        let bs = match self.block_size {
            Some(b) => b,
            None => match ImageDevice::detect_block_size(&path).map_err(io_err)? {
                Some(b) => b,
                None => return self.blank_or_not(),
            },
        };
        ImageDevice::open(&path, bs, self.program_size, self.erase_value.0)
            .map(Opened::Log)
            .map_err(|e| {
                if e.kind() == io::ErrorKind::InvalidInput {
                    Fail::Error(format!("{}: unusable geometry: {e}", path.display()))
                } else {
                    io_err(e)
                }
            })
    }

    /// Opens the log for writing (what `salvage` needs), taking its lock:
    /// through the file device, so only a log file or an image with its
    /// geometry (program size 1, no erase value). Never creates a file.
    pub fn open_writable(&self) -> Res<Writable> {
        let path = self.path();
        let io_err = |e: io::Error| Fail::Error(format!("{}: {}", path.display(), io_text(&e)));
        if self.program_size != 1 || self.erase_value.0.is_some() {
            return Err(Fail::Error(format!(
                "{}: not supported: salvage writes through the file device (program size 1, \
                 no erase value); a flash image cannot be salvaged here. Verify it here, and \
                 salvage it on the board (`Wal::open_mode` with `RecoveryMode::Salvage`). \
                 Nothing was changed.",
                path.display()
            )));
        }
        // Never create a log: the file must be there.
        std::fs::metadata(&path).map_err(io_err)?;
        let bs = match self.block_size {
            Some(b) => b,
            None => match ImageDevice::detect_block_size(&path).map_err(io_err)? {
                Some(b) => b,
                None => {
                    return Ok(match self.blank_or_not()? {
                        Opened::NotALog { offset } => Writable::NotALog { offset },
                        _ => Writable::Blank,
                    })
                }
            },
        };
        // No initial blocks (the file is not grown to open it); growth is
        // the log's own, as when the application opens it.
        FileDevice::open_file(&path, bs, 0, u32::MAX)
            .map(Writable::Log)
            .map_err(|e| wal_error("opening", &path, e))
    }

    /// For a file without any valid block header: blank (a log never
    /// written to) or not a log at all.
    pub fn blank_or_not(&self) -> Res<Opened> {
        let path = self.path();
        let io_err = |e: io::Error| Fail::Error(format!("{}: {}", path.display(), io_text(&e)));
        let blank = self.erase_value.0.unwrap_or(0);
        let mut f = File::open(&path).map_err(io_err)?;
        let mut buf = vec![0u8; 64 << 10];
        let mut at = 0u64;
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) => return Ok(Opened::Blank),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(e)),
            };
            if let Some(i) = buf[..n].iter().position(|&b| b != blank) {
                return Ok(Opened::NotALog {
                    offset: at + i as u64,
                });
            }
            at += n as u64;
        }
    }
}

/// The words for a file that holds no log.
pub fn not_a_log(path: &std::path::Path, offset: u64) -> String {
    format!(
        "{}: not a blockwal log: no valid block header, and the content is not blank \
         (first non-blank byte at offset {offset:#x}); check the path, --block-size, \
         --program-size and --erase-value",
        path.display()
    )
}
