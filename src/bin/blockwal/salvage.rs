//! `salvage`: cut a corrupted log back to its longest intact prefix, for
//! good. The only command that writes to an existing log, so it goes step
//! by step, holding the log's lock throughout:
//!
//! 1. open the file through the file device (its lock: a log another
//!    process holds is refused, untouched);
//! 2. verify it, which opens it strictly: a sound log is left as it is;
//! 3. open it in salvage mode over a copy-on-write [`Preview`], which tells
//!    exactly what the salvage would cut (the library's own report) without
//!    writing a byte;
//! 4. ask (a terminal), or take `--yes`; otherwise refuse;
//! 5. open it in salvage mode for real: the library makes the cut durable
//!    before the open returns.

use std::io::{self, BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;

use blockwal::verify::{self, Report};
use blockwal::{RecoveryMode, RecoveryReport, Wal, WalOptions};
use clap::Args;
use serde_json::{json, Value};

use crate::out::{outln, wal_error, Fail, Out, Res};
use crate::preview::Preview;
use crate::target::{not_a_log, Target, Writable};

/// `salvage`'s options.
#[derive(Args, Debug)]
pub struct SalvageArgs {
    #[command(flatten)]
    target: Target,
    /// Cut without asking (needed when standard input is not a terminal).
    #[arg(long)]
    yes: bool,
    /// One JSON object instead of text (a question, if asked, goes to
    /// standard error).
    #[arg(long)]
    json: bool,
}

/// A recovery report as JSON (also `verify --json`'s `recovery`).
pub fn recovery_json(r: &RecoveryReport) -> Value {
    json!({
        "mode": match r.mode {
            RecoveryMode::Strict => "strict",
            RecoveryMode::Salvage => "salvage",
        },
        "blocks_scanned": r.blocks_scanned,
        "device_reads": r.device_reads,
        "torn_bytes": r.torn_bytes,
        "torn_at": r.torn_at.iter().map(|(b, o)| json!({"block": b, "offset": o})).collect::<Vec<_>>(),
        "dropped_header": r.dropped_header,
        "cuts": r.cuts.iter().map(|c| json!({"block": c.block, "offset": c.offset, "what": c.what})).collect::<Vec<_>>(),
        "dropped_entries": r.dropped_entries.iter().map(|&(f, t)| json!({"first": f, "last": t.saturating_sub(1)})).collect::<Vec<_>>(),
        "dropped_meta_keys": r.dropped_meta_keys,
    })
}

/// What a salvage cuts, in words, one item a line.
fn cut_lines(r: &RecoveryReport) -> Vec<String> {
    let mut v: Vec<String> = r
        .cuts
        .iter()
        .map(|c| {
            format!(
                "corruption at block {}, offset {:#x} in the block: {}",
                c.block, c.offset, c.what
            )
        })
        .collect();
    for &(f, t) in &r.dropped_entries {
        let n = t.saturating_sub(f);
        if n > 0 {
            v.push(format!("entries {f}..={} ({n} entries)", t - 1));
        }
    }
    if r.dropped_meta_keys.is_empty() {
        v.push("no metadata key".into());
    } else {
        v.push(format!(
            "the newest value of metadata keys: {}",
            r.dropped_meta_keys.join(", ")
        ));
    }
    v
}

/// The log a salvage leaves: entries and meta keys.
struct Kept {
    first: Option<u64>,
    last: Option<u64>,
    keys: Vec<String>,
}

impl Kept {
    fn of<D: blockwal::BlockDevice>(w: &Wal<D>) -> Self {
        Kept {
            first: w.first_index(),
            last: w.last_index(),
            keys: w.meta_keys().map(String::from).collect(),
        }
    }

    fn text(&self) -> String {
        let entries = match (self.first, self.last) {
            (Some(f), Some(l)) => format!("entries {f}..={l}"),
            _ => "no entries".into(),
        };
        let keys = if self.keys.is_empty() {
            "-".into()
        } else {
            self.keys.join(", ")
        };
        format!("{entries}; meta keys: {keys}")
    }

    fn json(&self) -> Value {
        json!({"first_index": self.first, "last_index": self.last, "meta_keys": self.keys})
    }
}

/// Where the strict open stopped, as verify found it.
fn strict_error(r: &Report) -> Option<(u32, u64, u64, &'static str)> {
    let what = r.open_error?;
    let f = r.problems.iter().find(|f| f.what == what)?;
    let in_block = r
        .geometry
        .map_or(0, |g| f.offset.saturating_sub(g.block_offset(f.block)));
    Some((f.block, f.offset, in_block, what))
}

/// `salvage`: exit 0 when the log is sound or was salvaged; 1 when
/// corruption is left in place (declined, or beyond what salvage cuts); 2
/// when refused (no terminal and no `--yes`, locked) or on an I/O error.
pub fn run(a: SalvageArgs) -> Res {
    let path = a.target.path();
    let mut out = Out::new();
    let mut dev = match a.target.open_writable()? {
        Writable::Log(dev) => dev,
        Writable::Blank => {
            if a.json {
                out.json(
                    &json!({"path": path.display().to_string(), "log_found": false,
                                 "blank": true, "sound": true, "changed": false}),
                )?;
            } else {
                outln!(out, "{}: an empty log: nothing to salvage", path.display());
            }
            return Ok(true);
        }
        Writable::NotALog { offset } => return Err(Fail::Corrupt(not_a_log(&path, offset))),
    };

    // A strict open (inside verify) first: a sound log is left alone.
    let report = verify::verify(&mut dev).map_err(|e| wal_error("verifying", &path, e))?;
    if report.recovery.is_some() {
        return sound(&mut out, &path, &report, a.json);
    }
    let strict = strict_error(&report);

    // What salvage would do, learned without writing.
    let (plan, kept) = {
        let w = Wal::open_mode(
            Preview::new(&mut dev),
            WalOptions::default(),
            RecoveryMode::Salvage,
        )
        .map_err(|e| wal_error("salvaging", &path, e))?;
        (w.recovery_report().clone(), Kept::of(&w))
    };
    let mut doc = json!({
        "path": path.display().to_string(),
        "log_found": true,
        "sound": false,
        "strict_error": strict.map(|(block, offset, in_block, what)| json!({
            "block": block, "offset": offset, "offset_in_block": in_block, "what": what,
        })),
        "problems": report.problems.len(),
        "cut": recovery_json(&plan),
        "kept": kept.json(),
        "changed": false,
    });
    if !a.json {
        if let Some((block, offset, in_block, what)) = strict {
            outln!(
                out,
                "{}: a strict open fails: block {block}, offset {in_block:#x} in the block \
                 (offset {offset:#x} in the file): {what}",
                path.display()
            );
        }
        outln!(out, "salvage cuts off, for good:");
        for l in cut_lines(&plan) {
            outln!(out, "  {l}");
        }
        outln!(out, "and keeps: {}", kept.text());
    }

    if !a.yes {
        if !io::stdin().is_terminal() {
            doc["refused"] = json!("standard input is not a terminal and --yes was not given");
            if a.json {
                out.json(&doc)?;
            }
            return Err(Fail::Error(format!(
                "{}: not salvaged: standard input is not a terminal, so there is no one to \
                 ask; run again with --yes to cut. Nothing was changed.",
                path.display()
            )));
        }
        if !ask("Cut this off the log for good? [y/N] ")? {
            doc["refused"] = json!("declined");
            if a.json {
                out.json(&doc)?;
            } else {
                outln!(out, "not salvaged: nothing was changed");
            }
            return Ok(false);
        }
    }

    // The salvage itself: the library makes the cut durable before the
    // open returns.
    let w = Wal::open_mode(&mut dev, WalOptions::default(), RecoveryMode::Salvage)
        .map_err(|e| wal_error("salvaging", &path, e))?;
    let done = w.recovery_report().clone();
    let kept = Kept::of(&w);
    drop(w);
    if a.json {
        doc["changed"] = json!(done.salvaged());
        doc["cut"] = recovery_json(&done);
        doc["kept"] = kept.json();
        out.json(&doc)?;
    } else if done.salvaged() {
        outln!(
            out,
            "salvaged: the cut is durable; the log holds {}",
            kept.text()
        );
    } else {
        outln!(out, "nothing was cut; the log holds {}", kept.text());
    }
    Ok(true)
}

/// A log a strict open accepts: nothing to cut. Corruption verify finds
/// anyway (e.g. a damaged entry in a sealed block, found when it is read)
/// is beyond a salvage: exit 1 and say so.
fn sound(out: &mut Out, path: &Path, r: &Report, as_json: bool) -> Res {
    if as_json {
        out.json(&json!({
            "path": path.display().to_string(),
            "log_found": true,
            "sound": true,
            "problems": r.problems.len(),
            "first_index": r.first_index,
            "last_index": r.last_index,
            "changed": false,
        }))?;
        return Ok(r.is_sound());
    }
    let entries = match (r.first_index, r.last_index) {
        (Some(f), Some(l)) => format!("entries {f}..={l}"),
        _ => "no entries".into(),
    };
    outln!(
        out,
        "{}: a strict open succeeds ({entries}): nothing to salvage; nothing was changed",
        path.display()
    );
    if !r.is_sound() {
        outln!(
            out,
            "but verify finds {} problem(s) that opening does not meet (first: {}); \
             salvage cannot cut them: run `blockwal verify`",
            r.problems.len(),
            r.problems[0].what
        );
    }
    Ok(r.is_sound())
}

/// Asks on standard error, reads one line: true for y or yes.
fn ask(q: &str) -> Res<bool> {
    let mut err = io::stderr();
    let _ = err.write_all(q.as_bytes());
    let _ = err.flush();
    let mut line = String::new();
    io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Fail::Error(format!("reading the answer: {e}")))?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
