//! The disk's own price of durability, measured between cluster runs: 128 B
//! written in place into a file whose blocks are already written, then
//! `fdatasync` — the least any durable Raft write on this disk can cost.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Median and 99th-percentile latency, in microseconds, of `n` syncs.
pub fn probe(dir: &Path, n: usize) -> io::Result<(f64, f64)> {
    let path = dir.join("raw-fdatasync");
    let f = File::create(&path)?;
    let span = 4096 * n.max(1) as u64;
    f.write_all_at(&vec![0u8; span as usize], 0)?;
    f.sync_all()?;
    let mut lat: Vec<Duration> = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let t = Instant::now();
        f.write_all_at(&[7u8; 128], i * 4096)?;
        f.sync_data()?;
        lat.push(t.elapsed());
    }
    drop(f);
    std::fs::remove_file(&path)?;
    lat.sort_unstable();
    let at = |q: usize| lat[(lat.len() * q / 100).min(lat.len() - 1)].as_secs_f64() * 1e6;
    Ok((at(50), at(99)))
}
