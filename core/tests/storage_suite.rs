//! openraft's storage conformance suite against the real log store and SQLite state machine.

use hiqlite::storage::{LogStore, StateMachine, StorageError, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageIOError;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let io = |e: &dyn std::fmt::Display| -> StorageError {
            StorageIOError::write(&std::io::Error::other(e.to_string())).into()
        };
        let dir = tempfile::tempdir().map_err(|e| io(&e))?;
        let (log, sm) = hiqlite::storage::open(dir.path()).map_err(|e| io(&e))?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() -> Result<(), StorageError> {
    let _ = tracing_subscriber::fmt().with_env_filter("info").with_test_writer().try_init();
    Suite::test_all(Builder)
}
