//! The query cache: `SELECT` results keyed by SQL text and exact parameters, with LRU eviction
//! (the `lru` crate) by entry count and total bytes, a TTL, and invalidation by table.
//!
//! Correctness rests on two orderings:
//! - the writer invalidates the tables a run of entries changed *after* its COMMIT and *before* it
//!   reports the entries applied, so a read that waits for an applied index never sees a result
//!   from before it;
//! - a reader notes the invalidation epoch before it runs the query and stores the result only if
//!   none of the tables it read was invalidated since, so a result computed from data a concurrent
//!   write is replacing is never stored.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::value::{Params, Rows};

/// Cache settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Off: every read goes to SQLite.
    pub enabled: bool,
    /// Most cached results.
    pub max_entries: usize,
    /// Most bytes of cached results (approximate).
    pub max_bytes: usize,
    /// Time to live of an entry unless a call says otherwise, in milliseconds.
    pub ttl_ms: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { enabled: true, max_entries: 10_000, max_bytes: 64 * 1024 * 1024, ttl_ms: 60_000 }
    }
}

/// Counters and sizes of the cache.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheStats {
    /// Reads answered from the cache.
    pub hits: u64,
    /// Cacheable reads that went to SQLite.
    pub misses: u64,
    /// Entries evicted to stay under `max_bytes`.
    pub evictions_size: u64,
    /// Entries evicted to stay under `max_entries`.
    pub evictions_count: u64,
    /// Entries dropped because their TTL passed.
    pub evictions_ttl: u64,
    /// Entries dropped because a write changed a table they read (or the schema changed).
    pub invalidations: u64,
    /// Entries now.
    pub entries: u64,
    /// Bytes now (approximate).
    pub bytes: u64,
}

#[derive(Hash, PartialEq, Eq)]
struct Key {
    sql: String,
    params: Vec<u8>,
}

struct Entry {
    rows: Arc<Rows>,
    tables: Vec<String>,
    expires: Instant,
    bytes: usize,
}

/// What a query reads, learned once per SQL text with the authorizer.
#[derive(Debug, Clone)]
pub(crate) struct QueryInfo {
    pub cacheable: bool,
    pub tables: Vec<String>,
}

struct Inner {
    lru: lru::LruCache<Arc<Key>, Entry>,
    by_table: HashMap<String, HashSet<Arc<Key>>>,
    /// Epoch at which each table was last invalidated.
    invalidated_at: HashMap<String, u64>,
    /// Epoch at which everything was last invalidated.
    all_invalidated_at: u64,
    epoch: u64,
    bytes: usize,
    stats: CacheStats,
    info: HashMap<String, QueryInfo>,
}

/// The per-node query cache. All methods are cheap and thread-safe.
pub(crate) struct QueryCache {
    cfg: CacheConfig,
    inner: Mutex<Inner>,
}

fn key_of(sql: &str, params: &Params) -> Key {
    Key { sql: sql.to_owned(), params: postcard::to_stdvec(params).unwrap_or_default() }
}

