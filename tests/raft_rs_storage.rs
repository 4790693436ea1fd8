//! `blockwal::raft_rs::RaftStorage` against raft-rs's own `MemStorage`: the
//! semantics of raft-rs 0.7's storage tests (ported: same fixtures, same
//! tables), each table run on `MemStorage` itself and on `RaftStorage` over
//! `MemDevice` and `FileDevice` (one generic body); reopen after each kind of
//! change; and a differential run of random operation sequences on both
//! stores with the blockwal one reopened as it goes.
#![cfg(feature = "raft-rs")]
// raft's messages are built by `Default` then field assignment.
#![allow(clippy::field_reassign_with_default)]

mod raft_rs_common;

use blockwal::raft_rs::RaftStorage;
use blockwal::BlockDevice;
use raft::prelude::*;
use raft::storage::MemStorage;
use raft::StorageError;
use raft_rs_common::*;

/// The write side both stores have (`MemStorage` through `wl()`), so one
/// table checks both.
trait Store: Storage {
    /// `MemStorage` panics on misuse that `RaftStorage` refuses with an error.
    const PANICS_ON_MISUSE: bool;
    fn append(&self, e: &[Entry]) -> raft::Result<()>;
    fn compact(&self, i: u64) -> raft::Result<()>;
    fn apply_snapshot(&self, s: Snapshot) -> raft::Result<()>;
    fn set_hard_state(&self, hs: &HardState) -> raft::Result<()>;
    fn set_conf_state(&self, cs: &ConfState) -> raft::Result<()>;
    /// The application snapshotted its state machine at `i` (`MemStorage`
    /// needs nothing: it makes snapshots up; `RaftStorage` compacts only up
    /// to a snapshot).
    fn snapshotted(&self, i: u64, cs: &ConfState) -> raft::Result<()>;
}

impl Store for MemStorage {
    const PANICS_ON_MISUSE: bool = true;
    fn append(&self, e: &[Entry]) -> raft::Result<()> {
        self.wl().append(e)
    }
    fn compact(&self, i: u64) -> raft::Result<()> {
        self.wl().compact(i)
    }
    fn apply_snapshot(&self, s: Snapshot) -> raft::Result<()> {
        self.wl().apply_snapshot(s)
    }
    fn set_hard_state(&self, hs: &HardState) -> raft::Result<()> {
        self.wl().set_hardstate(hs.clone());
        Ok(())
    }
    fn set_conf_state(&self, cs: &ConfState) -> raft::Result<()> {
        self.wl().set_conf_state(cs.clone());
        Ok(())
    }
    fn snapshotted(&self, _: u64, _: &ConfState) -> raft::Result<()> {
        Ok(())
    }
}

impl<D: BlockDevice> Store for RaftStorage<D> {
    const PANICS_ON_MISUSE: bool = false;
    fn append(&self, e: &[Entry]) -> raft::Result<()> {
        RaftStorage::append(self, e)
    }
    fn compact(&self, i: u64) -> raft::Result<()> {
        RaftStorage::compact(self, i)
    }
    fn apply_snapshot(&self, s: Snapshot) -> raft::Result<()> {
        RaftStorage::apply_snapshot(self, &s)
    }
    fn set_hard_state(&self, hs: &HardState) -> raft::Result<()> {
        RaftStorage::set_hard_state(self, hs)
    }
    fn set_conf_state(&self, cs: &ConfState) -> raft::Result<()> {
        RaftStorage::set_conf_state(self, cs)
    }
    fn snapshotted(&self, i: u64, cs: &ConfState) -> raft::Result<()> {
        match self.create_snapshot(i, cs, format!("state at {i}").as_bytes()) {
            Err(raft::Error::Store(StorageError::SnapshotOutOfDate)) => Ok(()),
            r => r,
        }
    }
}

/// raft-rs's fixture: entries 3, 4, 5 (terms 3, 4, 5). `MemStorage`'s tests
/// poke them in directly (with no snapshot before them); here both stores
/// get there through their API: a snapshot at 2 (term 2), then an append.
fn fixture<S: Store>(s: &S, ents: &[Entry]) {
    s.apply_snapshot(snap(2, 2, &[1, 2, 3])).unwrap();
    s.append(ents).unwrap();
}

