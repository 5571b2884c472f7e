//! Operation histories: what each client invoked, when, and what came back (or that the
//! outcome is unknown).

use serde::{Deserialize, Serialize};

/// A register operation on one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegOp {
    /// Read the value (`value` is what was read when the read succeeded).
    Read {
        /// The value read.
        value: Option<i64>,
    },
    /// Write `value`.
    Write {
        /// The value written.
        value: i64,
    },
    /// Compare-and-set: `to` if the value is `from`. `applied` is the answer when known.
    Cas {
        /// Expected value.
        from: i64,
        /// New value.
        to: i64,
        /// True if it matched and wrote; false if it did not match.
        applied: Option<bool>,
    },
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// It happened, with the recorded result.
    Ok,
    /// It certainly did not happen (refused before being applied).
    Fail,
    /// It may or may not have happened (timeout, lost answer).
    Unknown,
}

/// One register operation in a history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegEntry {
    /// The client that ran it.
    pub process: usize,
    /// The register.
    pub key: u32,
    /// What it did.
    pub op: RegOp,
    /// Invocation time, ns since the run started.
    pub invoke: u64,
    /// Completion time, ns since the run started.
    pub complete: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// Read level, for reads (`linearizable`, `strong`).
    pub level: Option<String>,
}
