//! Output and failures: every line goes through [`Out`], so a closed pipe
//! ends the command quietly instead of panicking in `println!`.

use std::fmt;
use std::io::{self, Write as _};
use std::path::Path;

use blockwal::devices::file::FileError;

/// Why a command stopped.
#[derive(Debug)]
pub enum Fail {
    /// Standard output was closed by its reader.
    Pipe,
    /// The log is corrupt (exit code 1).
    Corrupt(String),
    /// Usage or I/O error (exit code 2).
    Error(String),
}

/// A command's result: `Ok(true)` sound, `Ok(false)` corruption reported.
pub type Res<T = bool> = Result<T, Fail>;

/// Standard output, locked for the command's lifetime.
pub struct Out(io::StdoutLock<'static>);

impl Out {
    pub fn new() -> Self {
        Out(io::stdout().lock())
    }

    /// Writes one line.
    pub fn line(&mut self, args: fmt::Arguments<'_>) -> Res<()> {
        writeln!(self.0, "{args}").map_err(write_error)
    }

    /// Writes `s` as it is.
    pub fn text(&mut self, s: &str) -> Res<()> {
        self.0.write_all(s.as_bytes()).map_err(write_error)
    }

    /// Writes one JSON value on a line of its own.
    pub fn json(&mut self, v: &serde_json::Value) -> Res<()> {
        self.line(format_args!("{v}"))
    }
}

fn write_error(e: io::Error) -> Fail {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Fail::Pipe
    } else {
        Fail::Error(format!("writing to standard output: {e}"))
    }
}

/// `writeln!` through an [`Out`], returning early on failure.
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {
        $out.line(format_args!($($arg)*))?
    };
}
pub(crate) use outln;

/// Prints `blockwal: msg` on standard error (a closed stderr is ignored).
pub fn error(msg: &str) {
    let _ = writeln!(io::stderr(), "blockwal: {msg}");
}

/// A library error on the log at `path`, sorted by exit code and said with
/// `Display` (the device's own error included).
pub fn wal_error(doing: &str, path: &Path, e: blockwal::Error<io::Error>) -> Fail {
    let p = path.display();
    match e {
        blockwal::Error::Device(io) => Fail::Error(format!("{doing} {p}: {}", io_text(&io))),
        blockwal::Error::Locked { .. } => Fail::Error(format!(
            "{doing} {p}: another process holds the log's lock; stop it (or wait for it \
             to close the log) and run again. Nothing was changed."
        )),
        e @ blockwal::Error::Corrupt { .. } => Fail::Corrupt(format!("{doing} {p}: {e}")),
        e => Fail::Error(format!("{doing} {p}: {e}")),
    }
}

/// An I/O error in words. On Windows the log's lock is mandatory: while
/// another process holds the log, even reading it fails, with an OS message
/// ("locked a portion of the file") that does not say what to do.
pub fn io_text(e: &io::Error) -> String {
    // ERROR_LOCK_VIOLATION, on the error itself or inside the file device's.
    const LOCK_VIOLATION: i32 = 33;
    let inner = FileError::of(e)
        .and_then(|f| std::error::Error::source(f))
        .and_then(|s| s.downcast_ref::<io::Error>());
    let code = e
        .raw_os_error()
        .or_else(|| inner.and_then(io::Error::raw_os_error));
    if cfg!(windows) && code == Some(LOCK_VIOLATION) {
        format!(
            "{e}: another process holds the log's lock, and on Windows that keeps others \
             from reading it too; stop it (or wait for it to close the log) and run again, \
             or look at a copy of the file"
        )
    } else {
        e.to_string()
    }
}