fn ents345() -> Vec<Entry> {
    vec![ent(3, 3), ent(4, 4), ent(5, 5)]
}

/// Runs `body` on `MemStorage` and on `RaftStorage` over both devices.
fn on_all(body: impl Fn(&mut dyn FnMut() -> Box<dyn erased::Erased>, &str)) {
    body(&mut || Box::new(MemStorage::new()), "MemStorage");
    let mut m = MemBench;
    body(
        &mut || Box::new(RaftStorage::open(m.fresh()).unwrap()),
        "RaftStorage<MemDevice>",
    );
    let mut f = FileBench::new();
    body(
        &mut || Box::new(RaftStorage::open(f.fresh()).unwrap()),
        "RaftStorage<FileDevice>",
    );
}

/// `Store` without its generic `entries` (object safe), for `on_all`; in its
/// own module so its methods do not shadow `Storage`'s elsewhere.
mod erased {
    use raft::prelude::*;

    pub trait Erased {
        fn panics_on_misuse(&self) -> bool;
        fn append(&self, e: &[Entry]) -> raft::Result<()>;
        fn compact(&self, i: u64) -> raft::Result<()>;
        fn apply_snapshot(&self, s: Snapshot) -> raft::Result<()>;
        fn snapshotted(&self, i: u64, cs: &ConfState) -> raft::Result<()>;
        fn entries(&self, lo: u64, hi: u64, max: u64) -> raft::Result<Vec<Entry>>;
        fn term(&self, i: u64) -> raft::Result<u64>;
        fn first_index(&self) -> raft::Result<u64>;
        fn last_index(&self) -> raft::Result<u64>;
        fn initial_state(&self) -> raft::Result<RaftState>;
    }

    impl<S: super::Store> Erased for S {
        fn panics_on_misuse(&self) -> bool {
            S::PANICS_ON_MISUSE
        }
        fn append(&self, e: &[Entry]) -> raft::Result<()> {
            super::Store::append(self, e)
        }
        fn compact(&self, i: u64) -> raft::Result<()> {
            super::Store::compact(self, i)
        }
        fn apply_snapshot(&self, s: Snapshot) -> raft::Result<()> {
            super::Store::apply_snapshot(self, s)
        }
        fn snapshotted(&self, i: u64, cs: &ConfState) -> raft::Result<()> {
            super::Store::snapshotted(self, i, cs)
        }
        fn entries(&self, lo: u64, hi: u64, max: u64) -> raft::Result<Vec<Entry>> {
            Storage::entries(self, lo, hi, max, super::ctx())
        }
        fn term(&self, i: u64) -> raft::Result<u64> {
            Storage::term(self, i)
        }
        fn first_index(&self) -> raft::Result<u64> {
            Storage::first_index(self)
        }
        fn last_index(&self) -> raft::Result<u64> {
            Storage::last_index(self)
        }
        fn initial_state(&self) -> raft::Result<RaftState> {
            Storage::initial_state(self)
        }
    }
}

fn erased_fixture(s: &dyn erased::Erased, ents: &[Entry]) {
    s.apply_snapshot(snap(2, 2, &[1, 2, 3])).unwrap();
    s.append(ents).unwrap();
}

fn size_of(e: &Entry) -> u64 {
    u64::from(protobuf::Message::compute_size(e))
}

// ----- ported from raft-rs 0.7's storage.rs tests ----------------------------

#[test]
fn storage_term() {
    on_all(|mk, name| {
        let tests = [
            (1, Err(store_err(StorageError::Compacted))),
            // The snapshot's index answers from its remembered metadata.
            (2, Ok(2)),
            (3, Ok(3)),
            (4, Ok(4)),
            (5, Ok(5)),
            (6, Err(store_err(StorageError::Unavailable))),
        ];
        for (i, (idx, want)) in tests.into_iter().enumerate() {
            let s = mk();
            erased_fixture(&*s, &ents345());
            assert_eq!(s.term(idx), want, "{name} #{i}");
        }
    });
}

