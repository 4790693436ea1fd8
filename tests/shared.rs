//! `SharedWal`'s group commit: every acknowledged entry survives a power cut
//! that loses everything unsynced, many writers share few syncs, and a failed
//! sync reaches every waiter.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use blockwal::shared::SharedWal;
use blockwal::{BlockDevice, Error, Geometry, MemDevice, MemError, Wal};

/// A file-like disk in memory: writes land in the page cache (`mem`) and
/// only a sync makes them durable (`durable`, the image a power cut leaves).
/// Syncs take a millisecond, as a disk's do, so writers arriving meanwhile
/// must share the next one; `fail` makes syncs fail.
struct Disk {
    mem: MemDevice,
    durable: Vec<u8>,
    syncs: Arc<AtomicU64>,
    fail: Arc<AtomicBool>,
}

impl Disk {
    fn new() -> Self {
        let mem = MemDevice::new(4096, 64, 64);
        Disk {
            durable: mem.image().to_vec(),
            mem,
            syncs: Arc::default(),
            fail: Arc::default(),
        }
    }

    /// The disk after a power cut: only what was synced.
    fn after_power_cut(&self) -> MemDevice {
        MemDevice::from_image(self.mem.geometry(), self.durable.clone())
    }
}

impl BlockDevice for Disk {
    type Error = MemError;
    fn geometry(&self) -> Geometry {
        self.mem.geometry()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), MemError> {
        self.mem.read(offset, buf)
    }
    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), MemError> {
        self.mem.program(offset, data)
    }
    fn erase(&mut self, block: u32) -> Result<(), MemError> {
        self.mem.erase(block)
    }
    fn sync(&mut self) -> Result<(), MemError> {
        std::thread::sleep(Duration::from_millis(1));
        self.syncs.fetch_add(1, Ordering::Relaxed);
        if self.fail.load(Ordering::Relaxed) {
            return Err(MemError::NoSpace);
        }
        self.durable.clear();
        self.durable.extend_from_slice(self.mem.image());
        Ok(())
    }
}

const THREADS: u64 = 8;
const EACH: u64 = 40;

#[test]
fn every_acknowledged_entry_is_durable_and_syncs_are_shared() {
    let disk = Disk::new();
    let syncs = disk.syncs.clone();
    let log = SharedWal::new(Wal::open(disk).unwrap());
    let before = syncs.load(Ordering::Relaxed);
    let acked = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (log, acked) = (&log, &acked);
            s.spawn(move || {
                for k in 0..EACH {
                    let data = format!("thread {t} entry {k}").into_bytes();
                    let (index, ticket) = log.append_next(&data).unwrap();
                    log.wait_durable(ticket).unwrap();
                    acked.lock().unwrap().insert(index, data);
                }
            });
        }
    });
    let acked = acked.into_inner().unwrap();
    assert_eq!(acked.len() as u64, THREADS * EACH);
    let disk = log.into_inner().into_device();
    let syncs = syncs.load(Ordering::Relaxed) - before;
    // One sync per acknowledged write would be 320; group commit shares each
    // among several writers (about 8 here).
    assert!(
        syncs * 3 <= THREADS * EACH,
        "{syncs} syncs for {} acknowledged writes",
        THREADS * EACH
    );
    // A power cut that loses every unsynced write keeps every acknowledged one.
    let after = Wal::open(disk.after_power_cut()).unwrap();
    for (index, data) in &acked {
        assert_eq!(
            after.get(*index).as_deref(),
            Some(&data[..]),
            "entry {index}"
        );
    }
}

#[test]
fn a_failed_sync_reaches_every_waiter_and_the_log_refuses_after() {
    let disk = Disk::new();
    let fail = disk.fail.clone();
    let log = SharedWal::new(Wal::open(disk).unwrap());
    fail.store(true, Ordering::Relaxed);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (log, results) = (&log, &results);
            s.spawn(move || {
                let r = log
                    .append_next(format!("{t}").as_bytes())
                    .and_then(|(_, ticket)| log.wait_durable(ticket));
                results.lock().unwrap().push(r);
            });
        }
    });
    let results = results.into_inner().unwrap();
    assert_eq!(results.len() as u64, THREADS);
    assert!(results.iter().all(|r| r.is_err()), "{results:?}");
    assert_eq!(
        results
            .iter()
            .filter(|r| matches!(r, Err(Error::Device(_))))
            .count(),
        1,
        "one leader gets the device's error, the others Poisoned: {results:?}"
    );
    assert!(matches!(log.append_next(b"late"), Err(Error::Poisoned)));
}
