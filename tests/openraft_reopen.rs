//! What openraft needs to survive a restart or a crash, checked by reopening
//! the store: the vote, the committed log id, every flushed entry, the purge
//! state; and that nothing truncated comes back.
//!
//! Power cuts use `PowerDev`, a small file-like device defined here that
//! keeps a durable image (what the last completed sync covered) next to the
//! volatile one. (`blockwal::SimDevice` is not `Send`, and the store's
//! flusher thread needs a `Send` device.)
#![cfg(feature = "openraft")]
// openraft fixes its error type (`StorageError`).
#![allow(clippy::result_large_err)]

mod openraft_common;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use blockwal::openraft::{CommittedMode, LogStore, LogStoreOptions};
use blockwal::{BlockDevice, FileDevice, Geometry, MemDevice, Wal};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::{
    CommittedLeaderId, EntryPayload, LogId, LogState, RaftLogReader, StorageError, Vote,
};
use openraft_common::{Entry, NodeId, Tc};

fn lid(term: u64, index: u64) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(term, 0), index)
}

fn ent(term: u64, index: u64) -> Entry {
    Entry {
        log_id: lid(term, index),
        payload: EntryPayload::Normal(format!("t{term}-i{index}")),
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Everything openraft reads back at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    state: (Option<LogId<NodeId>>, Option<LogId<NodeId>>),
    entries: Vec<LogId<NodeId>>,
}

async fn observe<D>(s: &mut LogStore<Tc, D>) -> Result<Observed, StorageError<NodeId>>
where
    D: BlockDevice + Send + 'static,
    D::Error: std::fmt::Debug + Send,
{
    let LogState {
        last_purged_log_id,
        last_log_id,
    } = s.get_log_state().await?;
    let entries = s.try_get_log_entries(0..).await?;
    for e in &entries {
        // Payloads decode to what was written.
        let i = e.log_id.index;
        let t = e.log_id.leader_id.term;
        assert_eq!(e.payload, EntryPayload::Normal(format!("t{t}-i{i}")));
    }
    Ok(Observed {
        vote: s.read_vote().await?,
        committed: s.read_committed().await?,
        state: (last_purged_log_id, last_log_id),
        entries: entries.iter().map(|e| e.log_id).collect(),
    })
}

// ----- clean reopen on a file ---------------------------------------------------

#[test]
fn reopen_file_keeps_vote_committed_entries_and_purge() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let before = {
            let mut s: LogStore<Tc, FileDevice> = LogStore::open_dir(dir.path()).unwrap();
            s.save_vote(&Vote::new(1, 0)).await.unwrap();
            s.blocking_append((0..=20).map(|i| ent(1, i)))
                .await
                .unwrap();
            s.save_committed(Some(lid(1, 15))).await.unwrap();
            s.purge(lid(1, 10)).await.unwrap();
            s.truncate(lid(1, 18)).await.unwrap();
            s.save_vote(&Vote::new_committed(2, 1)).await.unwrap();
            s.blocking_append((18..=19).map(|i| ent(2, i)))
                .await
                .unwrap();
            observe(&mut s).await.unwrap()
        };
        assert_eq!(before.state, (Some(lid(1, 10)), Some(lid(2, 19))));
        let mut s: LogStore<Tc, FileDevice> = LogStore::open_dir(dir.path()).unwrap();
        let after = observe(&mut s).await.unwrap();
        assert_eq!(before, after);
        assert_eq!(after.vote, Some(Vote::new_committed(2, 1)));
        assert_eq!(after.committed, Some(lid(1, 15)));
        let want: Vec<_> = (11..=17)
            .map(|i| lid(1, i))
            .chain([lid(2, 18), lid(2, 19)])
            .collect();
        assert_eq!(after.entries, want);
        // And it goes on where it stopped.
        s.blocking_append([ent(2, 20)]).await.unwrap();
        assert_eq!(
            s.get_log_state().await.unwrap().last_log_id,
            Some(lid(2, 20))
        );
    });
}