#[test]
fn storage_entries() {
    let ents = vec![ent(3, 3), ent(4, 4), ent(5, 5), ent(6, 6)];
    let max = u64::MAX;
    let s12 = size_of(&ents[1]) + size_of(&ents[2]);
    let s3 = size_of(&ents[3]);
    let tests = vec![
        (2, 6, max, Err(store_err(StorageError::Compacted))),
        (3, 4, max, Ok(vec![ent(3, 3)])),
        (4, 5, max, Ok(vec![ent(4, 4)])),
        (4, 6, max, Ok(vec![ent(4, 4), ent(5, 5)])),
        (4, 7, max, Ok(vec![ent(4, 4), ent(5, 5), ent(6, 6)])),
        // Even if max size is zero, the first entry is returned.
        (4, 7, 0, Ok(vec![ent(4, 4)])),
        (4, 7, s12, Ok(vec![ent(4, 4), ent(5, 5)])),
        (4, 7, s12 + s3 / 2, Ok(vec![ent(4, 4), ent(5, 5)])),
        (4, 7, s12 + s3 - 1, Ok(vec![ent(4, 4), ent(5, 5)])),
        (4, 7, s12 + s3, Ok(vec![ent(4, 4), ent(5, 5), ent(6, 6)])),
    ];
    on_all(|mk, name| {
        for (i, (lo, hi, maxsize, want)) in tests.iter().enumerate() {
            let s = mk();
            erased_fixture(&*s, &ents);
            assert_eq!(&s.entries(*lo, *hi, *maxsize), want, "{name} #{i}");
        }
    });
}

#[test]
fn storage_entries_with_data_respect_max_size_like_limit_size() {
    // Entries with data of growing sizes: the cut point matches raft's own
    // `util::limit_size` for every budget.
    let ents: Vec<Entry> = (3..20)
        .map(|i| ent_data(i, 3, &vec![i as u8; (i * 13 % 50) as usize]))
        .collect();
    on_all(|mk, name| {
        let s = mk();
        erased_fixture(&*s, &ents);
        for max in (0..400).step_by(7) {
            let mut want = ents.clone();
            raft::util::limit_size(&mut want, Some(max));
            assert_eq!(s.entries(3, 20, max).unwrap(), want, "{name} max {max}");
        }
    });
}

#[test]
fn storage_last_index() {
    on_all(|mk, name| {
        let s = mk();
        erased_fixture(&*s, &ents345());
        assert_eq!(s.last_index(), Ok(5), "{name}");
        s.append(&[ent(6, 5)]).unwrap();
        assert_eq!(s.last_index(), Ok(6), "{name}");
    });
}

#[test]
fn storage_first_index() {
    on_all(|mk, name| {
        let s = mk();
        erased_fixture(&*s, &ents345());
        assert_eq!(s.first_index(), Ok(3), "{name}");
        s.snapshotted(4, &voters(&[1, 2, 3])).unwrap();
        s.compact(4).unwrap();
        assert_eq!(s.first_index(), Ok(4), "{name}");
    });
}

#[test]
fn storage_compact() {
    let tests = [(2, 3, 3, 3), (3, 3, 3, 3), (4, 4, 4, 2), (5, 5, 5, 1)];
    on_all(|mk, name| {
        for (i, (idx, windex, wterm, wlen)) in tests.into_iter().enumerate() {
            let s = mk();
            erased_fixture(&*s, &ents345());
            s.snapshotted(5, &voters(&[1, 2, 3])).unwrap();
            s.compact(idx).unwrap();
            let index = s.first_index().unwrap();
            assert_eq!(index, windex, "{name} #{i}");
            let term = s
                .entries(index, index + 1, 1)
                .map_or(0, |v| v.first().map_or(0, |e| e.term));
            assert_eq!(term, wterm, "{name} #{i}");
            let last = s.last_index().unwrap();
            let len = s.entries(index, last + 1, 100).unwrap().len();
            assert_eq!(len, wlen, "{name} #{i}");
            if !s.panics_on_misuse() {
                // Unlike MemStorage, the entry before the first keeps its term.
                assert_eq!(s.term(index - 1), Ok(index - 1), "{name} #{i}");
            }
        }
    });
}

