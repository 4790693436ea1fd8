//! blockwal from async code (tokio): the log's calls block on the disk, so
//! they run on tokio's blocking pool, and one `Mutex` lets many tasks share
//! the log. Each task appends its entries and then syncs: a sync makes every
//! entry appended so far durable, so tasks that wait for the lock while
//! another syncs find their entries already durable (group commit).
//!
//! ```text
//! cargo run --example tokio_tasks
//! ```

use std::sync::{Arc, Mutex};

use blockwal::RaftWal;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let wal = Arc::new(Mutex::new(RaftWal::open(dir.path())?));

    // Eight tasks, each appending ten entries and syncing after each.
    let mut tasks = Vec::new();
    for task in 0..8 {
        let wal = Arc::clone(&wal);
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let wal = Arc::clone(&wal);
                let payload = format!("task {task} entry {i}");
                // The closure holds the lock only while it touches the log.
                tokio::task::spawn_blocking(move || {
                    let mut wal = wal.lock().map_err(|_| "a task panicked holding the log")?;
                    let index = wal.next_index().unwrap_or(1);
                    wal.append(index, payload.as_bytes())?;
                    wal.sync()?;
                    Ok::<u64, Box<dyn std::error::Error + Send + Sync>>(index)
                })
                .await??;
            }
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        }));
    }
    for t in tasks {
        t.await?.map_err(|e| e.to_string())?;
    }

    // Reads are quick (recent entries are cached) but may touch the disk.
    let wal = Arc::clone(&wal);
    let (first, last, sample) = tokio::task::spawn_blocking(move || {
        let wal = wal.lock().map_err(|_| "a task panicked holding the log")?;
        let sample = wal
            .get(42)
            .map(|d| String::from_utf8_lossy(&d).into_owned());
        Ok::<_, String>((wal.first_index(), wal.last_index(), sample))
    })
    .await??;
    println!("log holds {first:?}..={last:?}; entry 42 is {sample:?}");
    assert_eq!((first, last), (Some(1), Some(80)));
    Ok(())
}
