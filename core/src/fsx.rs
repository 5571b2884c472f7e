//! Durable file operations shared by the log and the state machine: fsync a directory, replace a
//! small file atomically.

use std::fs::File;
use std::io::Write as _;
use std::path::Path;

/// Make a directory's entries (creations, renames, removals) durable.
pub(crate) fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replace `dir/name` atomically and durably with `bytes`.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(name))?;
    fsync_dir(dir)
}