impl QueryCache {
    pub(crate) fn new(cfg: CacheConfig) -> Self {
        let cap = NonZeroUsize::new(cfg.max_entries.max(1)).unwrap_or(NonZeroUsize::MIN);
        QueryCache {
            inner: Mutex::new(Inner {
                lru: lru::LruCache::new(cap),
                by_table: HashMap::new(),
                invalidated_at: HashMap::new(),
                all_invalidated_at: 0,
                epoch: 0,
                bytes: 0,
                stats: CacheStats::default(),
                info: HashMap::new(),
            }),
            cfg,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn enabled(&self) -> bool {
        self.cfg.enabled
    }

    pub(crate) fn default_ttl(&self) -> Duration {
        Duration::from_millis(self.cfg.ttl_ms)
    }

    /// The current epoch; take it before running a query whose result may be stored.
    pub(crate) fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    pub(crate) fn info(&self, sql: &str) -> Option<QueryInfo> {
        self.lock().info.get(sql).cloned()
    }

    /// Remember what `sql` reads, unless the schema changed since `epoch` (the info may be stale).
    pub(crate) fn learn(&self, sql: &str, info: QueryInfo, epoch: u64) {
        let mut g = self.lock();
        if g.all_invalidated_at > epoch {
            return;
        }
        if g.info.len() >= 10_000 {
            g.info.clear();
        }
        g.info.insert(sql.to_owned(), info);
    }

    fn remove_entry(g: &mut Inner, key: &Arc<Key>, e: &Entry) {
        g.bytes -= e.bytes;
        for t in &e.tables {
            if let Some(set) = g.by_table.get_mut(t) {
                set.remove(key);
                if set.is_empty() {
                    g.by_table.remove(t);
                }
            }
        }
    }

    /// A live cached result, if any.
    pub(crate) fn get(&self, sql: &str, params: &Params) -> Option<Arc<Rows>> {
        let key = key_of(sql, params);
        let mut g = self.lock();
        let now = Instant::now();
        match g.lru.get(&key) {
            Some(e) if e.expires > now => {
                let rows = e.rows.clone();
                g.stats.hits += 1;
                Some(rows)
            }
            Some(_) => {
                if let Some((k, e)) = g.lru.pop_entry(&key) {
                    Self::remove_entry(&mut g, &k, &e);
                }
                g.stats.evictions_ttl += 1;
                g.stats.misses += 1;
                None
            }
            None => {
                g.stats.misses += 1;
                None
            }
        }
    }

    /// Store a result computed from data read at or after `epoch`, unless a table it read was
    /// invalidated since then.
    pub(crate) fn put(
        &self,
        sql: &str,
        params: &Params,
        tables: &[String],
        rows: Arc<Rows>,
        ttl: Duration,
        epoch: u64,
    ) {
        let bytes = rows.size() + sql.len() + 64;
        if bytes > self.cfg.max_bytes {
            return;
        }
        // Computed before any state changes: an absurd TTL must not leave the cache half-updated.
        let now = Instant::now();
        let expires = now.checked_add(ttl).unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
        let mut g = self.lock();
        if g.all_invalidated_at > epoch
            || tables.iter().any(|t| g.invalidated_at.get(t).is_some_and(|e| *e > epoch))
        {
            return;
        }
        let key = Arc::new(key_of(sql, params));
        if let Some((k, e)) = g.lru.pop_entry(&key) {
            Self::remove_entry(&mut g, &k, &e);
        }
        while g.bytes + bytes > self.cfg.max_bytes {
            match g.lru.pop_lru() {
                Some((k, e)) => {
                    Self::remove_entry(&mut g, &k, &e);
                    g.stats.evictions_size += 1;
                }
                None => break,
            }
        }
        if g.lru.len() >= self.cfg.max_entries.max(1) {
            if let Some((k, e)) = g.lru.pop_lru() {
                Self::remove_entry(&mut g, &k, &e);
                g.stats.evictions_count += 1;
            }
        }
        for t in tables {
            g.by_table.entry(t.clone()).or_default().insert(key.clone());
        }
        g.bytes += bytes;
        g.lru.put(key, Entry { rows, tables: tables.to_vec(), expires, bytes });
    }

    /// Drop every result that read one of `tables` (lower-case names).
    pub(crate) fn invalidate_tables<'a>(&self, tables: impl IntoIterator<Item = &'a String>) {
        let mut g = self.lock();
        g.epoch += 1;
        let epoch = g.epoch;
        for t in tables {
            g.invalidated_at.insert(t.clone(), epoch);
            if let Some(keys) = g.by_table.remove(t) {
                for k in keys {
                    if let Some((k, e)) = g.lru.pop_entry(&k) {
                        Self::remove_entry(&mut g, &k, &e);
                        g.stats.invalidations += 1;
                    }
                }
            }
        }
    }

    /// Drop everything (schema change, load, snapshot install, `cache_clear`).
    pub(crate) fn invalidate_all(&self) {
        let mut g = self.lock();
        g.epoch += 1;
        g.all_invalidated_at = g.epoch;
        let n = g.lru.len() as u64;
        g.stats.invalidations += n;
        g.lru.clear();
        g.by_table.clear();
        g.info.clear();
        g.bytes = 0;
    }

    pub(crate) fn stats(&self) -> CacheStats {
        let g = self.lock();
        let mut s = g.stats.clone();
        s.entries = g.lru.len() as u64;
        s.bytes = g.bytes as u64;
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    fn rows(n: i64, pad: usize) -> Arc<Rows> {
        Arc::new(Rows {
            columns: vec!["x".into()],
            types: vec![String::new()],
            rows: vec![vec![Value::Integer(n), Value::Text("p".repeat(pad))]],
        })
    }
    fn t(name: &str) -> Vec<String> {
        vec![name.to_string()]
    }
    const TTL: Duration = Duration::from_secs(60);

    #[test]
    fn hit_after_miss_ttl_and_exact_keys() {
        let c = QueryCache::new(CacheConfig::default());
        let p = Params::Positional(vec![Value::Integer(1)]);
        assert!(c.get("SELECT ?", &p).is_none());
        c.put("SELECT ?", &p, &t("a"), rows(1, 0), TTL, c.epoch());
        assert_eq!(c.get("SELECT ?", &p).map(|r| r.rows[0][0].clone()), Some(Value::Integer(1)));
        // Same value, other type: another key.
        assert!(c.get("SELECT ?", &Params::Positional(vec![Value::Real(1.0)])).is_none());
        c.put("SELECT 2", &Params::None, &t("a"), rows(2, 0), Duration::from_millis(1), c.epoch());
        std::thread::sleep(Duration::from_millis(5));
        assert!(c.get("SELECT 2", &Params::None).is_none());
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.evictions_ttl, s.entries), (1, 3, 1, 1));
    }