#[test]
fn storage_append() {
    let tests: Vec<(Vec<Entry>, Option<Vec<Entry>>)> = vec![
        (ents345(), Some(ents345())),
        (
            vec![ent(3, 3), ent(4, 6), ent(5, 6)],
            Some(vec![ent(3, 3), ent(4, 6), ent(5, 6)]),
        ),
        (
            vec![ent(3, 3), ent(4, 4), ent(5, 5), ent(6, 5)],
            Some(vec![ent(3, 3), ent(4, 4), ent(5, 5), ent(6, 5)]),
        ),
        // Overwriting compacted entries is not allowed.
        (vec![ent(2, 3), ent(3, 3), ent(4, 5)], None),
        // Truncate the existing entries and append.
        (vec![ent(4, 5)], Some(vec![ent(3, 3), ent(4, 5)])),
        // Direct append.
        (
            vec![ent(6, 6)],
            Some(vec![ent(3, 3), ent(4, 4), ent(5, 5), ent(6, 6)]),
        ),
    ];
    on_all(|mk, name| {
        for (i, (entries, want)) in tests.iter().enumerate() {
            let s = mk();
            erased_fixture(&*s, &ents345());
            match want {
                Some(want) => {
                    s.append(entries).unwrap();
                    let last = s.last_index().unwrap();
                    assert_eq!(
                        &s.entries(3, last + 1, u64::MAX).unwrap(),
                        want,
                        "{name} #{i}"
                    );
                }
                None if s.panics_on_misuse() => {}
                None => {
                    assert_eq!(
                        s.append(entries),
                        Err(store_err(StorageError::Compacted)),
                        "{name} #{i}"
                    );
                    // Refused: nothing changed.
                    assert_eq!(s.entries(3, 6, u64::MAX).unwrap(), ents345(), "{name}");
                }
            }
        }
    });
}

#[test]
fn storage_apply_snapshot() {
    on_all(|mk, name| {
        let s = mk();
        s.apply_snapshot(snap(4, 4, &[1, 2, 3])).unwrap();
        assert_eq!(
            s.apply_snapshot(snap(3, 3, &[1, 2, 3])),
            Err(store_err(StorageError::SnapshotOutOfDate)),
            "{name}"
        );
        // What MemStorage::apply_snapshot leaves: an empty log after the
        // snapshot, its term remembered, commit at it, its conf state.
        assert_eq!(s.first_index(), Ok(5), "{name}");
        assert_eq!(s.last_index(), Ok(4), "{name}");
        assert_eq!(s.term(4), Ok(4), "{name}");
        let rs = s.initial_state().unwrap();
        assert_eq!(rs.hard_state, hs(4, 0, 4), "{name}");
        assert_eq!(rs.conf_state, voters(&[1, 2, 3]), "{name}");
    });
}

// ----- RaftStorage only: snapshots it keeps, misuse it refuses ---------------

