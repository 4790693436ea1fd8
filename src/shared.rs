//! [`SharedWal`]: one log shared by many threads, with group commit.
//!
//! Writers append under a lock and get a [`Ticket`]; [`SharedWal::wait_durable`]
//! returns once everything up to that ticket is durable. Whoever waits first
//! while no sync runs becomes the leader: it syncs once for every entry
//! appended so far, while the others wait on a condition variable until the
//! durable mark passes their ticket. So N writers waiting together cost about
//! one device sync, not N.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::{BlockDevice, Error, Wal};

/// How many times a leader yields to writers still appending before it syncs.
const LET_IN: usize = 64;

type Res<T, D> = Result<T, Error<<D as BlockDevice>::Error>>;

/// Names an append for [`SharedWal::wait_durable`]: its position in the
/// order of appends (and batches) to this handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

struct Log<D: BlockDevice> {
    wal: Wal<D>,
    /// Tickets handed out so far (the last one's number).
    appended: u64,
}

#[derive(Default)]
struct Durable {
    /// Every ticket up to this one is durable.
    upto: u64,
    /// A leader is syncing now.
    syncing: bool,
    /// A sync failed: the log is poisoned and no later ticket becomes durable.
    failed: bool,
}

/// A [`Wal`] shared by threads (`Sync` when the device is `Send`), with
/// group commit: see the [module docs](self).
///
/// ```
/// use blockwal::{shared::SharedWal, MemDevice, Wal};
///
/// let log = SharedWal::new(Wal::open(MemDevice::new(512, 8, 64)).unwrap());
/// std::thread::scope(|s| {
///     for t in 0..4u64 {
///         let log = &log;
///         s.spawn(move || {
///             // Indexes must follow each other: take them under the log's lock.
///             let (_index, ticket) = log.append_next(b"entry").unwrap();
///             log.wait_durable(ticket).unwrap();
///         });
///     }
/// });
/// assert_eq!(log.with(|w| w.len()).unwrap(), 4);
/// ```
pub struct SharedWal<D: BlockDevice> {
    log: Mutex<Log<D>>,
    durable: Mutex<Durable>,
    wake: Condvar,
    /// Threads inside an append (waiting for the log's lock or holding it).
    appending: AtomicUsize,
}

impl<D: BlockDevice> SharedWal<D> {
    /// Shares `wal`; what it held before counts as durable only after the
    /// first sync.
    pub fn new(wal: Wal<D>) -> Self {
        SharedWal {
            log: Mutex::new(Log { wal, appended: 0 }),
            durable: Mutex::new(Durable::default()),
            wake: Condvar::new(),
            appending: AtomicUsize::new(0),
        }
    }

    /// The log back (after the last thread is done with it).
    pub fn into_inner(self) -> Wal<D> {
        match self.log.into_inner() {
            Ok(l) => l.wal,
            Err(p) => p.into_inner().wal,
        }
    }

    /// A thread panicked holding a lock: the log's state is unknown.
    fn lock(&self) -> Res<MutexGuard<'_, Log<D>>, D> {
        self.log.lock().map_err(|_| Error::Poisoned)
    }

    fn lock_durable(&self) -> Res<MutexGuard<'_, Durable>, D> {
        self.durable.lock().map_err(|_| Error::Poisoned)
    }

    /// Runs `f` on the log under its lock (reads, compaction, ...). Appends
    /// made here get no ticket: sync them through `f` or a later ticket.
    pub fn with<T>(&self, f: impl FnOnce(&mut Wal<D>) -> T) -> Res<T, D> {
        Ok(f(&mut self.lock()?.wal))
    }

    /// [`Wal::append`] (buffered: not yet durable); wait on the ticket for that.
    pub fn append(&self, index: u64, data: &[u8]) -> Res<Ticket, D> {
        self.appending(|w| w.append(index, data)).map(|((), t)| t)
    }

    /// Runs an append under the log's lock, counted in `appending` from
    /// before the lock is asked for, and hands out its ticket.
    fn appending<T>(&self, f: impl FnOnce(&mut Wal<D>) -> Res<T, D>) -> Res<(T, Ticket), D> {
        self.appending.fetch_add(1, Ordering::SeqCst);
        let r = self.lock().and_then(|mut l| {
            let v = f(&mut l.wal)?;
            l.appended += 1;
            Ok((v, Ticket(l.appended)))
        });
        self.appending.fetch_sub(1, Ordering::SeqCst);
        r
    }

    /// Appends `data` at the log's next index (1 in an empty log), in
    /// whichever order threads come; returns that index and the ticket.
    pub fn append_next(&self, data: &[u8]) -> Res<(u64, Ticket), D> {
        self.appending(|w| {
            let next = w.next_index().unwrap_or(1);
            w.append(next, data).map(|()| next)
        })
    }

    /// [`Wal::append_batch`] under one ticket.
    pub fn append_batch<V: AsRef<[u8]>>(&self, entries: &[(u64, V)]) -> Res<Ticket, D> {
        self.appending(|w| w.append_batch(entries)).map(|((), t)| t)
    }

    /// Returns once the append that gave `ticket` (and every earlier one) is
    /// durable. One waiting thread syncs for all; the others wait for it.
    ///
    /// A failed sync poisons the log: the thread that ran it gets the
    /// device's error, every other waiter whose entries it should have made
    /// durable gets [`Error::Poisoned`], and so does every later call. Entries
    /// acknowledged before the failure stay acknowledged (reopen the log to
    /// see what is durable).
    pub fn wait_durable(&self, ticket: Ticket) -> Res<(), D> {
        let mut d = self.lock_durable()?;
        loop {
            if d.upto >= ticket.0 {
                return Ok(());
            }
            if d.failed {
                return Err(Error::Poisoned);
            }
            if !d.syncing {
                break;
            }
            d = self.wake.wait(d).map_err(|_| Error::Poisoned)?;
        }
        // The leader: sync everything appended so far, outside the durable
        // lock so followers can queue up meanwhile. The sync holds the log's
        // lock, so writers who came during the last one are still queued on
        // it: let them in first (a bounded wait), or each sync would carry
        // one or two writers instead of all of them.
        d.syncing = true;
        drop(d);
        for _ in 0..LET_IN {
            if self.appending.load(Ordering::SeqCst) == 0 {
                break;
            }
            std::thread::yield_now();
        }
        let r = self.lock().and_then(|mut l| {
            let upto = l.appended;
            l.wal.sync().map(|()| upto)
        });
        let mut d = self.durable.lock().unwrap_or_else(|p| p.into_inner());
        d.syncing = false;
        let r = match r {
            Ok(upto) => {
                d.upto = d.upto.max(upto);
                Ok(())
            }
            Err(e) => {
                d.failed = true;
                Err(e)
            }
        };
        drop(d);
        self.wake.notify_all();
        r
    }

    /// Appends and waits until durable: [`SharedWal::append`] then
    /// [`SharedWal::wait_durable`].
    pub fn append_durable(&self, index: u64, data: &[u8]) -> Res<(), D> {
        let t = self.append(index, data)?;
        self.wait_durable(t)
    }
}
