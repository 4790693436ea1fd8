//! `inspect`, `dump` and `verify`: read-only views of a log directory or a
//! raw image. The checking itself is `blockwal::verify` (in the core).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use blockwal::devices::image::ImageDevice;
use blockwal::verify::{self, BlockKind, Report, SummaryState};
use blockwal::Wal;

/// Where the log is: a log directory, or a raw image with its geometry.
pub struct Target {
    pub path: PathBuf,
    pub block_size: Option<u32>,
    pub program_size: u32,
    pub erase_value: Option<u8>,
}

/// Parses `--dir DIR` or `--image FILE [--block-size N] [--program-size N]
/// [--erase-value 0xff|none]`; other flags are handed to `other`.
pub fn parse_target(
    args: &mut dyn Iterator<Item = String>,
    mut other: impl FnMut(&str, String) -> Result<(), String>,
) -> Result<Target, String> {
    let mut dir = None;
    let mut image = None;
    let mut block_size = None;
    let mut program_size = None;
    let mut erase_value = None;
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| -> Result<u64, String> {
            let v = v.trim();
            let r = if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
                u64::from_str_radix(h, 16)
            } else {
                v.parse()
            };
            r.map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--dir" => dir = Some(PathBuf::from(&value)),
            "--image" => image = Some(PathBuf::from(&value)),
            "--block-size" => block_size = Some(num(&value)? as u32),
            "--program-size" => program_size = Some(num(&value)? as u32),
            "--erase-value" => {
                erase_value = Some(if value == "none" {
                    None
                } else {
                    Some(u8::try_from(num(&value)?).map_err(|_| "--erase-value: 0..=255")?)
                })
            }
            _ => other(&flag, value)?,
        }
    }
    match (dir, image) {
        (Some(d), None) => Ok(Target {
            path: d.join(blockwal::devices::file::LOG_FILE),
            block_size,
            program_size: program_size.unwrap_or(1),
            erase_value: erase_value.unwrap_or(None),
        }),
        (None, Some(i)) => Ok(Target {
            path: i,
            block_size,
            program_size: program_size.unwrap_or(1),
            erase_value: erase_value.unwrap_or(None),
        }),
        _ => Err("give the log as --dir DIR or --image FILE (with --block-size, --program-size, --erase-value for a flash image)".into()),
    }
}

/// Opens the target read-only, detecting the block size when not given.
pub fn open(t: &Target) -> Result<ImageDevice, String> {
    let bs = match t.block_size {
        Some(b) => b,
        None => ImageDevice::detect_block_size(&t.path)
            .map_err(|e| format!("{}: {e}", t.path.display()))?
            .ok_or("no block header found: give --block-size")?,
    };
    ImageDevice::open(&t.path, bs, t.program_size, t.erase_value)
        .map_err(|e| format!("{}: {e}", t.path.display()))
}

fn kind(k: BlockKind) -> &'static str {
    match k {
        BlockKind::Free => "free",
        BlockKind::Log => "log",
        BlockKind::Meta => "meta",
    }
}

fn preview(v: &[u8], max: usize) -> String {
    let s: String = String::from_utf8_lossy(&v[..v.len().min(max)])
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .collect();
    if v.len() > max {
        format!("{s}...")
    } else {
        s
    }
}

fn hex(v: &[u8], max: usize) -> String {
    let mut s = String::new();
    for b in &v[..v.len().min(max)] {
        let _ = write!(s, "{b:02x}");
    }
    if v.len() > max {
        s.push_str("..");
    }
    s
}

/// The `inspect` text: geometry, blocks, indices, meta keys, free space.
pub fn inspect_text(r: &Report, all_blocks: bool) -> String {
    let mut s = String::new();
    let g = r.geometry.expect("verify sets the geometry");
    let _ = writeln!(
        s,
        "geometry: {} blocks of {} B ({} KiB), program size {}, erase value {}",
        g.block_count,
        g.block_size,
        g.capacity() >> 10,
        g.program_size,
        g.erase_value.map_or("none".into(), |v| format!("{v:#04x}"))
    );
    let _ = writeln!(
        s,
        "log: first index {}, last index {}, next index {}",
        r.first_index.map_or("-".into(), |v| v.to_string()),
        r.last_index.map_or("-".into(), |v| v.to_string()),
        r.next_index.map_or("any".into(), |v| v.to_string())
    );
    let _ = writeln!(
        s,
        "chain: {} blocks; free: {} blocks ({} KiB)",
        r.chain.len(),
        r.free_blocks,
        u64::from(r.free_blocks) * u64::from(g.block_size) / 1024
    );
    let keys: Vec<String> = r
        .meta
        .iter()
        .map(|(k, v)| format!("{k} ({} B)", v.len()))
        .collect();
    let _ = writeln!(
        s,
        "meta keys: {}",
        if keys.is_empty() {
            "-".into()
        } else {
            keys.join(", ")
        }
    );
    let _ = writeln!(
        s,
        "{:>7} {:>5} {:>10} {:>10} {:>5} {:>21} {:>8} {:>8}  state",
        "block", "kind", "seq", "prev", "cont", "entries", "records", "summary"
    );
    let mut shown = 0;
    for b in &r.blocks {
        if b.kind == BlockKind::Free && !all_blocks {
            continue;
        }
        shown += 1;
        let entries = if b.kind == BlockKind::Log {
            if b.entries.1 > b.entries.0 {
                format!("{}..={}", b.entries.0, b.entries.1 - 1)
            } else {
                "none".into()
            }
        } else {
            "".into()
        };
        let summary = match (b.kind, b.summary) {
            (BlockKind::Log, SummaryState::Valid) => "valid",
            (BlockKind::Log, SummaryState::Bad) => "BAD",
            (BlockKind::Log, SummaryState::Absent) => "none",
            _ => "",
        };
        let state = if b.live {
            if Some(b.block) == r.chain.last().copied() {
                "live (head)"
            } else {
                "live"
            }
        } else if b.kind == BlockKind::Free {
            "free"
        } else {
            "stale (free)"
        };
        let _ = writeln!(
            s,
            "{:>7} {:>5} {:>10} {:>10} {:>5} {:>21} {:>8} {:>8}  {state}",
            b.block,
            kind(b.kind),
            b.seq,
            if b.kind == BlockKind::Log {
                b.prev.to_string()
            } else {
                String::new()
            },
            if b.cont { "yes" } else { "" },
            entries,
            b.records,
            summary,
        );
    }
    if shown == 0 {
        let _ = writeln!(s, "(no blocks in use)");
    }
    s
}