fn snapshots_body<B: Bench>(b: &mut B) {
    let name = b.name();
    let s = RaftStorage::open(b.fresh()).unwrap();
    fixture(&s, &ents345());
    let nodes = [1, 2, 3];
    // Like MemStorage's test_storage_create_snapshot, with the snapshots
    // made by the application instead of made up at the commit index.
    assert_eq!(
        s.latest_snapshot().unwrap(),
        Some(snap(2, 2, &nodes)),
        "{name}"
    );
    s.create_snapshot(4, &voters(&nodes), b"four").unwrap();
    let mut want4 = snap(4, 4, &nodes);
    want4.data = b"four".to_vec().into();
    assert_eq!(s.snapshot(0, 0), Ok(want4.clone()), "{name}");
    assert_eq!(s.snapshot(4, 0), Ok(want4.clone()), "{name}");
    assert_eq!(
        s.snapshot(5, 0),
        Err(store_err(StorageError::SnapshotTemporarilyUnavailable)),
        "{name}"
    );
    for stale in [3, 4] {
        assert_eq!(
            s.create_snapshot(stale, &voters(&nodes), b"old"),
            Err(store_err(StorageError::SnapshotOutOfDate)),
            "{name}"
        );
    }
    let e = s.create_snapshot(6, &voters(&nodes), b"six").unwrap_err();
    assert!(is_misuse(&e), "{name}: {e:?}");
    s.create_snapshot(5, &voters(&[1, 2]), b"five").unwrap();
    let mut want5 = snap(5, 5, &[1, 2]);
    want5.data = b"five".to_vec().into();
    assert_eq!(s.snapshot(5, 0), Ok(want5.clone()), "{name}");
    // Compacting past the last snapshot is refused; up to it works, and
    // the data survives a reopen.
    s.append(&[ent(6, 5), ent(7, 5)]).unwrap();
    let e = s.compact(7).unwrap_err();
    assert!(is_misuse(&e), "{name}: {e:?}");
    s.compact(6).unwrap();
    s.sync().unwrap();
    let s = reopen(b, s);
    assert_eq!(s.snapshot(5, 0), Ok(want5), "{name}");
    assert_eq!((s.first_index(), s.last_index()), (Ok(6), Ok(7)), "{name}");
    assert_eq!(s.term(5), Ok(5), "{name}");
}

#[test]
fn snapshots_are_kept_with_their_data() {
    snapshots_body(&mut MemBench);
    snapshots_body(&mut FileBench::new());
}

fn misuse_body<B: Bench>(b: &mut B) {
    let name = b.name();
    let s = RaftStorage::open(b.fresh()).unwrap();
    fixture(&s, &ents345());
    let before = picture(&s);
    // Where MemStorage panics, RaftStorage returns an error and changes nothing.
    for e in [
        s.append(&[ent(7, 5)]).unwrap_err(),
        s.append(&[ent(6, 5), ent(8, 5)]).unwrap_err(),
        s.entries(3, 7, None, ctx()).unwrap_err(),
        s.compact(7).unwrap_err(),
        s.set_hard_state(&hs(5, 1, 6)).unwrap_err(),
        s.initialize_with_conf_state(voters(&[1])).unwrap_err(),
    ] {
        assert!(is_misuse(&e), "{name}: {e:?}");
        assert!(e.to_string().contains("refused"), "{name}: {e}");
    }
    assert_eq!(picture(&s), before, "{name}");
}

#[test]
fn misuse_is_an_error_not_a_panic() {
    misuse_body(&mut MemBench);
    misuse_body(&mut FileBench::new());
}

#[test]
fn stores_can_move_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<RaftStorage<blockwal::MemDevice>>();
    send_sync::<RaftStorage<blockwal::FileDevice>>();
    // A node on one thread, the application's handle on another.
    let s = RaftStorage::open(MemBench.fresh()).unwrap();
    let h = s.clone();
    std::thread::spawn(move || h.append(&ents345()))
        .join()
        .unwrap()
        .unwrap_err(); // 3..=5 on an empty log leaves a gap: refused
    std::thread::spawn(move || s.append(&[ent(1, 1)]).and_then(|_| s.sync()))
        .join()
        .unwrap()
        .unwrap();
}

