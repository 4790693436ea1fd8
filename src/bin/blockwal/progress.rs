//! A progress bar on standard error, drawn only when it is a terminal (so
//! pipes, logs and tests get clean output). A few lines of `std` instead of
//! a crate: the tool stays small and builds on every `std` target.

use std::io::{self, IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

const WIDTH: usize = 30;
const EVERY: Duration = Duration::from_millis(100);

/// One bar, `done` out of `total`.
pub struct Progress {
    what: &'static str,
    total: u64,
    start: Instant,
    last: Option<Instant>,
    on: bool,
}

impl Progress {
    /// A bar for `total` steps of `what`; hidden unless stderr is a terminal.
    pub fn new(what: &'static str, total: u64) -> Self {
        Progress {
            what,
            total: total.max(1),
            start: Instant::now(),
            last: None,
            on: io::stderr().is_terminal(),
        }
    }

    /// Redraws (at most every 100 ms) with `done` steps finished.
    pub fn set(&mut self, done: u64) {
        if !self.on || self.last.is_some_and(|t| t.elapsed() < EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        let frac = done.min(self.total) as f64 / self.total as f64;
        let filled = (frac * WIDTH as f64) as usize;
        let _ = write!(
            io::stderr(),
            "\r{} [{}{}] {:>3}% {done}/{} {:.1}s",
            self.what,
            "#".repeat(filled),
            "-".repeat(WIDTH - filled),
            (frac * 100.0) as u32,
            self.total,
            self.start.elapsed().as_secs_f64()
        );
    }

    /// Erases the bar.
    pub fn finish(&mut self) {
        if self.on && self.last.is_some() {
            let _ = write!(io::stderr(), "\r{:80}\r", "");
        }
        self.last = None;
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
