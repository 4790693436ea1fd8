//! Real process kills (tier 4): a child process appends and syncs through
//! `RaftWal` on a file in a temp dir, reporting each synced index (and each
//! compaction and metadata write that returned) on stdout; the parent
//! SIGKILLs it at random moments, reopens the log, checks every reported
//! entry is there with the right bytes, the log is contiguous, nothing
//! compacted came back and the metadata is old or new, then starts the next
//! child on the same log. A kill can land anywhere: in the child's open
//! (recovery), mid-append, mid-sync, mid-compaction.

#![cfg(unix)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use blockwal::{RaftWal, RaftWalOptions};

const CHILD_DIR: &str = "BLOCKWAL_KILL_CHILD_DIR";
const CHILD_SEED: &str = "BLOCKWAL_KILL_CHILD_SEED";

fn opts() -> RaftWalOptions {
    RaftWalOptions::default()
        .block_size(16 << 10)
        .cache_bytes(64 << 10)
}

/// The bytes of entry `i` (a function of `i` alone, so the parent can check).
fn entry(i: u64) -> Vec<u8> {
    let len = (i.wrapping_mul(7919) % 700) as usize + (i % 3 == 0) as usize * 5000;
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The child: runs only when the parent sets `CHILD_DIR`; writes until killed.
#[test]
fn kill_child_writer() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let mut x: u64 = std::env::var(CHILD_SEED)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        | 1;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut w = RaftWal::open_with(&dir, opts()).expect("child open");
    let mut out = std::io::stdout().lock();
    let mut i = w.next_index().unwrap_or(1);
    loop {
        let n = 1 + rnd() % 24;
        for _ in 0..n {
            w.append(i, &entry(i)).expect("child append");
            i += 1;
        }
        w.sync().expect("child sync");
        writeln!(out, "synced {}", i - 1).unwrap();
        out.flush().unwrap();
        match rnd() % 16 {
            0 if i > 400 => {
                // One compaction in four takes the whole log (empty log).
                let up_to = i - 1 - (rnd() % 4 != 0) as u64 * (rnd() % 300);
                w.compact(up_to).expect("child compact");
                writeln!(out, "compacted {up_to}").unwrap();
            }
            1 => {
                w.set_meta("last", &(i - 1).to_le_bytes())
                    .expect("child meta");
                writeln!(out, "meta {}", i - 1).unwrap();
            }
            _ => {}
        }
        out.flush().unwrap();
    }
}

#[derive(Default)]
struct Reported {
    synced: u64,
    compacted: Option<u64>,
    meta: Option<u64>,
}

/// Checks the log against everything children reported so far.
fn check(dir: &Path, r: &Reported, round: u32) -> u64 {
    let w = RaftWal::open_with(dir, opts())
        .unwrap_or_else(|e| panic!("round {round}: reopen after SIGKILL: {e}"));
    // A compaction may have taken every entry (`compact(last)`): the log is
    // then empty, yet it still knows where it ends.
    let last = w.next_index().map_or(0, |n| n - 1);
    assert!(
        last >= r.synced,
        "round {round}: synced entry {} lost (log ends at {last}, first {:?}, compacted {:?})",
        r.synced,
        w.first_index(),
        r.compacted
    );
    if let Some(c) = r.compacted {
        assert!(
            w.first_index().is_none_or(|f| f > c),
            "round {round}: compacted entry {c} came back"
        );
    }
    if let (Some(f), Some(l)) = (w.first_index(), w.last_index()) {
        let mut n = 0;
        for e in w.iter() {
            assert_eq!(e.index, f + n, "round {round}: log not contiguous");
            assert!(
                e.data[..] == entry(e.index)[..],
                "round {round}: entry {} has wrong bytes",
                e.index
            );
            n += 1;
        }
        assert!(w.take_read_error().is_none(), "round {round}: read error");
        assert_eq!(f + n, l + 1, "round {round}: iteration stopped early");
    }
    if let Some(m) = r.meta {
        let v = w
            .get_meta("last")
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()));
        assert!(
            v.is_some_and(|v| v >= m),
            "round {round}: meta {v:?}, at least {m} reported"
        );
    }
    last
}

#[test]
fn sigkill_mid_stream() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let t0 = Instant::now();
    let mut rep = Reported::default();
    let mut x = 0x2545_f491_4f6c_dd1du64 ^ t0.elapsed().as_nanos() as u64;
    let mut kills = 0u32;
    let mut mid_write = 0u32;
    while kills < 120 || (t0.elapsed() < Duration::from_secs(20) && kills < 400) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "kill_child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_SEED, x.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut r = BufReader::new(out);
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                if line.ends_with('\n') {
                    lines.push(line.trim_end().to_string());
                }
                line.clear();
            }
            lines
        });
        // From "during the child's start" to "well into its writing".
        let wait = match x % 4 {
            0 => x % 8_000,
            _ => 5_000 + (x >> 8) % 60_000,
        };
        std::thread::sleep(Duration::from_micros(wait));
        child.kill().unwrap();
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        let before = rep.synced;
        for l in &lines {
            let (what, n) = l.split_once(' ').unwrap_or((l, ""));
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "synced" => rep.synced = rep.synced.max(n),
                "compacted" => rep.compacted = Some(rep.compacted.map_or(n, |c| c.max(n))),
                "meta" => rep.meta = Some(rep.meta.map_or(n, |c| c.max(n))),
                _ => {}
            }
        }
        if rep.synced > before {
            mid_write += 1;
        }
        check(dir.path(), &rep, kills);
        kills += 1;
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "SIGKILLs: {kills} ({mid_write} after the child had synced), {} entries synced, in {:.1}s",
        rep.synced,
        t0.elapsed().as_secs_f64()
    );
    assert!(
        mid_write > kills / 10,
        "children rarely got to write: {mid_write}/{kills}"
    );
}
