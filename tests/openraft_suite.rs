//! openraft's own storage conformance suite (`openraft::testing::Suite`)
//! against `blockwal::openraft::LogStore` on a file and in memory.
#![cfg(feature = "openraft")]

mod openraft_common;

use blockwal::openraft::{CommittedMode, LogStore, LogStoreOptions};
use blockwal::{FileDevice, MemDevice, RaftWal, Wal};
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use openraft_common::{MemSm, NodeId, Tc};

struct FileBuilder;

impl StoreBuilder<Tc, LogStore<Tc, FileDevice>, MemSm, tempfile::TempDir> for FileBuilder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore<Tc, FileDevice>, MemSm), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = LogStore::open_dir(dir.path())?;
        Ok((dir, store, MemSm::default()))
    }
}

/// A small in-memory device (4 KiB blocks, growable), deferred committed.
struct MemBuilder {
    opts: LogStoreOptions,
}

impl StoreBuilder<Tc, LogStore<Tc, MemDevice>, MemSm, ()> for MemBuilder {
    async fn build(&self) -> Result<((), LogStore<Tc, MemDevice>, MemSm), StorageError<NodeId>> {
        let wal = Wal::open(MemDevice::new(4096, 4, 1024)).expect("open");
        let store = LogStore::with_options(wal, self.opts)?;
        Ok(((), store, MemSm::default()))
    }
}

#[test]
fn suite_on_file_device() {
    Suite::test_all(FileBuilder).expect("openraft suite on FileDevice");
}

#[test]
fn suite_on_mem_device() {
    Suite::test_all(MemBuilder {
        opts: LogStoreOptions::default(),
    })
    .expect("openraft suite on MemDevice");
}

#[test]
fn suite_on_mem_device_deferred_committed() {
    Suite::test_all(MemBuilder {
        opts: LogStoreOptions::default().committed(CommittedMode::Deferred),
    })
    .expect("openraft suite on MemDevice, deferred committed");
}

#[test]
fn raft_wal_dir_is_reusable_by_the_store() {
    // A directory written through `RaftWal` opens as a store (empty log).
    let dir = tempfile::tempdir().unwrap();
    drop(RaftWal::open(dir.path()).unwrap());
    let store: LogStore<Tc, FileDevice> = LogStore::open_dir(dir.path()).unwrap();
    drop(store);
}