fn damaged_body<B: Bench>(b: &mut B) {
    let name = b.name();
    let is_corrupt = |e: &raft::Error| match e {
        raft::Error::Store(StorageError::Other(x)) => matches!(
            x.downcast_ref::<blockwal::raft_rs::StoreError>(),
            Some(blockwal::raft_rs::StoreError::Corrupt(_))
        ),
        _ => false,
    };
    // A state value that does not decode.
    let mut w = b.fresh();
    w.set_meta(blockwal::raft_rs::STATE_KEY, b"\x01\x05")
        .unwrap();
    let e = RaftStorage::open(w).unwrap_err();
    assert!(is_corrupt(&e), "{name}: {e:?}");
    // A log written by something else: entries from 7 with no raft-rs state.
    let mut w = b.fresh();
    w.append(7, b"not a raft-rs entry").unwrap();
    let e = RaftStorage::open(w).unwrap_err();
    assert!(is_corrupt(&e), "{name}: {e:?}");
    // Entries that do not decode: reading them is an error, not a panic.
    let mut w = b.fresh();
    w.append(1, b"\x09garbage").unwrap();
    let s = RaftStorage::open(w).unwrap();
    let e = s.entries(1, 2, None, ctx()).unwrap_err();
    assert!(is_corrupt(&e), "{name}: {e:?}");
    assert!(is_corrupt(&s.term(1).unwrap_err()), "{name}");
    // A snapshot whose data slot is gone.
    let s = RaftStorage::open(b.fresh()).unwrap();
    s.apply_snapshot(&snap(3, 1, &[1])).unwrap();
    let mut w = s.into_wal().unwrap();
    for k in blockwal::raft_rs::SNAPSHOT_KEYS {
        w.remove_meta(k).unwrap();
    }
    let e = RaftStorage::open(w).unwrap_err();
    assert!(is_corrupt(&e), "{name}: {e:?}");
    assert!(
        e.to_string().contains("snapshot 3 has no data"),
        "{name}: {e}"
    );
}

#[test]
fn damaged_or_foreign_state_is_refused() {
    damaged_body(&mut MemBench);
    damaged_body(&mut FileBench::new());
}

// ----- reopen after each kind of change ---------------------------------------

