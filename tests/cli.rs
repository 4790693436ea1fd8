//! The `blockwal` tool, run as a user runs it: help and version, `--x=y`,
//! range-checked numbers, exit codes (0 ok, 1 corruption, 2 usage or I/O),
//! JSON output, quiet broken pipes, the progress bar only on a terminal,
//! `demo`'s refusal to touch what it did not make or what another process
//! holds, `inspect`/`dump`/`verify` on a flash image, and `salvage`: the
//! cut it reports and makes durable, and its refusals (no terminal and no
//! `--yes`, a locked log, a flash image), each leaving the log byte for byte.
#![cfg(feature = "cli")]

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use blockwal::{RaftWal, RaftWalOptions};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_blockwal");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_in(cwd: &Path, args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn run(args: &[&str]) -> Run {
    run_in(&std::env::temp_dir(), args)
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let bytes = if e.file_type().unwrap().is_dir() {
            b"<dir>".to_vec()
        } else {
            std::fs::read(e.path()).unwrap()
        };
        m.insert(name, bytes);
    }
    m
}

fn payload(i: u64) -> Vec<u8> {
    format!("payload {i:05} of the cli test").into_bytes()
}

/// A log of entries 1..=n with 4 KiB blocks and two meta keys.
fn make_log(dir: &Path, n: u64) {
    let o = RaftWalOptions::default().block_size(4096);
    let mut wal = RaftWal::open_with(dir, o).unwrap();
    wal.set_meta("term", b"3").unwrap();
    wal.set_meta("vote", b"node-1").unwrap();
    for i in 1..=n {
        wal.append(i, &payload(i)).unwrap();
        if i % 50 == 0 {
            wal.sync().unwrap();
        }
    }
    wal.sync().unwrap();
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Tests in this binary run one at a time: a child another test thread
/// spawns shares this process's open log files (and their `flock`) until it
/// execs, so a log one test just closed could still look locked to the
/// next open or to the tool.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn help_for_every_command_and_version() {
    let _serial = serial();
    for cmd in ["demo", "inspect", "dump", "verify", "salvage"] {
        let r = run(&[cmd, "--help"]);
        assert_eq!(r.code, 0, "{cmd} --help: {}", r.stderr);
        assert!(
            r.stdout.contains(&format!("Usage: blockwal {cmd}")),
            "{}",
            r.stdout
        );
        let r = run(&["help", cmd]);
        assert_eq!(r.code, 0, "help {cmd}: {}", r.stderr);
        assert!(r.stdout.contains(&format!("Usage: blockwal {cmd}")));
    }
    let r = run(&["--help"]);
    assert_eq!(r.code, 0);
    for cmd in ["demo", "inspect", "dump", "verify", "salvage"] {
        assert!(r.stdout.contains(cmd), "{}", r.stdout);
    }
    assert!(r.stdout.contains("Exit codes"), "{}", r.stdout);
    let r = run(&["--version"]);
    assert_eq!(r.code, 0);
    assert_eq!(
        r.stdout.trim(),
        format!("blockwal {}", env!("CARGO_PKG_VERSION"))
    );
    // No command at all: the help, as a usage error.
    let r = run(&[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("Usage: blockwal"), "{}", r.stderr);
}

#[test]
fn unknown_commands_and_options_are_named() {
    let _serial = serial();
    let r = run(&["frobnicate"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("'frobnicate'"), "{}", r.stderr);
    let r = run(&["verify", "--dir", "x", "--bogus"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--bogus"), "{}", r.stderr);
    // --dir and --image together, or neither: usage errors.
    assert_eq!(run(&["verify", "--dir", "a", "--image", "b"]).code, 2);
    assert_eq!(run(&["verify"]).code, 2);
}

#[test]
fn numbers_are_range_checked_not_wrapped() {
    let _serial = serial();
    let cwd = tempfile::tempdir().unwrap();
    let img = cwd.path().join("img.bin");
    std::fs::write(&img, [0u8; 8192]).unwrap();
    let p = img.to_str().unwrap();
    for (flag, value) in [
        ("--block-size", "4294967296"),
        ("--block-size", "4294967424"),
        ("--block-size", "0x100000000"),
        ("--block-size", "1e3"),
        ("--program-size", "4294967300"),
        ("--erase-value", "256"),
    ] {
        let r = run_in(cwd.path(), &["verify", "--image", p, flag, value]);
        assert_eq!(r.code, 2, "{flag} {value}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(flag), "{}", r.stderr);
        assert!(r.stdout.is_empty(), "{}", r.stdout);
    }
    for (cmd, flag, value) in [
        ("demo", "--entries", "0"),
        ("demo", "--entries", "18446744073709551616"),
        ("demo", "--batch", "0"),
        ("demo", "--size", "4294967297"),
        ("dump", "--width", "0"),
        ("dump", "--from", "x"),
    ] {
        let mut args = vec![cmd, flag, value];
        if cmd == "dump" {
            args.extend(["--image", p]);
        }
        let r = run_in(cwd.path(), &args);
        assert_eq!(r.code, 2, "{cmd} {flag} {value}: {}", r.stderr);
        assert!(r.stderr.contains(flag), "{}", r.stderr);
    }
    // The demo with a bad number made nothing.
    assert_eq!(snapshot(cwd.path()).len(), 1);
}

#[test]
fn equals_form_and_json_output() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    make_log(&dir, 300);
    let d = format!("--dir={}", dir.display());

    let r = run(&["verify", &d]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("ok: entries 1..=300, 2 meta keys"),
        "{}",
        r.stdout
    );
    // An explicit block size in the `=` form, and in hex.
    let r = run(&["verify", &d, "--block-size=0x1000"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);

    let r = run(&["verify", &d, "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["log_found"], true);
    assert_eq!(v["first_index"], 1);
    assert_eq!(v["last_index"], 300);
    assert_eq!(v["meta_keys"], 2);
    assert_eq!(v["problems"].as_array().unwrap().len(), 0);

    let r = run(&["inspect", &d, "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 1);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["geometry"]["block_size"], 4096);
    assert_eq!(v["last_index"], 300);
    assert_eq!(v["next_index"], 301);
    assert_eq!(v["meta"][0]["key"], "term");
    assert_eq!(v["meta"][1]["hex"], "6e6f64652d31");
    let blocks = v["blocks"].as_array().unwrap();
    let chain = v["chain"].as_array().unwrap();
    assert!(chain.len() >= 3, "300 entries span several 4 KiB blocks");
    let head = blocks.iter().find(|b| b["head"] == true).unwrap();
    assert_eq!(head["kind"], "log");
    assert_eq!(head["entries"]["last"], 300);
    assert_eq!(Some(&head["block"]), chain.last());

    // One object per line: the meta keys, then every entry, whole.
    let r = run(&["dump", &d, "--json", "--all", "--from=7"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2 + 294);
    assert_eq!(lines[0]["type"], "meta");
    assert_eq!(lines[1]["text"], "node-1");
    for (k, e) in lines[2..].iter().enumerate() {
        let i = 7 + k as u64;
        assert_eq!(e["type"], "entry");
        assert_eq!(e["index"], i);
        assert_eq!(unhex(e["hex"].as_str().unwrap()), payload(i));
        assert_eq!(e["len"], payload(i).len());
    }
    // Text dump of a range.
    let r = run(&["dump", &d, "--from", "10", "--to", "12"]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("entries 10..=12 of 1..=300"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("payload 00011"), "{}", r.stdout);
}

#[test]
fn corruption_is_exit_1_and_garbage_is_not_a_log() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    make_log(&dir, 300);
    let file = dir.join("blockwal.log");
    let mut bytes = std::fs::read(&file).unwrap();
    // A byte of entry 5's payload, in the oldest (sealed) block.
    let at = bytes
        .windows(13)
        .position(|w| w == b"payload 00005")
        .unwrap();
    bytes[at + 10] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();
    let d = format!("--dir={}", dir.display());
    let r = run(&["verify", &d]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("CORRUPT: first problem at offset"),
        "{}",
        r.stdout
    );
    let r = run(&["verify", &d, "--json"]);
    assert_eq!(r.code, 1);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["ok"], false);
    let p = &v["problems"][0];
    // In the block of the flipped byte, at or before it.
    assert_eq!(p["block"], at as u64 / 4096, "{v}");
    assert!(p["offset"].as_u64().unwrap() <= at as u64, "{v}");
    // `inspect` that finds problems says so and exits 1.
    let r = run(&["inspect", &d]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("problems found"), "{}", r.stdout);
    let r = run(&["inspect", &d, "--json"]);
    assert_eq!(r.code, 1);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ok"], false);

    // Garbage is not a log: never "ok: entries -..=-".
    let garbage = tmp.path().join("garbage.bin");
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let noise: Vec<u8> = (0..64 << 10)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&garbage, &noise).unwrap();
    let g = garbage.to_str().unwrap();
    for extra in [&[][..], &["--block-size", "4096"][..]] {
        for cmd in ["verify", "inspect", "dump"] {
            let r = run(&[&[cmd, "--image", g][..], extra].concat());
            assert_eq!(r.code, 1, "{cmd} {extra:?}: {}{}", r.stdout, r.stderr);
            assert!(r.stderr.contains("not a blockwal log"), "{}", r.stderr);
            assert!(!r.stdout.contains("ok"), "{}", r.stdout);
        }
    }
    let r = run(&["verify", "--image", g, "--json"]);
    assert_eq!(r.code, 1);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["log_found"], false);
    assert_eq!(v["ok"], false);

    // A never-written (blank) image is an empty log: ok.
    let blank = tmp.path().join("blank.bin");
    std::fs::write(&blank, vec![0xffu8; 64 << 10]).unwrap();
    let b = blank.to_str().unwrap();
    let r = run(&["verify", "--image", b, "--erase-value", "0xff"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("empty log"), "{}", r.stdout);
    // ... but 0xff is not blank for a file (erase value none): not a log.
    assert_eq!(run(&["verify", "--image", b]).code, 1);
}

#[test]
fn io_errors_are_exit_2_and_said_with_display() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nowhere");
    let m = missing.to_str().unwrap();
    for cmd in ["verify", "inspect", "dump"] {
        for flag in ["--dir", "--image"] {
            let r = run(&[cmd, flag, m]);
            assert_eq!(r.code, 2, "{cmd} {flag}: {}{}", r.stdout, r.stderr);
            assert!(r.stderr.contains("nowhere"), "{}", r.stderr);
            // The OS's words: "No such file or directory"; on Windows "The
            // system cannot find the path specified" (wine: "Path not found").
            let e = &r.stderr;
            let said = if cfg!(windows) {
                e.contains("cannot find") || e.contains("not found")
            } else {
                e.contains("No such file")
            };
            assert!(said, "{e}");
            assert!(!r.stderr.contains("Os {"), "Debug output: {}", r.stderr);
        }
    }
    // A directory given as an image.
    let r = run(&[
        "verify",
        "--image",
        tmp.path().to_str().unwrap(),
        "--block-size",
        "4096",
    ]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    // A geometry the log cannot have.
    let img = tmp.path().join("img.bin");
    std::fs::write(&img, [0u8; 4096]).unwrap();
    let r = run(&[
        "verify",
        "--image",
        img.to_str().unwrap(),
        "--block-size",
        "100",
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("block_size"), "{}", r.stderr);
}

/// Reads one line of `args`' output, closes the pipe, and checks the tool
/// ends quietly with exit code 0 (no panic on the broken pipe).
fn close_early(cwd: &Path, args: &[&str]) {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(!first.is_empty());
    // The reader is dropped: stdout is closed.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    assert!(stderr.is_empty(), "{args:?}: {stderr}");
}

#[test]
fn broken_pipes_end_quietly() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    make_log(&dir, 3000);
    // ~400 KiB of JSON: more than a pipe holds, so writes hit the closed pipe.
    let d = format!("--dir={}", dir.display());
    close_early(tmp.path(), &["dump", &d, "--json", "--all"]);
    close_early(tmp.path(), &["dump", &d, "--all"]);
    close_early(tmp.path(), &["demo", "--entries", "3000"]);
}

#[test]
fn demo_refuses_a_foreign_directory_untouched() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let foreign = tmp.path().join("mine");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("thesis.txt"), b"four years of work").unwrap();
    let theirs = snapshot(&foreign);
    let r = run_in(tmp.path(), &["demo", "--dir", foreign.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("not empty"), "{}", r.stderr);
    assert!(r.stderr.contains("thesis.txt"), "{}", r.stderr);
    assert_eq!(snapshot(&foreign), theirs);
    // `--dir .` in a non-empty working directory: refused too.
    let r = run_in(&foreign, &["demo", "--dir", "."]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(snapshot(&foreign), theirs);
    // A real log (no demo marker) is not the demo's either.
    let log = tmp.path().join("log");
    make_log(&log, 10);
    let before = snapshot(&log);
    let r = run_in(tmp.path(), &["demo", "--dir", log.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(snapshot(&log), before);
    // A file, not a directory.
    let r = run_in(
        tmp.path(),
        &[
            "demo",
            "--dir",
            foreign.join("thesis.txt").to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 2);
    assert_eq!(snapshot(&foreign), theirs);
}

#[test]
fn demo_uses_a_fresh_directory_and_reruns_on_its_own() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    // Someone's `blockwal-demo` that is not the demo's: left alone, the
    // demo takes a new directory.
    let theirs = tmp.path().join("blockwal-demo");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::write(theirs.join("notes.txt"), b"mine").unwrap();
    let r = run_in(tmp.path(), &["demo", "--entries", "500", "--batch", "50"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("log in blockwal-demo-2"), "{}", r.stdout);
    assert!(r.stdout.contains("demo ok"), "{}", r.stdout);
    assert_eq!(snapshot(&theirs).len(), 1);
    let ours = tmp.path().join("blockwal-demo-2");
    assert!(ours.join("blockwal-demo.txt").exists());

    // Run again on its own directory: it continues the log.
    let d = ours.to_str().unwrap();
    let r = run_in(tmp.path(), &["demo", "--dir", d, "--entries", "500"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("appending after entry 450"),
        "{}",
        r.stdout
    );
    // First run kept 251..=450; the second appended 451..=950, kept 701..=900.
    let r = run(&["verify", "--dir", d]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("ok: entries 701..=900"), "{}", r.stdout);

    // An empty directory is fine too, and gets the marker.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let r = run_in(
        tmp.path(),
        &["demo", "--dir", empty.to_str().unwrap(), "--entries", "100"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(empty.join("blockwal-demo.txt").exists());
}

#[test]
fn demo_refuses_a_locked_log_and_changes_nothing() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let d = dir.to_str().unwrap();
    let r = run_in(tmp.path(), &["demo", "--dir", d, "--entries", "200"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Another holder of the log: this process. (The snapshot first: on
    // Windows the lock keeps other handles from reading the file.)
    let before = snapshot(&dir);
    let held = RaftWal::open(&dir).unwrap();
    let r = run_in(tmp.path(), &["demo", "--dir", d, "--entries", "200"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("lock"), "{}", r.stderr);
    assert!(r.stderr.contains("blockwal.log"), "{}", r.stderr);
    assert_eq!(held.last_index(), Some(180));
    drop(held);
    assert_eq!(snapshot(&dir), before);
    // Released: the demo runs again.
    let r = run_in(tmp.path(), &["demo", "--dir", d, "--entries", "200"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn progress_bar_only_on_a_terminal() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    // stderr is a pipe: nothing but errors there.
    let r = run_in(tmp.path(), &["demo", "--dir", "a", "--entries", "2000"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    assert!(!r.stdout.contains('%'), "{}", r.stdout);
    // On a terminal (util-linux `script` gives the tool a pty): the bar.
    #[cfg(unix)]
    {
        let cmd = format!("{BIN} demo --dir b --entries 2000");
        let out = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .current_dir(tmp.path())
            .stdin(Stdio::null())
            .output()
            .expect("`script` (util-linux) runs the tool on a terminal");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("appending ["), "{text}");
        assert!(text.contains("demo ok"), "{text}");
    }
}

/// `inspect`, `dump` and `verify` on a raw image of a log written through
/// the flash adapter on a RAM NOR flash (program unit 4, erase value 0xFF),
/// as a dump copied off a board would be.
#[cfg(feature = "flash")]
#[test]
fn inspect_dump_verify_a_flash_image() {
    let _serial = serial();
    use blockwal::devices::ram_flash::RamFlash;
    use blockwal::{FlashDevice, Wal};

    const SECTOR: usize = 4096;
    const SECTORS: usize = 16;
    let img = {
        let flash = RamFlash::<4, SECTOR>::new(SECTOR * SECTORS).unwrap();
        let dev = FlashDevice::new(flash, 0, (SECTOR * SECTORS) as u32).unwrap();
        let mut wal = Wal::open(dev).unwrap();
        wal.set_meta("term", b"3").unwrap();
        wal.set_meta("vote", b"node-2").unwrap();
        for i in 1..=200u64 {
            wal.append(i, format!("hello entry {i}").as_bytes())
                .unwrap();
            if i % 16 == 0 {
                wal.sync().unwrap();
            }
        }
        wal.sync().unwrap();
        wal.compact(10).unwrap();
        wal.into_device().into_inner().into_image()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flash.bin");
    std::fs::write(&path, &img).unwrap();
    let p = path.to_str().unwrap();
    let geo = [
        "--image",
        p,
        "--block-size",
        "4096",
        "--program-size",
        "4",
        "--erase-value",
        "0xff",
    ];

    let r = run(&[&["inspect"][..], &geo].concat());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = r.stdout;
    assert!(out.contains("16 blocks of 4096 B"), "{out}");
    assert!(out.contains("program size 4, erase value 0xff"), "{out}");
    assert!(out.contains("first index 11, last index 200"), "{out}");
    assert!(out.contains("meta keys: term (1 B), vote (6 B)"), "{out}");
    assert!(out.contains("live (head)"), "{out}");
    // The block size is found from the headers when not given.
    let r = run(&[
        "inspect",
        "--image",
        p,
        "--program-size",
        "4",
        "--erase-value",
        "0xff",
    ]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("first index 11, last index 200"),
        "{}",
        r.stdout
    );

    let r = run(&[&["dump"][..], &geo, &["--from", "50", "--to", "52"]].concat());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = r.stdout;
    assert!(out.contains("meta vote = node-2"), "{out}");
    assert!(out.contains("entries 50..=52 of 11..=200"), "{out}");
    assert!(out.contains("hello entry 51"), "{out}");
    let hex: String = b"hello entry 52"
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(out.contains(&hex[..16]), "{out}");

    let r = run(&[&["verify"][..], &geo].concat());
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("ok: entries 11..=200"), "{}", r.stdout);

    // A flipped byte in an entry of a sealed block: exit code 1 and the
    // offset named.
    let mut bad = img.clone();
    let at = SECTOR + 64 + 20;
    bad[at] ^= 0x01;
    std::fs::write(&path, &bad).unwrap();
    let r = run(&[&["verify"][..], &geo].concat());
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.contains("CORRUPT: first problem at offset"),
        "{}",
        r.stdout
    );
}

fn small() -> RaftWalOptions {
    RaftWalOptions::default()
        .block_size(4096)
        .max_bytes(None)
        .cache_bytes(1 << 20)
        .cache_entries(usize::MAX)
}

/// Opens the log with 4 KiB blocks. A lock refused just after this process
/// closed the log is retried: a child another test thread spawns at that
/// moment shares the open file (and its `flock`) until it execs.
fn open_small(dir: &Path) -> Result<RaftWal, blockwal::Error<std::io::Error>> {
    for _ in 0..100 {
        match RaftWal::open_with(dir, small()) {
            Err(blockwal::Error::Locked { .. }) => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            r => return r,
        }
    }
    RaftWal::open_with(dir, small())
}

/// `make_log`'s 1..=300, then 301..=320 each synced, then one byte of entry
/// 305's payload flipped: entry 306's record says everything before it was
/// durable, so this is corruption (a strict open refuses), not a torn write.
fn make_damaged(dir: &Path) {
    make_log(dir, 300);
    let mut wal = open_small(dir).unwrap();
    for i in 301..=320 {
        wal.append(i, &payload(i)).unwrap();
        wal.sync().unwrap();
    }
    drop(wal);
    flip(dir, b"payload 00305");
    assert!(
        matches!(open_small(dir), Err(blockwal::Error::Corrupt { .. })),
        "strict open refuses"
    );
}

/// Flips a bit in the payload that starts with `what`; the block it is in.
fn flip(dir: &Path, what: &[u8]) -> u64 {
    let file = dir.join("blockwal.log");
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.windows(what.len()).position(|w| w == what).unwrap();
    bytes[at + 10] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();
    at as u64 / 4096
}

#[test]
fn salvage_cuts_a_corrupted_log_and_a_strict_open_then_succeeds() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    make_damaged(&dir);
    let d = format!("--dir={}", dir.display());
    // verify: corruption, and the strict open's failure.
    let r = run(&["verify", &d]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("strict open: fails"), "{}", r.stdout);
    assert!(r.stdout.contains("CORRUPT"), "{}", r.stdout);
    let v: Value = serde_json::from_str(run(&["verify", &d, "--json"]).stdout.trim()).unwrap();
    assert_eq!(v["ok"], false);
    assert!(v["recovery"].is_null(), "{v}");
    assert!(v["open_error"].is_string(), "{v}");
    // inspect says the open fails rather than calling blocks free; dump
    // cannot open it.
    let r = run(&["inspect", &d]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("a strict open fails"), "{}", r.stdout);
    assert!(!r.stdout.contains("free"), "{}", r.stdout);
    let v: Value = serde_json::from_str(run(&["inspect", &d, "--json"]).stdout.trim()).unwrap();
    assert_eq!(v["opened"], false, "{v}");
    let r = run(&["dump", &d]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("corrupt log"), "{}", r.stderr);

    let r = run(&["salvage", &d, "--yes"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("a strict open fails: block"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("entries 305..=320 (16 entries)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("no metadata key"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("salvaged: the cut is durable; the log holds entries 1..=304"),
        "{}",
        r.stdout
    );

    // Now sound: verify exits 0, and so does a strict open, with every
    // entry before the cut and the metadata.
    let r = run(&["verify", &d]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("strict open: ok"), "{}", r.stdout);
    assert!(r.stdout.contains("ok: entries 1..=304"), "{}", r.stdout);
    let r = run(&["inspect", &d]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("first index 1, last index 304"),
        "{}",
        r.stdout
    );
    let r = run(&["dump", &d, "--from", "303", "--to", "310"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("entries 303..=304 of 1..=304"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("payload 00304"), "{}", r.stdout);
    let wal = open_small(&dir).expect("strict open after salvage");
    assert_eq!((wal.first_index(), wal.last_index()), (Some(1), Some(304)));
    for i in 1..=304 {
        assert_eq!(wal.try_get(i).unwrap().unwrap().as_ref(), &payload(i)[..]);
    }
    assert_eq!(wal.get_meta("term"), Some(&b"3"[..]));
    assert_eq!(wal.get_meta("vote"), Some(&b"node-1"[..]));
    drop(wal);

    // Salvage on the sound log: says so, changes nothing.
    let before = snapshot(&dir);
    let r = run(&["salvage", &d, "--yes"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("nothing to salvage"), "{}", r.stdout);
    let r = run(&["salvage", &d, "--json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(
        (v["sound"].clone(), v["changed"].clone()),
        (true.into(), false.into())
    );
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn salvage_json_reports_the_cut() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    make_damaged(&dir);
    let r = run(&["salvage", "--dir", dir.to_str().unwrap(), "--yes", "--json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["sound"], false);
    assert_eq!(v["changed"], true);
    let cut = &v["cut"];
    assert_eq!(cut["mode"], "salvage");
    assert_eq!(cut["dropped_entries"][0]["first"], 305, "{v}");
    assert_eq!(cut["dropped_entries"][0]["last"], 320, "{v}");
    assert_eq!(cut["dropped_meta_keys"].as_array().unwrap().len(), 0);
    let c = &cut["cuts"][0];
    assert_eq!(c["block"], v["strict_error"]["block"], "{v}");
    assert!(c["what"].is_string(), "{v}");
    assert_eq!(v["kept"]["last_index"], 304);
    assert_eq!(v["kept"]["meta_keys"].as_array().unwrap().len(), 2);
}

#[test]
fn salvage_without_a_terminal_or_yes_refuses_and_changes_nothing() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    make_damaged(&dir);
    let before = snapshot(&dir);
    let d = dir.to_str().unwrap();
    let r = run(&["salvage", "--dir", d]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("--yes"), "{}", r.stderr);
    assert!(r.stderr.contains("Nothing was changed"), "{}", r.stderr);
    // It still says what a salvage would cut.
    assert!(r.stdout.contains("entries 305..=320"), "{}", r.stdout);
    let r = run(&["salvage", "--dir", d, "--json"]);
    assert_eq!(r.code, 2);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["changed"], false);
    assert!(v["refused"].is_string(), "{v}");
    assert_eq!(v["cut"]["dropped_entries"][0]["first"], 305, "{v}");
    assert_eq!(snapshot(&dir), before);
    // What it said it would cut is what a salvage then cuts.
    let r = run(&["salvage", "--dir", d, "--json", "--yes"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let done: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    for k in ["cuts", "dropped_entries", "dropped_meta_keys"] {
        assert_eq!(done["cut"][k], v["cut"][k], "{k}: {done} vs {v}");
    }
    assert_eq!(done["kept"], v["kept"]);
}

/// A damaged metadata record with synced ones after it: salvage keeps the
/// values before it and names the keys whose newest value it drops.
#[test]
fn salvage_names_the_meta_keys_it_drops() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    make_log(&dir, 20);
    let mut wal = open_small(&dir).unwrap();
    for (k, v) in [
        ("vote", "node-2"),
        ("vote", "node-3"),
        ("vote", "node-4"),
        ("term", "5"),
    ] {
        wal.set_meta(k, v.as_bytes()).unwrap();
        wal.sync().unwrap();
    }
    drop(wal);
    flip_last(&dir, b"node-3");
    let d = format!("--dir={}", dir.display());
    assert_eq!(run(&["verify", &d]).code, 1);
    let before = snapshot(&dir);
    let r = run(&["salvage", &d, "--json"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert_eq!(snapshot(&dir), before);
    let r = run(&["salvage", &d, "--yes"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("the newest value of metadata keys: vote, term"),
        "{}",
        r.stdout
    );
    let wal = open_small(&dir).expect("strict open after salvage");
    assert_eq!(wal.get_meta("vote"), Some(&b"node-2"[..]));
    assert_eq!(wal.last_index(), Some(20));
}

/// The same with the damage in a metadata block's snapshot (its first
/// record): the older metadata block's values come back, so every key whose
/// value changed must be named (the report once named only the keys of the
/// records after the damage, so `vote`, reverted from node-2 to node-1, went
/// unnamed).
#[test]
fn salvage_names_keys_reverted_by_a_damaged_meta_snapshot() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    make_log(&dir, 20);
    let mut wal = open_small(&dir).unwrap();
    wal.set_meta("vote", b"node-2").unwrap();
    wal.sync().unwrap();
    wal.set_meta("term", b"4").unwrap();
    wal.sync().unwrap();
    drop(wal);
    flip_last(&dir, b"node-2");
    let r = run(&["salvage", "--dir", dir.to_str().unwrap(), "--yes", "--json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let wal = open_small(&dir).unwrap();
    let dropped = v["cut"]["dropped_meta_keys"].as_array().unwrap();
    if wal.get_meta("vote") != Some(&b"node-2"[..]) {
        assert!(dropped.contains(&Value::from("vote")), "{v}");
    }
    if wal.get_meta("term") != Some(&b"4"[..]) {
        assert!(dropped.contains(&Value::from("term")), "{v}");
    }
}

/// Flips a bit in the last occurrence of `what` in the log file.
fn flip_last(dir: &Path, what: &[u8]) {
    let file = dir.join("blockwal.log");
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.windows(what.len()).rposition(|w| w == what).unwrap();
    bytes[at + what.len() - 1] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();
}

/// On a terminal (util-linux `script` gives the tool a pty, fed from a
/// pipe): anything but y/yes declines; y cuts. Unix only: `script`.
#[cfg(unix)]
#[test]
fn salvage_asks_on_a_terminal() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    make_damaged(&dir);
    let before = snapshot(&dir);
    let ask = |answer: &str| {
        let cmd = format!("{BIN} salvage --dir {}", dir.display());
        let mut child = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("`script` (util-linux) runs the tool on a terminal");
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(answer.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        drop(stdin);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = ask("n\n");
    assert!(text.contains("[y/N]"), "{text}");
    assert!(text.contains("not salvaged"), "{text}");
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(snapshot(&dir), before);
    let (code, text) = ask("y\n");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("salvaged: the cut is durable"), "{text}");
    assert!(open_small(&dir).is_ok());
}

#[test]
fn salvage_refuses_a_locked_log_and_changes_nothing() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let d = dir.to_str().unwrap();
    // A sound log held open by this process.
    make_log(&dir, 100);
    // Snapshots before the lock: on Windows it keeps other handles out.
    let before = snapshot(&dir);
    let held = open_small(&dir).unwrap();
    let r = run(&["salvage", "--dir", d, "--yes"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("lock"), "{}", r.stderr);
    assert!(r.stderr.contains("Nothing was changed"), "{}", r.stderr);
    drop(held);
    assert_eq!(snapshot(&dir), before);
    // A corrupted log cannot be opened as a `RaftWal`; its file device
    // holds the same lock.
    let dir = tmp.path().join("bad");
    make_damaged(&dir);
    let before = snapshot(&dir);
    let held = blockwal::FileDevice::open(&dir, 4096, 0, u32::MAX).unwrap();
    let d = dir.to_str().unwrap();
    let r = run(&["salvage", "--dir", d, "--yes"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("lock"), "{}", r.stderr);
    let image = dir.join("blockwal.log");
    let r = run(&["salvage", "--image", image.to_str().unwrap(), "--yes"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    drop(held);
    assert_eq!(snapshot(&dir), before);
}

/// The read-only commands on a log another process holds: on Unix the lock
/// is advisory and they read it; on Windows it is mandatory, the reads fail,
/// and the tool says why and what to do (exit 2), never garbage. (Wine does
/// not refuse reads under a lock: there they read it, as on Unix; the
/// message itself is checked by the tool's unit test.)
#[test]
fn read_only_commands_on_a_log_another_process_holds() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    make_log(&dir, 100);
    let held = open_small(&dir).unwrap();
    let d = format!("--dir={}", dir.display());
    for cmd in ["verify", "inspect", "dump"] {
        let r = run(&[cmd, &d]);
        if cfg!(windows) && r.code != 0 {
            assert_eq!(r.code, 2, "{cmd}: {}{}", r.stdout, r.stderr);
            assert!(r.stderr.contains("holds the log's lock"), "{}", r.stderr);
            assert!(r.stderr.contains("blockwal.log"), "{}", r.stderr);
        } else {
            assert_eq!(r.code, 0, "{cmd}: {}{}", r.stdout, r.stderr);
            assert!(r.stdout.contains("100"), "{cmd}: {}", r.stdout);
        }
    }
    drop(held);
    assert_eq!(run(&["verify", &d]).code, 0);
}

#[test]
fn salvage_of_an_image_file_and_what_it_will_not_touch() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    make_damaged(&dir);
    // A copy of the log file, as an image: salvaged in place.
    let image = tmp.path().join("copy.img");
    std::fs::copy(dir.join("blockwal.log"), &image).unwrap();
    let i = image.to_str().unwrap();
    // A flash image (program size or erase value): not supported, untouched.
    let before = std::fs::read(&image).unwrap();
    for extra in [&["--erase-value", "0xff"][..], &["--program-size", "4"][..]] {
        let r = run(&[&["salvage", "--image", i, "--yes"][..], extra].concat());
        assert_eq!(r.code, 2, "{extra:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("not supported"), "{}", r.stderr);
    }
    assert_eq!(std::fs::read(&image).unwrap(), before);
    let r = run(&["salvage", "--image", i, "--yes"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("entries 305..=320"), "{}", r.stdout);
    let r = run(&["verify", "--image", i]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("ok: entries 1..=304"), "{}", r.stdout);
    // Nothing there: an error, and no log is created.
    let missing = tmp.path().join("nowhere");
    let r = run(&["salvage", "--dir", missing.to_str().unwrap(), "--yes"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(!missing.exists());
}

/// Damage in a block the log freed (compacted away) is not live: verify
/// lists it apart and exits 0; salvage has nothing to cut.
#[test]
fn damage_in_a_freed_block_is_not_live() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    make_log(&dir, 300);
    let mut wal = open_small(&dir).unwrap();
    wal.compact(250).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let block = flip(&dir, b"payload 00005");
    let d = format!("--dir={}", dir.display());
    let r = run(&["verify", &d]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains(&format!("not live: block {block} at offset")),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("ok: entries 251..=300"), "{}", r.stdout);
    let r = run(&["verify", &d, "--json"]);
    assert_eq!(r.code, 0);
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["problems"].as_array().unwrap().len(), 0);
    assert_eq!(v["not_live"][0]["block"], block, "{v}");
    assert_eq!(v["recovery"]["mode"], "strict", "{v}");
    let before = snapshot(&dir);
    let r = run(&["salvage", &d, "--yes"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("nothing to salvage"), "{}", r.stdout);
    assert_eq!(snapshot(&dir), before);
}

/// A crash's leftovers (bytes of an unsynced write) are dropped by the
/// strict open and reported as torn, not as corruption.
#[test]
fn torn_bytes_are_reported_not_an_error() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    make_log(&dir, 100);
    // Half a record after the last synced one: what a crash mid-write leaves.
    let file = dir.join("blockwal.log");
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes
        .windows(13)
        .position(|w| w == b"payload 00100")
        .unwrap()
        + 29;
    bytes[at..at + 20].copy_from_slice(&[0x5a; 20]);
    std::fs::write(&file, &bytes).unwrap();
    let d = format!("--dir={}", dir.display());
    let r = run(&["verify", &d]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("torn: "), "{}", r.stdout);
    assert!(r.stdout.contains("not an error"), "{}", r.stdout);
    let v: Value = serde_json::from_str(run(&["verify", &d, "--json"]).stdout.trim()).unwrap();
    assert!(v["recovery"]["torn_bytes"].as_u64().unwrap() > 0, "{v}");
}

/// README's "Corruption: verify and salvage" transcript is real: each `$`
/// line, run by the shell in a fresh directory with the tool on `PATH`,
/// prints exactly the lines below it (`[exit N]` for a failing status).
#[cfg(target_os = "linux")]
#[test]
fn readme_salvage_transcript_is_what_the_tool_prints() {
    let _serial = serial();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("## Corruption: verify and salvage")
        .nth(1)
        .expect("README has the section");
    let block = section
        .split("```text\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("a text block in the section");
    let tmp = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut got = String::new();
    for line in block.lines().filter_map(|l| l.strip_prefix("$ ")) {
        let out = Command::new("bash")
            .args(["-c", &format!("{line} 2>&1")])
            .env("PATH", &path)
            .current_dir(tmp.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        got.push_str(&format!(
            "$ {line}\n{}",
            String::from_utf8_lossy(&out.stdout)
        ));
        let code = out.status.code().unwrap();
        if code != 0 {
            got.push_str(&format!("[exit {code}]\n"));
        }
    }
    assert_eq!(got.trim_end(), block.trim_end());
}

/// Corruption a strict open does not meet (an entry of a sealed block,
/// found when it is read) is beyond a salvage: it says so, exits 1 and
/// changes nothing.
#[test]
fn salvage_leaves_corruption_the_open_does_not_meet() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    make_log(&dir, 300);
    flip(&dir, b"payload 00005");
    let before = snapshot(&dir);
    let d = format!("--dir={}", dir.display());
    let r = run(&["salvage", &d, "--yes"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("salvage cannot cut them"), "{}", r.stdout);
    assert_eq!(snapshot(&dir), before);
}