/// The `verify` text and whether the log is sound.
pub fn verify_text(r: &Report) -> (String, bool) {
    let mut s = String::new();
    let g = r.geometry.expect("verify sets the geometry");
    let used = r
        .blocks
        .iter()
        .filter(|b| b.kind != BlockKind::Free)
        .count();
    let records: u64 = r.blocks.iter().map(|b| u64::from(b.records)).sum();
    let _ = writeln!(
        s,
        "checked {} blocks ({} in use), {} records",
        g.block_count, used, records
    );
    for n in &r.notes {
        let _ = writeln!(
            s,
            "note: block {} at offset {:#x}: {}",
            n.block, n.offset, n.what
        );
    }
    if let Some(p) = r.first_problem() {
        let _ = writeln!(
            s,
            "CORRUPT: first problem at offset {:#x} (block {}, offset {:#x} in the block): {}",
            p.offset,
            p.block,
            p.offset - g.block_offset(p.block),
            p.what
        );
        for p in r.problems.iter().skip(1) {
            let _ = writeln!(
                s,
                "  also at {:#x} (block {}): {}",
                p.offset, p.block, p.what
            );
        }
        (s, false)
    } else {
        let _ = writeln!(
            s,
            "ok: entries {}..={}, {} meta keys",
            r.first_index.map_or("-".into(), |v| v.to_string()),
            r.last_index.map_or("-".into(), |v| v.to_string()),
            r.meta.len()
        );
        (s, true)
    }
}

/// `inspect`.
pub fn inspect(mut args: impl Iterator<Item = String>) -> Result<bool, String> {
    let mut all = false;
    let t = parse_target(&mut args, |f, v| match f {
        "--all" => {
            all = v != "no";
            Ok(())
        }
        _ => Err(format!("unknown option {f}")),
    })?;
    let mut dev = open(&t)?;
    let r = verify::verify(&mut dev).map_err(|e| e.to_string())?;
    let _ = std::io::stdout().write_all(inspect_text(&r, all).as_bytes());
    if let Some(p) = r.first_problem() {
        println!(
            "problems found: run `blockwal verify` (first: {} at {:#x})",
            p.what, p.offset
        );
    }
    Ok(true)
}

/// `verify`: the exit code is non-zero on corruption.
pub fn verify(mut args: impl Iterator<Item = String>) -> Result<bool, String> {
    let t = parse_target(&mut args, |f, _| Err(format!("unknown option {f}")))?;
    let mut dev = open(&t)?;
    let r = verify::verify(&mut dev).map_err(|e| e.to_string())?;
    let (text, ok) = verify_text(&r);
    let _ = std::io::stdout().write_all(text.as_bytes());
    Ok(ok)
}

/// `dump`: entries in a range, and the metadata.
pub fn dump(mut args: impl Iterator<Item = String>) -> Result<bool, String> {
    let (mut from, mut to, mut width) = (None, None, 32usize);
    let t = parse_target(&mut args, |f, v| {
        let n = v
            .parse::<u64>()
            .map_err(|_| format!("{f}: not a number: {v}"));
        match f {
            "--from" => from = Some(n?),
            "--to" => to = Some(n?),
            "--width" => width = n? as usize,
            _ => return Err(format!("unknown option {f}")),
        }
        Ok(())
    })?;
    let dev = open(&t)?;
    let wal = Wal::open(dev).map_err(|e| e.to_string())?;
    for k in wal.meta_keys() {
        let v = wal.get_meta(k).unwrap_or_default();
        println!(
            "meta {k} = {} ({} B, hex {})",
            preview(v, 64),
            v.len(),
            hex(v, 32)
        );
    }
    let (Some(first), Some(last)) = (wal.first_index(), wal.last_index()) else {
        println!("no entries");
        return Ok(true);
    };
    let lo = from.unwrap_or(first).max(first);
    let hi = to.unwrap_or(last.min(lo.saturating_add(19))).min(last);
    println!("entries {lo}..={hi} of {first}..={last}");
    let mut out = std::io::stdout().lock();
    for e in wal.iter_range(lo..=hi) {
        let line = writeln!(
            out,
            "{:>10} {:>7} B  {:<w$}  {}",
            e.index,
            e.data.len(),
            hex(&e.data, width / 2),
            preview(&e.data, width),
            w = width + 2
        );
        if line.is_err() {
            // The reader went away (`| head`): stop quietly.
            return Ok(true);
        }
    }
    if let Some(e) = wal.take_read_error() {
        return Err(format!("reading entries: {e}"));
    }
    Ok(true)
}