    #[test]
    fn evicts_by_count_and_by_bytes_in_lru_order() {
        let c = QueryCache::new(CacheConfig { max_entries: 2, ..CacheConfig::default() });
        for q in ["q1", "q2"] {
            c.put(q, &Params::None, &t("a"), rows(1, 0), TTL, c.epoch());
        }
        assert!(c.get("q1", &Params::None).is_some()); // q2 is now least recently used
        c.put("q3", &Params::None, &t("a"), rows(3, 0), TTL, c.epoch());
        assert!(c.get("q2", &Params::None).is_none());
        assert!(c.get("q1", &Params::None).is_some() && c.get("q3", &Params::None).is_some());
        assert_eq!(c.stats().evictions_count, 1);

        let c = QueryCache::new(CacheConfig { max_bytes: 3_000, ..CacheConfig::default() });
        for q in ["b1", "b2", "b3"] {
            c.put(q, &Params::None, &t("a"), rows(1, 800), TTL, c.epoch());
        }
        assert!(c.get("b1", &Params::None).is_some());
        c.put("b4", &Params::None, &t("a"), rows(1, 800), TTL, c.epoch());
        assert!(c.get("b2", &Params::None).is_none(), "the least recently used goes first");
        assert!(c.get("b1", &Params::None).is_some());
        assert!(c.stats().evictions_size >= 1 && c.stats().bytes <= 3_000);
    }

    #[test]
    fn invalidation_is_exact_and_races_are_not_stored() {
        let c = QueryCache::new(CacheConfig::default());
        c.put("qa", &Params::None, &t("a"), rows(1, 0), TTL, c.epoch());
        c.put("qb", &Params::None, &t("b"), rows(1, 0), TTL, c.epoch());
        c.put("qab", &Params::None, &["a".into(), "b".into()], rows(1, 0), TTL, c.epoch());
        c.invalidate_tables(&t("a"));
        assert!(c.get("qa", &Params::None).is_none() && c.get("qab", &Params::None).is_none());
        assert!(c.get("qb", &Params::None).is_some(), "a write to a keeps results that read only b");
        // A read that began before a write to its table is not stored after it.
        let before = c.epoch();
        c.invalidate_tables(&t("b"));
        c.put("qb2", &Params::None, &t("b"), rows(1, 0), TTL, before);
        assert!(c.get("qb2", &Params::None).is_none());
        c.put("qa2", &Params::None, &t("a"), rows(1, 0), TTL, before);
        assert!(c.get("qa2", &Params::None).is_some(), "an unrelated write does not block storing");
        c.invalidate_all();
        assert_eq!(c.stats().entries, 0);
    }
}
