//! Cluster status calls on a database handle: leader, node info, status JSON and query cache
//! counters.

use std::ffi::{c_char, c_int};
use std::time::Duration;

use engine::{Client, Status};

use crate::db::{hiqlite_db, put, with_db};
use crate::error::{to_c_string, FfiError, FfiResult, HIQLITE_MISUSE, HIQLITE_OK};
use crate::runtime::block_on;

/// The status of the embedded node, or of the node a remote client talks to.
fn status(client: &Client) -> FfiResult<Status> {
    Ok(block_on(client.status())??)
}

/// `*is_leader` = 1 when the node behind the handle is the cluster's leader (for a remote
/// client: the node it talks to), else 0.
///
/// # Safety
/// `db` is NULL or a live handle; `is_leader` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_is_leader(db: *const hiqlite_db, is_leader: *mut c_int) -> c_int {
    with_db(db, |d| {
        if is_leader.is_null() {
            return Err(FfiError::misuse("is_leader out-pointer is NULL"));
        }
        let st = status(&d.client)?;
        // SAFETY: non-NULL, writable per the contract.
        unsafe { *is_leader = c_int::from(st.leader == Some(st.id)) };
        Ok(HIQLITE_OK)
    })
}

/// The current leader as the node behind the handle knows it: `*leader_id` (0 when no leader is
/// known) and `*api_addr` (its client API address `host:port`, a string owned by the caller, free
/// it with `hiqlite_free`; NULL when unknown). Either out-pointer may be NULL.
///
/// # Safety
/// `db` is NULL or a live handle; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_leader(
    db: *const hiqlite_db,
    leader_id: *mut u64,
    api_addr: *mut *mut c_char,
) -> c_int {
    with_db(db, |d| {
        // SAFETY: caller's contract.
        unsafe {
            put(leader_id, 0);
            put(api_addr, std::ptr::null_mut());
        }
        let st = status(&d.client)?;
        if let Some(id) = st.leader {
            // SAFETY: caller's contract.
            unsafe {
                put(leader_id, id);
                if !api_addr.is_null() {
                    if let Some(m) = st.members.get(&id) {
                        *api_addr = to_c_string(&m.api_addr);
                    }
                }
            }
        }
        Ok(HIQLITE_OK)
    })
}

/// Wait until a leader is known, up to `timeout_ms`; `*leader_id` (may be NULL) receives its id.
/// `HIQLITE_NO_LEADER` when none was elected in time.
///
/// # Safety
/// `db` is NULL or a live handle; `leader_id` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_wait_for_leader(
    db: *const hiqlite_db,
    timeout_ms: u64,
    leader_id: *mut u64,
) -> c_int {
    with_db(db, |d| {
        // SAFETY: caller's contract.
        unsafe { put(leader_id, 0) };
        let id = block_on(d.client.wait_for_leader(Duration::from_millis(timeout_ms)))??;
        // SAFETY: caller's contract.
        unsafe { put(leader_id, id) };
        Ok(HIQLITE_OK)
    })
}

/// The node behind the handle: its id and the addresses it listens on (`host:port`, with the
/// real port when 0 was configured). Strings are owned by the caller (free them with
/// `hiqlite_free`); any out-pointer may be NULL.
///
/// # Safety
/// `db` is NULL or a live handle; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_node_info(
    db: *const hiqlite_db,
    node_id: *mut u64,
    raft_addr: *mut *mut c_char,
    api_addr: *mut *mut c_char,
) -> c_int {
    with_db(db, |d| {
        let st = status(&d.client)?;
        // SAFETY: caller's contract.
        unsafe {
            put(node_id, st.id);
            put(
                raft_addr,
                if raft_addr.is_null() { std::ptr::null_mut() } else { to_c_string(&st.raft_addr) },
            );
            put(api_addr, if api_addr.is_null() { std::ptr::null_mut() } else { to_c_string(&st.api_addr) });
        }
        Ok(HIQLITE_OK)
    })
}

/// The status of the node behind the handle as JSON (id, state, leader, term, applied_index,
/// members, voters, addresses, health...). `*json` is owned by the caller (free it with
/// `hiqlite_free`); NULL on error.
///
/// # Safety
/// `db` is NULL or a live handle; `json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_status_json(db: *const hiqlite_db, json: *mut *mut c_char) -> c_int {
    with_db(db, |d| {
        if json.is_null() {
            return Err(FfiError::misuse("json out-pointer is NULL"));
        }
        // SAFETY: non-NULL, writable per the contract.
        unsafe { *json = std::ptr::null_mut() };
        let st = status(&d.client)?;
        let text = serde_json::to_string(&st)
            .map_err(|e| FfiError::new(crate::error::HIQLITE_ERROR, e.to_string()))?;
        // SAFETY: as above.
        unsafe { *json = to_c_string(&text) };
        Ok(HIQLITE_OK)
    })
}

/// Counters of a node's query cache (`hiqlite_cache_stats`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct hiqlite_cache_counters {
    /// Reads answered from the cache.
    pub hits: u64,
    /// Cacheable reads that had to run.
    pub misses: u64,
    /// Entries evicted to stay under the byte limit.
    pub evictions_size: u64,
    /// Entries evicted to stay under the entry limit.
    pub evictions_count: u64,
    /// Entries dropped because their TTL passed.
    pub evictions_ttl: u64,
    /// Entries dropped because a write changed a table they read.
    pub invalidations: u64,
    /// Entries now.
    pub entries: u64,
    /// Approximate bytes now.
    pub bytes: u64,
}

/// Fill `*stats` with the embedded node's query cache counters (`HIQLITE_MISUSE` for a remote
/// client).
///
/// # Safety
/// `db` is NULL or a live handle; `stats` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_cache_stats(
    db: *const hiqlite_db,
    stats: *mut hiqlite_cache_counters,
) -> c_int {
    with_db(db, |d| {
        if stats.is_null() {
            return Err(FfiError::misuse("stats out-pointer is NULL"));
        }
        let c = d.client.cache_stats().ok_or_else(|| {
            FfiError::new(
                HIQLITE_MISUSE,
                "a remote client has no query cache of its own (the server's is in its /metrics)",
            )
        })?;
        let out = hiqlite_cache_counters {
            hits: c.hits,
            misses: c.misses,
            evictions_size: c.evictions_size,
            evictions_count: c.evictions_count,
            evictions_ttl: c.evictions_ttl,
            invalidations: c.invalidations,
            entries: c.entries,
            bytes: c.bytes,
        };
        // SAFETY: non-NULL, writable per the contract.
        unsafe { *stats = out };
        Ok(HIQLITE_OK)
    })
}