#[test]
fn purge_beyond_last_then_reopen_continues_after_it() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        {
            let mut s: LogStore<Tc, FileDevice> = LogStore::open_dir(dir.path()).unwrap();
            s.blocking_append((0..=5).map(|i| ent(1, i))).await.unwrap();
            s.purge(lid(2, 9)).await.unwrap();
            let st = s.get_log_state().await.unwrap();
            assert_eq!(st.last_purged_log_id, Some(lid(2, 9)));
            assert_eq!(st.last_log_id, Some(lid(2, 9)));
        }
        {
            let mut s: LogStore<Tc, FileDevice> = LogStore::open_dir(dir.path()).unwrap();
            let o = observe(&mut s).await.unwrap();
            assert_eq!(o.state, (Some(lid(2, 9)), Some(lid(2, 9))));
            assert!(o.entries.is_empty());
            // Entries at or below the purge are covered by it: dropped.
            s.blocking_append([ent(2, 6)]).await.unwrap();
            assert!(s.try_get_log_entries(0..).await.unwrap().is_empty());
            // The next index is 10.
            assert!(s.blocking_append([ent(2, 11)]).await.is_err());
        }
        {
            let mut s: LogStore<Tc, FileDevice> = LogStore::open_dir(dir.path()).unwrap();
            s.blocking_append([ent(2, 10), ent(2, 11)]).await.unwrap();
        }
        let mut s: LogStore<Tc, FileDevice> = LogStore::open_dir(dir.path()).unwrap();
        let o = observe(&mut s).await.unwrap();
        assert_eq!(o.state, (Some(lid(2, 9)), Some(lid(2, 11))));
        assert_eq!(o.entries, vec![lid(2, 10), lid(2, 11)]);
    });
}

#[test]
fn purge_on_a_fresh_log_then_reopen() {
    // A follower that installs a snapshot before it has any entry.
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        {
            let mut s: LogStore<Tc, FileDevice> = LogStore::open_dir(dir.path()).unwrap();
            s.purge(lid(3, 41)).await.unwrap();
        }
        let mut s: LogStore<Tc, FileDevice> = LogStore::open_dir(dir.path()).unwrap();
        let st = s.get_log_state().await.unwrap();
        assert_eq!(st.last_purged_log_id, Some(lid(3, 41)));
        assert_eq!(st.last_log_id, Some(lid(3, 41)));
        s.blocking_append([ent(3, 42)]).await.unwrap();
        assert_eq!(
            s.get_log_state().await.unwrap().last_log_id,
            Some(lid(3, 42))
        );
    });
}

#[test]
fn truncate_everything_then_reopen() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        {
            let mut s: LogStore<Tc, FileDevice> = LogStore::open_dir(dir.path()).unwrap();
            s.blocking_append((0..=5).map(|i| ent(1, i))).await.unwrap();
            s.truncate(lid(1, 0)).await.unwrap();
        }
        {
            let mut s: LogStore<Tc, FileDevice> = LogStore::open_dir(dir.path()).unwrap();
            let o = observe(&mut s).await.unwrap();
            assert_eq!(o.state, (None, None));
            assert!(o.entries.is_empty());
            s.blocking_append([ent(2, 0), ent(2, 1)]).await.unwrap();
        }
        let mut s: LogStore<Tc, FileDevice> = LogStore::open_dir(dir.path()).unwrap();
        let o = observe(&mut s).await.unwrap();
        assert_eq!(o.entries, vec![lid(2, 0), lid(2, 1)]);
    });
}

#[test]
fn reopen_mem_device_through_into_wal() {
    rt().block_on(async {
        let wal = Wal::open(MemDevice::new(4096, 4, 256)).unwrap();
        let mut s: LogStore<Tc, MemDevice> = LogStore::with_options(
            wal,
            LogStoreOptions::default().committed(CommittedMode::Deferred),
        )
        .unwrap();
        s.save_vote(&Vote::new(4, 2)).await.unwrap();
        // Large entries cross blocks.
        for i in 0..40 {
            s.blocking_append([ent(4, i)]).await.unwrap();
        }
        s.save_committed(Some(lid(4, 30))).await.unwrap();
        s.purge(lid(4, 12)).await.unwrap();
        let before = observe(&mut s).await.unwrap();
        let dev = s.into_wal().unwrap().into_device();
        let mut s: LogStore<Tc, MemDevice> = LogStore::new(Wal::open(dev).unwrap()).unwrap();
        let after = observe(&mut s).await.unwrap();
        assert_eq!(before, after);
        assert_eq!(
            after.committed,
            Some(lid(4, 30)),
            "deferred committed is written on close"
        );
    });
}