fn reopen_body<B: Bench>(b: &mut B) {
    let name = b.name();
    let mut s = RaftStorage::open(b.fresh()).unwrap();
    let mut check = |s: RaftStorage<B::D>, what: &str| {
        s.sync().unwrap();
        let before = picture(&s);
        let s = reopen(b, s);
        assert_eq!(picture(&s), before, "{name}: after {what}");
        s
    };
    s.initialize_with_conf_state(voters(&[1, 2, 3])).unwrap();
    s = check(s, "initialize");
    s.append(
        &(1..=20)
            .map(|i| ent_data(i, 1, &[i as u8; 40]))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    s = check(s, "append");
    s.append(&[ent_data(15, 2, b"new 15"), ent_data(16, 2, b"new 16")])
        .unwrap();
    assert_eq!(s.last_index(), Ok(16));
    s = check(s, "truncate by conflict");
    s.set_hard_state(&hs(2, 3, 14)).unwrap();
    s = check(s, "hard state");
    s.commit_to(16).unwrap();
    s = check(s, "commit_to");
    s.set_conf_state(&voters(&[1, 2, 3, 4])).unwrap();
    s = check(s, "conf state");
    s.create_snapshot(12, &voters(&[1, 2, 3, 4]), b"kv@12")
        .unwrap();
    s = check(s, "create snapshot");
    s.compact(10).unwrap();
    assert_eq!(s.first_index(), Ok(10));
    s = check(s, "compact");
    let mut sn = snap(30, 3, &[1, 2, 3, 4, 5]);
    sn.data = b"kv@30".to_vec().into();
    s.apply_snapshot(&sn).unwrap();
    s = check(s, "apply snapshot");
    assert_eq!(s.latest_snapshot().unwrap(), Some(sn));
    assert_eq!((s.first_index(), s.last_index()), (Ok(31), Ok(30)));
    s.append(&[ent(31, 3), ent(32, 3)]).unwrap();
    s = check(s, "append after the snapshot");
    let p = picture(&s);
    assert_eq!((p.first, p.last, p.base_term), (31, 32, Ok(3)));
    assert_eq!(p.hs, hs(3, 3, 30));
    assert_eq!(p.cs, voters(&[1, 2, 3, 4, 5]));
}

#[test]
fn reopen_after_each_kind_of_change() {
    reopen_body(&mut MemBench);
    reopen_body(&mut FileBench::new());
}

fn unsynced_body<B: Bench>(b: &mut B) {
    let name = b.name();
    // Term and vote are durable at once; the commit index is saved with the
    // next state write or sync, never past the durable entries.
    let s = RaftStorage::open(b.fresh()).unwrap();
    s.append(&(1..=5).map(|i| ent(i, 1)).collect::<Vec<_>>())
        .unwrap();
    s.set_hard_state(&hs(1, 1, 3)).unwrap();
    assert_eq!(s.durable_index(), 0, "{name}");
    assert_eq!(s.hard_state().unwrap(), hs(1, 1, 3), "{name}");
    let s = RaftStorage::open(b.reopen(s.into_wal().unwrap())).unwrap();
    let h = s.hard_state().unwrap();
    assert_eq!((h.term, h.vote), (1, 1), "{name}");
    assert!(h.commit <= s.last_index().unwrap(), "{name}: {h:?}");
    // After a sync the commit index is saved too.
    let s = RaftStorage::open(b.fresh()).unwrap();
    s.append(&(1..=5).map(|i| ent(i, 1)).collect::<Vec<_>>())
        .unwrap();
    s.set_hard_state(&hs(1, 1, 3)).unwrap();
    s.sync().unwrap();
    assert_eq!(s.durable_index(), 5, "{name}");
    s.append(&(6..=9).map(|i| ent(i, 1)).collect::<Vec<_>>())
        .unwrap();
    s.commit_to(4).unwrap();
    let s = RaftStorage::open(b.reopen(s.into_wal().unwrap())).unwrap();
    let last = s.last_index().unwrap();
    assert!((5..=9).contains(&last), "{name}: last {last}");
    assert_eq!(s.hard_state().unwrap(), hs(1, 1, 3), "{name}");
}

#[test]
fn hard_state_never_commits_past_durable_entries() {
    unsynced_body(&mut MemBench);
    unsynced_body(&mut FileBench::new());
}

// ----- differential: random sequences on MemStorage and RaftStorage ----------

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn compare<D: BlockDevice>(m: &MemStorage, s: &RaftStorage<D>, step: usize, seed: u64) {
    let at = format!("seed {seed} step {step}");
    let (first, last) = (m.first_index().unwrap(), m.last_index().unwrap());
    assert_eq!(s.first_index(), Ok(first), "{at}");
    assert_eq!(s.last_index(), Ok(last), "{at}");
    for i in first - 1..=last + 1 {
        match m.term(i) {
            // MemStorage forgets the term before its first entry after a
            // compact; RaftStorage keeps it.
            Err(raft::Error::Store(StorageError::Compacted)) if i + 1 == first => {
                assert!(s.term(i).is_ok(), "{at}: term({i})")
            }
            t => assert_eq!(s.term(i), t, "{at}: term({i})"),
        }
    }
    // (MemStorage::entries panics on an empty log.)
    for max in [0, 20, 60, u64::MAX].into_iter().filter(|_| last >= first) {
        assert_eq!(
            s.entries(first, last + 1, max, ctx()),
            m.entries(first, last + 1, max, ctx()),
            "{at}: entries max {max}"
        );
    }
    let (a, b) = (m.initial_state().unwrap(), s.initial_state().unwrap());
    assert_eq!(a.hard_state, b.hard_state, "{at}");
    assert_eq!(a.conf_state, b.conf_state, "{at}");
}

fn differential_body<B: Bench>(b: &mut B, seed: u64) {
    let mut r = Rng(seed);
    let m = MemStorage::new();
    let mut s = RaftStorage::open(b.fresh()).unwrap();
    let cs0 = voters(&[1, 2, 3]);
    Store::set_conf_state(&m, &cs0).unwrap();
    s.set_conf_state(&cs0).unwrap();
    let mut term = 1;
    let mut snap_at = 0;
    for step in 0..120 {
        let (first, last) = (m.first_index().unwrap(), m.last_index().unwrap());
        let commit = m.initial_state().unwrap().hard_state.commit;
        match r.below(10) {
            0..=3 => {
                // Append at a random point from the first uncommitted index
                // (raft never rewrites committed entries).
                let lo = commit.max(first - 1) + 1;
                let start = lo + r.below(last + 2 - lo);
                if r.below(3) == 0 {
                    term += 1;
                }
                let n = 1 + r.below(6);
                let ents: Vec<Entry> = (start..start + n)
                    .map(|i| ent_data(i, term, &vec![step as u8; r.below(40) as usize]))
                    .collect();
                Store::append(&m, &ents).unwrap();
                s.append(&ents).unwrap();
            }
            4 | 5 => {
                let mut h = m.initial_state().unwrap().hard_state;
                h.term = term;
                h.vote = r.below(4);
                h.commit = (h.commit + r.below(5)).min(last);
                Store::set_hard_state(&m, &h).unwrap();
                s.set_hard_state(&h).unwrap();
            }
            6 => {
                // Snapshot at an applied (committed) index, then compact.
                if commit > snap_at && commit >= first {
                    let cs = voters(&[1, 2, 3, 4][..3 + r.below(2) as usize]);
                    s.create_snapshot(commit, &cs, b"sm").unwrap();
                    snap_at = commit;
                    // Not the whole log: MemStorage then falls back to the
                    // first index after its last *applied* snapshot.
                    let to = first + r.below(commit.min(last - 1) + 2 - first);
                    Store::compact(&m, to).unwrap();
                    s.compact(to).unwrap();
                }
            }
            7 => {
                let cs = voters(&[1, 2, 3, 4, 5][..1 + r.below(5) as usize]);
                Store::set_conf_state(&m, &cs).unwrap();
                s.set_conf_state(&cs).unwrap();
            }
            8 => {
                // A snapshot from the leader, past the log or inside it.
                let index = commit.max(first) + r.below(8);
                term += 1;
                let sn = snap(index, term, &[1, 2, 3]);
                let mr = Store::apply_snapshot(&m, sn.clone());
                assert_eq!(s.apply_snapshot(&sn), mr, "seed {seed} step {step}");
                snap_at = snap_at.max(index);
            }
            _ => {
                s.sync().unwrap();
                s = reopen(b, s);
            }
        }
        compare(&m, &s, step, seed);
    }
    s.sync().unwrap();
    let s = reopen(b, s);
    compare(&m, &s, usize::MAX, seed);
}

#[test]
fn differential_against_memstorage() {
    for seed in 1..=12u64 {
        differential_body(&mut MemBench, seed * 0x9e37_79b9);
    }
    for seed in 1..=4u64 {
        differential_body(&mut FileBench::new(), seed * 0x85eb_ca6b);
    }
}

// ----- device syncs per write -------------------------------------------------

/// Device syncs a single node issues for `writes` client writes, each
/// handled through the `Ready` loop of the module docs.
fn syncs_for(writes: usize) -> u64 {
    use blockwal::{Geometry, SimDevice, SimOptions, Wal};
    let cfg = SimOptions::new(Geometry {
        block_size: 4096,
        program_size: 1,
        block_count: 8,
        erase_value: None,
    })
    .max_blocks(64)
    .record(false);
    let store = RaftStorage::open(Wal::open(SimDevice::new(cfg)).unwrap()).unwrap();
    store.initialize_with_conf_state(voters(&[1])).unwrap();
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let config = Config {
        id: 1,
        ..Default::default()
    };
    let mut node = RawNode::new(&config, store.clone(), &logger).unwrap();
    node.campaign().unwrap();
    let step = |node: &mut RawNode<RaftStorage<SimDevice>>| {
        while node.has_ready() {
            let mut rd = node.ready();
            store.persist_ready(&rd).unwrap();
            let _ = rd.take_committed_entries();
            let mut light = node.advance(rd);
            if let Some(c) = light.commit_index() {
                store.commit_to(c).unwrap();
            }
            let _ = light.take_committed_entries();
            node.advance_apply();
        }
    };
    step(&mut node);
    for i in 0..writes {
        node.propose(vec![], format!("k{i}=v").into_bytes())
            .unwrap();
        step(&mut node);
    }
    assert_eq!(node.raft.raft_log.applied, writes as u64 + 1);
    drop(node);
    let dev = store.into_wal().unwrap().into_device();
    dev.stats().syncs
}

#[test]
fn one_device_sync_per_write_in_steady_state() {
    // The commit index rides along with the next state write: a write costs
    // the entries' sync only.
    let (a, b) = (syncs_for(10), syncs_for(40));
    assert_eq!(b - a, 30, "syncs: {a} for 10 writes, {b} for 40");
}
