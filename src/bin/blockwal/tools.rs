//! `inspect`, `dump` and `verify`: read-only views of a log directory or a
//! raw image, as text or JSON. The checking itself is `blockwal::verify`
//! (in the core).

use std::fmt::Write as _;
use std::path::Path;

use blockwal::verify::{self, BlockKind, BlockReport, Finding, Report, SummaryState};
use blockwal::Wal;
use clap::Args;
use serde_json::{json, Value};

use crate::out::{outln, wal_error, Fail, Out, Res};
use crate::salvage::recovery_json;
use crate::target::{not_a_log, Opened, Target};

/// `inspect`'s options.
#[derive(Args, Debug)]
pub struct InspectArgs {
    #[command(flatten)]
    target: Target,
    /// Also list free blocks (text output; JSON lists every block).
    #[arg(long)]
    all: bool,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// `dump`'s options.
#[derive(Args, Debug)]
pub struct DumpArgs {
    #[command(flatten)]
    target: Target,
    /// First entry to show (default: the log's first).
    #[arg(long, value_name = "INDEX")]
    from: Option<u64>,
    /// Last entry to show (default: 19 after --from).
    #[arg(long, value_name = "INDEX", conflicts_with = "all")]
    to: Option<u64>,
    /// Every entry from --from on.
    #[arg(long)]
    all: bool,
    /// Bytes of each entry shown as text (half as many in hex).
    #[arg(long, value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(2..=4096))]
    width: u32,
    /// One JSON object per line: each meta key, then each entry (whole, in hex).
    #[arg(long)]
    json: bool,
}

/// `verify`'s options.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    target: Target,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// The log's verification, or why there is none.
enum Checked {
    Log(Box<Report>),
    Blank,
    NotALog { offset: u64 },
}

fn check(t: &Target) -> Res<Checked> {
    let path = t.path();
    let mut dev = match t.open()? {
        Opened::Log(dev) => dev,
        Opened::Blank => return Ok(Checked::Blank),
        Opened::NotALog { offset } => return Ok(Checked::NotALog { offset }),
    };
    let r = verify::verify(&mut dev).map_err(|e| wal_error("verifying", &path, e))?;
    // No valid header anywhere and no problem found: blank, or not a log
    // (garbage must never verify as an empty log).
    if r.problems.is_empty() && r.blocks.iter().all(|b| b.kind == BlockKind::Free) {
        return Ok(match t.blank_or_not()? {
            Opened::NotALog { offset } => Checked::NotALog { offset },
            _ => Checked::Blank,
        });
    }
    Ok(Checked::Log(Box::new(r)))
}

fn kind(k: BlockKind) -> &'static str {
    match k {
        BlockKind::Free => "free",
        BlockKind::Log => "log",
        BlockKind::Meta => "meta",
    }
}

fn summary(b: &BlockReport) -> &'static str {
    match (b.kind, b.summary) {
        (BlockKind::Log, SummaryState::Valid) => "valid",
        (BlockKind::Log, SummaryState::Bad) => "bad",
        (BlockKind::Log, SummaryState::Absent) => "none",
        _ => "",
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
    let mut s = String::with_capacity(2 * v.len().min(max) + 2);
    for b in &v[..v.len().min(max)] {
        let _ = write!(s, "{b:02x}");
    }
    if v.len() > max {
        s.push_str("..");
    }
    s
}

fn opt(v: Option<u64>, none: &str) -> String {
    v.map_or(none.into(), |v| v.to_string())
}

fn finding_json(r: &Report, f: &Finding) -> Value {
    let in_block = r
        .geometry
        .map(|g| f.offset.saturating_sub(g.block_offset(f.block)));
    json!({"block": f.block, "offset": f.offset, "offset_in_block": in_block, "what": f.what})
}

/// The JSON of a file that holds no log.
fn no_log_json(path: &Path, c: &Checked) -> Value {
    let offset = match c {
        Checked::NotALog { offset } => Some(*offset),
        _ => None,
    };
    json!({
        "path": path.display().to_string(),
        "log_found": false,
        "blank": offset.is_none(),
        "first_non_blank_offset": offset,
        "ok": offset.is_none(),
    })
}