#[test]
fn readers_fail_cleanly_after_the_store_is_dropped() {
    rt().block_on(async {
        let wal = Wal::open(MemDevice::new(4096, 4, 64)).unwrap();
        let mut s: LogStore<Tc, MemDevice> = LogStore::new(wal).unwrap();
        s.blocking_append([ent(1, 0)]).await.unwrap();
        let mut r = s.get_log_reader().await;
        assert_eq!(r.try_get_log_entries(0..1).await.unwrap().len(), 1);
        drop(s);
        let e = r.try_get_log_entries(0..1).await.unwrap_err();
        assert!(e.to_string().contains("closed"), "{e}");
    });
}

#[test]
fn corrupt_metadata_is_an_error_not_a_panic() {
    let mut wal = Wal::open(MemDevice::new(4096, 4, 64)).unwrap();
    wal.set_meta(blockwal::openraft::VOTE_KEY, &[1, 0xff, 0xff])
        .unwrap();
    let e = LogStore::<Tc, MemDevice>::new(wal).unwrap_err();
    assert!(e.to_string().contains("openraft/vote"), "{e}");

    let mut wal = Wal::open(MemDevice::new(4096, 4, 64)).unwrap();
    wal.append(0, b"not an entry").unwrap();
    let e = LogStore::<Tc, MemDevice>::new(wal).unwrap_err();
    assert!(e.to_string().contains("entry 0"), "{e}");
}

#[test]
fn non_contiguous_append_is_an_error() {
    rt().block_on(async {
        let wal = Wal::open(MemDevice::new(4096, 4, 64)).unwrap();
        let mut s: LogStore<Tc, MemDevice> = LogStore::new(wal).unwrap();
        s.blocking_append([ent(1, 0), ent(1, 1)]).await.unwrap();
        let e = s.blocking_append([ent(1, 5)]).await.unwrap_err();
        assert!(e.to_string().contains("expects index 2"), "{e}");
    });
}

// ----- power cuts -------------------------------------------------------------

const BLOCK: u32 = 4096;
const BLOCKS: u32 = 48;

struct PowerState {
    volatile: Vec<u8>,
    durable: Vec<u8>,
    on: bool,
    syncs: u64,
    /// Cut the power right after this many syncs completed.
    cut_after: Option<u64>,
    /// Syncs wait while set (power cut releases them with an error).
    hold_syncs: bool,
}

/// A file-like device whose power can be cut: unsynced writes are lost.
#[derive(Clone)]
struct Power(Arc<(Mutex<PowerState>, Condvar)>);

impl Power {
    fn new(image: Option<Vec<u8>>) -> Self {
        let img = image.unwrap_or_else(|| vec![0; (BLOCK * BLOCKS) as usize]);
        Power(Arc::new((
            Mutex::new(PowerState {
                volatile: img.clone(),
                durable: img,
                on: true,
                syncs: 0,
                cut_after: None,
                hold_syncs: false,
            }),
            Condvar::new(),
        )))
    }
    fn device(&self) -> PowerDev {
        PowerDev(self.clone())
    }
    fn st(&self) -> std::sync::MutexGuard<'_, PowerState> {
        self.0 .0.lock().unwrap()
    }
    fn cut(&self) {
        self.st().on = false;
        self.0 .1.notify_all();
    }
    fn durable_image(&self) -> Vec<u8> {
        self.st().durable.clone()
    }
    fn volatile_image(&self) -> Vec<u8> {
        self.st().volatile.clone()
    }
}

struct PowerDev(Power);

