//! openraft's own storage conformance suite (`openraft::testing::Suite`) on
//! the two log stores this binary writes itself, so the figures compare
//! blockwal with correct stores.

use openraft::testing::{StoreBuilder, Suite};

use crate::cluster::{NodeId, Sm, Tc};
use crate::mem_store::MemStore;
use crate::raft_log_store::RaftLogStore;

struct MemBuilder;

impl StoreBuilder<Tc, MemStore, Sm, ()> for MemBuilder {
    async fn build(&self) -> Result<((), MemStore, Sm), openraft::StorageError<NodeId>> {
        Ok(((), MemStore::default(), Sm::default()))
    }
}

struct RaftLogBuilder;

impl StoreBuilder<Tc, RaftLogStore, Sm, tempfile::TempDir> for RaftLogBuilder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, RaftLogStore, Sm), openraft::StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = RaftLogStore::open(dir.path(), None).map_err(|e| {
            openraft::StorageError::from_io_error(
                openraft::ErrorSubject::Store,
                openraft::ErrorVerb::Read,
                e,
            )
        })?;
        Ok((dir, store, Sm::default()))
    }
}

#[test]
fn suite_on_the_in_memory_store() {
    Suite::test_all(MemBuilder).expect("openraft's suite on MemStore");
}

#[test]
fn suite_on_the_raft_log_store() {
    Suite::test_all(RaftLogBuilder).expect("openraft's suite on RaftLogStore");
}