/// `inspect`: exit code 1 when problems are found.
pub fn inspect(a: InspectArgs) -> Res {
    let path = a.target.path();
    let mut out = Out::new();
    let c = check(&a.target)?;
    let r = match &c {
        Checked::Log(r) => r,
        Checked::Blank | Checked::NotALog { .. } if a.json => {
            out.json(&no_log_json(&path, &c))?;
            return Ok(matches!(c, Checked::Blank));
        }
        Checked::Blank => {
            outln!(
                out,
                "{}: an empty log (no block written yet)",
                path.display()
            );
            return Ok(true);
        }
        Checked::NotALog { offset } => return Err(Fail::Corrupt(not_a_log(&path, *offset))),
    };
    if a.json {
        out.json(&inspect_json(&path, r))?;
    } else {
        out.text(&inspect_text(r, a.all))?;
        if let Some(p) = r.first_problem() {
            outln!(
                out,
                "problems found: run `blockwal verify` (first: {} at {:#x})",
                p.what,
                p.offset
            );
        }
    }
    Ok(r.is_sound())
}

fn inspect_json(path: &Path, r: &Report) -> Value {
    let head = r.chain.last().copied();
    let blocks: Vec<Value> = r
        .blocks
        .iter()
        .map(|b| {
            json!({
                "block": b.block,
                "kind": kind(b.kind),
                "seq": b.seq,
                "prev": b.prev,
                "base": b.base,
                "floor": b.floor,
                "cont": b.cont,
                "records": b.records,
                "entries": if b.kind == BlockKind::Log && b.entries.1 > b.entries.0 {
                    json!({"first": b.entries.0, "last": b.entries.1 - 1})
                } else {
                    Value::Null
                },
                "end": b.end,
                "summary": summary(b),
                "live": b.live,
                "head": Some(b.block) == head,
            })
        })
        .collect();
    let g = r.geometry;
    json!({
        "path": path.display().to_string(),
        "log_found": true,
        "geometry": g.map(|g| json!({
            "block_size": g.block_size,
            "block_count": g.block_count,
            "program_size": g.program_size,
            "erase_value": g.erase_value,
            "capacity": g.capacity(),
        })),
        "first_index": r.first_index,
        "last_index": r.last_index,
        "next_index": r.next_index,
        "chain": r.chain,
        "free_blocks": r.free_blocks,
        "meta": r.meta.iter().map(|(k, v)| json!({"key": k, "len": v.len(), "hex": hex(v, usize::MAX)})).collect::<Vec<_>>(),
        "blocks": blocks,
        "problems": r.problems.iter().map(|f| finding_json(r, f)).collect::<Vec<_>>(),
        "notes": r.notes.iter().map(|f| finding_json(r, f)).collect::<Vec<_>>(),
        "not_live": r.not_live.iter().map(|f| finding_json(r, f)).collect::<Vec<_>>(),
        "open_error": r.open_error,
        "opened": r.recovery.is_some(),
        "ok": r.is_sound(),
    })
}