impl BlockDevice for PowerDev {
    type Error = &'static str;
    fn geometry(&self) -> Geometry {
        Geometry {
            block_size: BLOCK,
            program_size: 1,
            block_count: BLOCKS,
            erase_value: None,
        }
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
        let st = self.0.st();
        if !st.on {
            return Err("power off");
        }
        let o = offset as usize;
        buf.copy_from_slice(st.volatile.get(o..o + buf.len()).ok_or("out of range")?);
        Ok(())
    }
    fn program(&mut self, offset: u64, data: &[u8]) -> Result<(), Self::Error> {
        let mut st = self.0.st();
        if !st.on {
            return Err("power off");
        }
        let o = offset as usize;
        st.volatile
            .get_mut(o..o + data.len())
            .ok_or("out of range")?
            .copy_from_slice(data);
        Ok(())
    }
    fn erase(&mut self, _block: u32) -> Result<(), Self::Error> {
        if !self.0.st().on {
            return Err("power off");
        }
        Ok(())
    }
    fn sync(&mut self) -> Result<(), Self::Error> {
        let (m, cv) = &*self.0 .0;
        let mut st = m.lock().unwrap();
        while st.hold_syncs && st.on {
            st = cv.wait(st).unwrap();
        }
        if !st.on {
            return Err("power off");
        }
        st.durable = st.volatile.clone();
        st.syncs += 1;
        if st.cut_after == Some(st.syncs) {
            st.on = false;
        }
        Ok(())
    }
}

fn power_store(p: &Power) -> Result<LogStore<Tc, PowerDev>, StorageError<NodeId>> {
    let wal = Wal::open(p.device()).expect("open wal");
    LogStore::new(wal)
}

/// One step of the workload, and what the store must show once it returned.
#[derive(Clone, Debug)]
enum Op {
    Vote(Vote<NodeId>),
    Append(Vec<(u64, u64)>),
    Committed(LogId<NodeId>),
    Purge(LogId<NodeId>),
    Truncate(LogId<NodeId>),
}

fn workload() -> Vec<Op> {
    let mut ops = vec![Op::Vote(Vote::new(1, 0))];
    for i in 0..8 {
        ops.push(Op::Append(vec![(1, i)]));
    }
    ops.push(Op::Append(vec![(1, 8), (1, 9), (1, 10)]));
    ops.push(Op::Committed(lid(1, 6)));
    ops.push(Op::Purge(lid(1, 3)));
    ops.push(Op::Truncate(lid(1, 8)));
    ops.push(Op::Vote(Vote::new_committed(2, 0)));
    for i in 8..12 {
        ops.push(Op::Append(vec![(2, i)]));
    }
    ops.push(Op::Committed(lid(2, 11)));
    ops.push(Op::Purge(lid(2, 20)));
    ops.push(Op::Append(vec![(2, 21)]));
    ops.push(Op::Vote(Vote::new_committed(3, 0)));
    ops
}

/// The model: what a store that ran `ops` shows.
fn model(ops: &[Op]) -> Observed {
    let mut o = Observed {
        vote: None,
        committed: None,
        state: (None, None),
        entries: Vec::new(),
    };
    for op in ops {
        match op {
            Op::Vote(v) => o.vote = Some(*v),
            Op::Committed(c) => o.committed = Some(*c),
            Op::Append(es) => o.entries.extend(es.iter().map(|(t, i)| lid(*t, *i))),
            Op::Truncate(at) => o.entries.retain(|e| e.index < at.index),
            Op::Purge(p) => {
                o.entries.retain(|e| e.index > p.index);
                o.state.0 = Some(*p);
            }
        }
    }
    o.state.1 = o.entries.last().copied().or(o.state.0);
    o
}

async fn run(s: &mut LogStore<Tc, PowerDev>, op: &Op) -> Result<(), StorageError<NodeId>> {
    match op {
        Op::Vote(v) => s.save_vote(v).await,
        Op::Append(es) => s.blocking_append(es.iter().map(|(t, i)| ent(*t, *i))).await,
        Op::Committed(c) => s.save_committed(Some(*c)).await,
        Op::Purge(p) => s.purge(*p).await,
        Op::Truncate(t) => s.truncate(*t).await,
    }
}

