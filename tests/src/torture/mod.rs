//! Fault injection in the manner of Jepsen: `hiqlite serve` processes on their own loopback
//! addresses, peers talking through proxies the harness controls (cut one or both directions,
//! delay), processes paused and killed; workloads record histories that checkers judge
//! (linearizability of registers, bank invariants, no lost acknowledged insert, lock holders
//! that never overlap).

pub mod checker;
pub mod history;
pub mod locks;
pub mod net;
pub mod nodes;
pub mod run;
pub mod workload;

pub use run::{run, Fault, Options, Summary, Workload};