/// The `inspect` text: geometry, blocks, indices, meta keys, free space.
fn inspect_text(r: &Report, all_blocks: bool) -> String {
    let mut s = String::new();
    if let Some(g) = r.geometry {
        let _ = writeln!(
            s,
            "geometry: {} blocks of {} B ({} KiB), program size {}, erase value {}",
            g.block_count,
            g.block_size,
            g.capacity() >> 10,
            g.program_size,
            g.erase_value.map_or("none".into(), |v| format!("{v:#04x}"))
        );
    }
    let block_size = r.geometry.map_or(0, |g| u64::from(g.block_size));
    let opened = r.recovery.is_some();
    if opened {
        let _ = writeln!(
            s,
            "log: first index {}, last index {}, next index {}",
            opt(r.first_index, "-"),
            opt(r.last_index, "-"),
            opt(r.next_index, "any")
        );
        let _ = writeln!(
            s,
            "chain: {} blocks; free: {} blocks ({} KiB)",
            r.chain.len(),
            r.free_blocks,
            u64::from(r.free_blocks) * block_size / 1024
        );
    } else {
        // No chain, no free list: which blocks are live is unknown.
        let _ = writeln!(
            s,
            "log: a strict open fails: {}; indices, meta keys and live blocks unknown",
            r.open_error.unwrap_or("corrupt")
        );
    }
    if opened {
        let keys: Vec<String> = r
            .meta
            .iter()
            .map(|(k, v)| format!("{k} ({} B)", v.len()))
            .collect();
        let keys = if keys.is_empty() {
            "-".into()
        } else {
            keys.join(", ")
        };
        let _ = writeln!(s, "meta keys: {keys}");
    }
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
        let entries = match b.kind {
            BlockKind::Log if b.entries.1 > b.entries.0 => {
                format!("{}..={}", b.entries.0, b.entries.1 - 1)
            }
            BlockKind::Log => "none".into(),
            _ => String::new(),
        };
        let state = if !opened && b.kind != BlockKind::Free {
            "?"
        } else if b.live {
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
        let summary = match summary(b) {
            "bad" => "BAD",
            s => s,
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

/// `verify`: exit code 1 on corruption, or when the file holds no log.
pub fn verify(a: VerifyArgs) -> Res {
    let path = a.target.path();
    let mut out = Out::new();
    let c = check(&a.target)?;
    let r = match &c {
        Checked::Log(r) => r,
        _ if a.json => {
            out.json(&no_log_json(&path, &c))?;
            return Ok(matches!(c, Checked::Blank));
        }
        Checked::Blank => {
            outln!(
                out,
                "ok: {} is an empty log (no block written yet)",
                path.display()
            );
            return Ok(true);
        }
        Checked::NotALog { offset } => return Err(Fail::Corrupt(not_a_log(&path, *offset))),
    };
    let used = r
        .blocks
        .iter()
        .filter(|b| b.kind != BlockKind::Free)
        .count();
    let records: u64 = r.blocks.iter().map(|b| u64::from(b.records)).sum();
    if a.json {
        out.json(&json!({
            "path": path.display().to_string(),
            "log_found": true,
            "ok": r.is_sound(),
            "blocks": r.blocks.len(),
            "blocks_in_use": used,
            "records": records,
            "first_index": r.first_index,
            "last_index": r.last_index,
            "meta_keys": r.meta.len(),
            "problems": r.problems.iter().map(|f| finding_json(r, f)).collect::<Vec<_>>(),
            "notes": r.notes.iter().map(|f| finding_json(r, f)).collect::<Vec<_>>(),
            "not_live": r.not_live.iter().map(|f| finding_json(r, f)).collect::<Vec<_>>(),
            "open_error": r.open_error,
            "recovery": r.recovery.as_ref().map(recovery_json),
        }))?;
        return Ok(r.is_sound());
    }
    outln!(
        out,
        "checked {} blocks ({used} in use), {records} records",
        r.blocks.len()
    );
    match &r.recovery {
        Some(rec) => {
            outln!(
                out,
                "strict open: ok ({} blocks read record by record, {} device reads)",
                rec.blocks_scanned,
                rec.device_reads
            );
            if rec.torn_bytes > 0 || rec.dropped_header {
                let at: Vec<String> = rec
                    .torn_at
                    .iter()
                    .map(|(b, o)| format!("block {b} offset {o:#x}"))
                    .collect();
                outln!(
                    out,
                    "torn: {} bytes of an unsynced write dropped{}{} (a crash's leftovers, not an error)",
                    rec.torn_bytes,
                    if at.is_empty() { String::new() } else { format!(" at {}", at.join(", ")) },
                    if rec.dropped_header { "; an unsynced newest block header dropped" } else { "" }
                );
            }
        }
        None => outln!(
            out,
            "strict open: fails: {}; `blockwal salvage` cuts the log back to its intact prefix",
            r.open_error.unwrap_or("see below")
        ),
    }
    for n in &r.notes {
        outln!(
            out,
            "note: block {} at offset {:#x}: {}",
            n.block,
            n.offset,
            n.what
        );
    }
    for n in &r.not_live {
        outln!(
            out,
            "not live: block {} at offset {:#x}: {} (a block the log no longer uses: not corruption)",
            n.block,
            n.offset,
            n.what
        );
    }
    if let Some(p) = r.first_problem() {
        let in_block = r
            .geometry
            .map_or(0, |g| p.offset.saturating_sub(g.block_offset(p.block)));
        outln!(
            out,
            "CORRUPT: first problem at offset {:#x} (block {}, offset {in_block:#x} in the block): {}",
            p.offset,
            p.block,
            p.what
        );
        // The strict open's failure, when verify found the same spot, was
        // said on the `strict open` line.
        let first = p.offset;
        for p in r.problems.iter().skip(1).filter(|q| q.offset != first) {
            outln!(
                out,
                "  also at {:#x} (block {}): {}",
                p.offset,
                p.block,
                p.what
            );
        }
        return Ok(false);
    }
    match (r.first_index, r.last_index) {
        (Some(f), Some(l)) => outln!(out, "ok: entries {f}..={l}, {} meta keys", r.meta.len()),
        _ => outln!(out, "ok: no entries, {} meta keys", r.meta.len()),
    }
    Ok(true)
}

/// `dump`: the metadata, then entries in a range.
pub fn dump(a: DumpArgs) -> Res {
    let path = a.target.path();
    let mut out = Out::new();
    let dev = match a.target.open()? {
        Opened::Log(dev) => dev,
        Opened::Blank => {
            if !a.json {
                outln!(out, "no entries (an empty log)");
            }
            return Ok(true);
        }
        Opened::NotALog { offset } => return Err(Fail::Corrupt(not_a_log(&path, offset))),
    };
    let wal = Wal::open(dev).map_err(|e| wal_error("opening", &path, e))?;
    if wal.first_index().is_none() && wal.meta_keys().next().is_none() {
        if let Opened::NotALog { offset } = a.target.blank_or_not()? {
            return Err(Fail::Corrupt(not_a_log(&path, offset)));
        }
    }
    for k in wal.meta_keys() {
        let v = wal.get_meta(k).unwrap_or_default();
        if a.json {
            out.json(&json!({
                "type": "meta", "key": k, "len": v.len(), "hex": hex(v, usize::MAX),
                "text": std::str::from_utf8(v).ok(),
            }))?;
        } else {
            outln!(
                out,
                "meta {k} = {} ({} B, hex {})",
                preview(v, 64),
                v.len(),
                hex(v, 32)
            );
        }
    }
    let (Some(first), Some(last)) = (wal.first_index(), wal.last_index()) else {
        if !a.json {
            outln!(out, "no entries");
        }
        return Ok(true);
    };
    let lo = a.from.unwrap_or(first).max(first);
    let hi = match (a.all, a.to) {
        (true, _) => last,
        (false, Some(to)) => to.min(last),
        (false, None) => lo.saturating_add(19).min(last),
    };
    if lo > hi {
        if !a.json {
            outln!(
                out,
                "no entries in that range (the log holds {first}..={last})"
            );
        }
        return Ok(true);
    }
    if !a.json {
        outln!(out, "entries {lo}..={hi} of {first}..={last}");
    }
    let width = a.width as usize;
    for e in wal.iter_range(lo..=hi) {
        if a.json {
            out.json(&json!({
                "type": "entry", "index": e.index, "len": e.data.len(),
                "hex": hex(&e.data, usize::MAX),
                "text": std::str::from_utf8(&e.data).ok(),
            }))?;
        } else {
            outln!(
                out,
                "{:>10} {:>7} B  {:<w$}  {}",
                e.index,
                e.data.len(),
                hex(&e.data, width / 2),
                preview(&e.data, width),
                w = width + 2
            );
        }
    }
    if let Some(e) = wal.take_read_error() {
        return Err(wal_error("reading entries of", &path, e));
    }
    Ok(true)
}