#[test]
fn power_cut_after_every_sync_keeps_what_was_acknowledged() {
    let ops = workload();
    let rt = rt();
    // Count the syncs of a full run, then cut after each of them.
    let total = {
        let p = Power::new(None);
        rt.block_on(async {
            let mut s = power_store(&p).unwrap();
            for op in &ops {
                run(&mut s, op).await.unwrap();
            }
            assert_eq!(observe(&mut s).await.unwrap(), model(&ops));
        });
        let n = p.st().syncs;
        n
    };
    assert!(total > ops.len() as u64 / 2, "{total} syncs");
    for cut in 1..=total + 1 {
        let p = Power::new(None);
        p.st().cut_after = Some(cut);
        let done = rt.block_on(async {
            let mut s = power_store(&p).unwrap();
            let mut done = 0;
            for op in &ops {
                match run(&mut s, op).await {
                    Ok(()) => done += 1,
                    Err(e) => {
                        // A readable error, and the store refuses more writes.
                        let msg = e.to_string();
                        assert!(msg.contains("blockwal"), "{msg}");
                        assert!(s.save_vote(&Vote::new(9, 9)).await.is_err());
                        break;
                    }
                }
            }
            done
        });
        let acked = model(&ops[..done]);
        let in_flight = model(&ops[..(done + 1).min(ops.len())]);
        // Reopen what the power cut left (unsynced writes lost), and what a
        // process crash leaves (the OS kept every write).
        for (what, image) in [
            ("power cut", p.durable_image()),
            ("process crash", p.volatile_image()),
        ] {
            let p2 = Power::new(Some(image));
            let got = rt.block_on(async {
                let mut s = power_store(&p2).expect("reopen after a crash");
                observe(&mut s).await.expect("read after a crash")
            });
            assert!(
                got == acked || got == in_flight,
                "{what} after sync {cut} (op {done} in flight):\n got       {got:?}\n acked     {acked:?}\n in flight {in_flight:?}"
            );
        }
    }
}

#[test]
fn flush_callback_waits_for_durability() {
    let rt = rt();
    let p = Power::new(None);
    rt.block_on(async {
        let mut s = power_store(&p).unwrap();
        s.save_vote(&Vote::new(1, 0)).await.unwrap();
        s.blocking_append([ent(1, 0), ent(1, 1)]).await.unwrap();
        // Hold every sync: an append is accepted but never acknowledged.
        p.st().hold_syncs = true;
        let r =
            tokio::time::timeout(Duration::from_millis(300), s.blocking_append([ent(1, 2)])).await;
        assert!(r.is_err(), "acknowledged without a sync: {r:?}");
        p.cut();
    });
    let p2 = Power::new(Some(p.durable_image()));
    rt.block_on(async {
        let mut s = power_store(&p2).unwrap();
        let o = observe(&mut s).await.unwrap();
        assert_eq!(o.vote, Some(Vote::new(1, 0)));
        assert_eq!(o.entries, vec![lid(1, 0), lid(1, 1)]);
    });
}

#[test]
fn interrupted_purge_is_finished_on_open() {
    let rt = rt();
    let p = Power::new(None);
    rt.block_on(async {
        let mut s = power_store(&p).unwrap();
        s.blocking_append((0..30).map(|i| ent(1, i))).await.unwrap();
        // The metadata area exists, so the purge record takes one sync.
        s.save_vote(&Vote::new(1, 0)).await.unwrap();
        // Let the purge record reach the media, then cut before the compaction.
        let n = p.st().syncs;
        p.st().cut_after = Some(n + 1);
        assert!(s.purge(lid(1, 40)).await.is_err());
    });
    // The cut fell between the purge record and the compaction.
    let raw = Wal::open(Power::new(Some(p.durable_image())).device()).unwrap();
    assert!(raw.get_meta(blockwal::openraft::PURGED_KEY).is_some());
    assert_eq!((raw.first_index(), raw.last_index()), (Some(0), Some(29)));
    drop(raw);
    let p2 = Power::new(Some(p.durable_image()));
    rt.block_on(async {
        let mut s = power_store(&p2).unwrap();
        let o = observe(&mut s).await.unwrap();
        assert_eq!(o.state, (Some(lid(1, 40)), Some(lid(1, 40))));
        assert!(o.entries.is_empty());
        s.blocking_append([ent(1, 41)]).await.unwrap();
    });
}
