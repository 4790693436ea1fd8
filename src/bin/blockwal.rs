//! The `blockwal` command-line tool: a demo, read-only views of a log
//! (`inspect`, `dump`, `verify`), and `salvage`, which cuts a corrupted log
//! back to its intact prefix. Standard library only (no platform
//! modules), so it builds wherever `std` and the file device do.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[path = "blockwal/demo.rs"]
mod demo;
#[path = "blockwal/out.rs"]
mod out;
#[path = "blockwal/preview.rs"]
mod preview;
#[path = "blockwal/progress.rs"]
mod progress;
#[path = "blockwal/salvage.rs"]
mod salvage;
#[path = "blockwal/target.rs"]
mod target;
#[path = "blockwal/tools.rs"]
mod tools;

use out::Fail;

/// A write-ahead log for Raft over any block device: try it, and look into
/// a log directory or a raw image (a flash dump, a log file).
#[derive(Parser, Debug)]
#[command(
    name = "blockwal",
    // Not argv[0]: on Windows that is `blockwal.exe`.
    bin_name = "blockwal",
    version,
    propagate_version = true,
    subcommand_required = true,
    arg_required_else_help = true,
    after_help = "Exit codes: 0 ok; 1 corruption found (or the file holds no blockwal log); \
                  2 usage or I/O error, or a refusal (salvage).\n\
                  The benchmarks are the repository's `bench/` crate: \
                  cargo run --release -p blockwal-bench -- --help"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Append entries in synced batches, read them back, truncate, compact,
    /// set term/vote, reopen and check, printing how fast each step was.
    ///
    /// The log goes into a new directory (`blockwal-demo`, or
    /// `blockwal-demo-N` if that exists) unless `--dir` names one: that must
    /// be new, empty, or a previous demo's (recognised by the
    /// `blockwal-demo.txt` the demo writes). The demo never deletes
    /// anything: on a previous demo's log it continues after the last entry.
    Demo(demo::DemoArgs),
    /// Geometry, blocks (seq, kind, entries, summary), indices, meta keys,
    /// free space. Exit code 1 if problems are found.
    Inspect(tools::InspectArgs),
    /// Entries in a range (hex and text preview) and the metadata.
    Dump(tools::DumpArgs),
    /// Check every block header, record, summary and the chain. Exit code 1
    /// on corruption, with the offset of the first problem. Bytes torn by a
    /// crash and damage in blocks the log no longer uses ("not live") are
    /// listed, and are not errors; so is what the strict open found.
    Verify(tools::VerifyArgs),
    /// Cut a log that a strict open refuses back to its longest intact
    /// prefix, for good, and say exactly what was dropped. Writes: asks
    /// first on a terminal (or takes --yes), refuses without one, refuses a
    /// log another process holds; a sound log is left as it is. Exit code 0
    /// when the log is sound or salvaged, 1 when corruption is left in
    /// place, 2 when refused.
    Salvage(salvage::SalvageArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(a) => demo::run(a),
        Command::Inspect(a) => tools::inspect(a),
        Command::Dump(a) => tools::dump(a),
        Command::Verify(a) => tools::verify(a),
        Command::Salvage(a) => salvage::run(a),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        // The reader went away (`| head`): stop quietly.
        Err(Fail::Pipe) => ExitCode::SUCCESS,
        Err(Fail::Corrupt(msg)) => {
            out::error(&msg);
            ExitCode::from(1)
        }
        Err(Fail::Error(msg)) => {
            out::error(&msg);
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use blockwal::devices::file::{FileError, FileOp};

    /// A read refused by another process's lock (Windows' mandatory lock,
    /// ERROR_LOCK_VIOLATION), bare or inside the file device's error, is
    /// said as such; elsewhere error 33 is something else and left alone.
    #[test]
    fn a_lock_violation_is_said_as_a_held_log() {
        let bare = io::Error::from_raw_os_error(33);
        let wrapped: io::Error = FileError::new(
            FileOp::Read(0),
            "blockwal.log",
            io::Error::from_raw_os_error(33),
        )
        .into();
        for e in [bare, wrapped] {
            let text = crate::out::io_text(&e);
            assert!(text.starts_with(&e.to_string()), "{text}");
            assert_eq!(
                text.contains("holds the log's lock"),
                cfg!(windows),
                "{text}"
            );
        }
        let other = io::Error::from_raw_os_error(2);
        assert_eq!(crate::out::io_text(&other), other.to_string());
    }
}
