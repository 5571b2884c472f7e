//! A node's own activity over the last minutes: counters bumped on the write and read paths
//! (writes asked of this node and their latency, reads asked of it), sampled once a second with
//! the query cache's and the state machine's counters into a ring of 10 minutes, and turned into
//! rates per second for the web console's charts.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::Node;

/// How many one-second samples are kept (10 minutes).
const KEEP: usize = 600;
/// Time between samples.
const EVERY: Duration = Duration::from_secs(1);

/// Counters of what clients asked of this node, bumped on the hot paths (relaxed atomics: one
/// add each, no lock).
#[derive(Default)]
pub(crate) struct Activity {
    /// Writes (`Node::write` calls: SQL writes, batches, migrations) that returned.
    writes: AtomicU64,
    /// Their summed latency from call to answer, in microseconds.
    write_us: AtomicU64,
    /// Reads (`Node::query` / `query_cached` calls).
    reads: AtomicU64,
    /// The samples, oldest first.
    samples: Mutex<VecDeque<Sample>>,
}

/// Cumulative counters at one moment.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    wall_ms: u64,
    writes: u64,
    write_us: u64,
    reads: u64,
    cache_hits: u64,
    cache_misses: u64,
    applied: u64,
}

/// One point of the series: rates over the second (or so) that ended at `t_ms`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Point {
    /// End of the interval, milliseconds since the Unix epoch.
    pub t_ms: u64,
    /// Writes answered per second.
    pub writes_per_s: f64,
    /// Reads answered per second.
    pub reads_per_s: f64,
    /// Log entries applied to SQLite per second.
    pub applied_per_s: f64,
    /// Share of cacheable reads answered from the query cache (none when there were none).
    pub cache_hit_rate: Option<f64>,
    /// Mean write latency in milliseconds (none when there were no writes).
    pub write_latency_ms: Option<f64>,
}

impl Activity {
    /// Count one write that took `took`.
    pub(crate) fn wrote(&self, took: Duration) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.write_us.fetch_add(took.as_micros().try_into().unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Count one read.
    pub(crate) fn read(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }

    fn push(&self, s: Sample) {
        let mut q = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() > KEEP {
            q.pop_front();
        }
        q.push_back(s);
    }

    /// Rates between consecutive samples whose interval ends after `since_ms` (wall clock).
    fn points(&self, since_ms: u64) -> Vec<Point> {
        let q = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let samples: Vec<Sample> = q.iter().copied().collect();
        drop(q);
        rates(&samples).into_iter().filter(|p| p.t_ms > since_ms).collect()
    }
}

/// Rates per second between each pair of consecutive samples.
fn rates(samples: &[Sample]) -> Vec<Point> {
    samples
        .windows(2)
        .filter_map(|w| {
            let (a, b) = (&w[0], &w[1]);
            let secs = b.at.saturating_duration_since(a.at).as_secs_f64();
            if secs <= 0.0 {
                return None;
            }
            let d = |x: u64, y: u64| y.saturating_sub(x);
            let writes = d(a.writes, b.writes);
            let looked = d(a.cache_hits, b.cache_hits) + d(a.cache_misses, b.cache_misses);
            Some(Point {
                t_ms: b.wall_ms,
                writes_per_s: writes as f64 / secs,
                reads_per_s: d(a.reads, b.reads) as f64 / secs,
                applied_per_s: d(a.applied, b.applied) as f64 / secs,
                cache_hit_rate: (looked > 0).then(|| d(a.cache_hits, b.cache_hits) as f64 / looked as f64),
                write_latency_ms: (writes > 0)
                    .then(|| d(a.write_us, b.write_us) as f64 / writes as f64 / 1000.0),
            })
        })
        .collect()
}

impl Node {
    /// The counters of what clients ask of this node.
    pub(crate) fn activity(&self) -> &Activity {
        &self.inner.activity
    }

    /// Sample the activity counters once a second until the node stops.
    pub(crate) fn spawn_series(&self) {
        let node = self.clone();
        let mut stop = self.inner.shutdown_tx.subscribe();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tick.tick() => {}
                }
                if *stop.borrow() {
                    return;
                }
                node.sample();
            }
        });
    }

    fn sample(&self) {
        let a = &self.inner.activity;
        let c = self.cache_stats();
        a.push(Sample {
            at: Instant::now(),
            wall_ms: super::now_ms(),
            writes: a.writes.load(Ordering::Relaxed),
            write_us: a.write_us.load(Ordering::Relaxed),
            reads: a.reads.load(Ordering::Relaxed),
            cache_hits: c.hits,
            cache_misses: c.misses,
            applied: self.inner.writer.entries_applied.load(Ordering::Relaxed),
        });
    }

    /// This node's activity over the last 10 minutes, one point a second, after `since_ms`
    /// (milliseconds since the Unix epoch; 0 for all of it).
    pub(crate) fn activity_series(&self, since_ms: u64) -> Vec<Point> {
        self.inner.activity.points(since_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(
        at: Instant,
        secs: u64,
        writes: u64,
        write_us: u64,
        reads: u64,
        hits: u64,
        misses: u64,
    ) -> Sample {
        Sample {
            at: at + Duration::from_secs(secs),
            wall_ms: 1_000 * secs,
            writes,
            write_us,
            reads,
            cache_hits: hits,
            cache_misses: misses,
            applied: 2 * writes,
        }
    }

    #[test]
    fn rates_between_samples() {
        let t = Instant::now();
        let s = [
            sample(t, 0, 0, 0, 0, 0, 0),
            sample(t, 1, 10, 20_000, 100, 3, 1),
            sample(t, 3, 10, 20_000, 300, 3, 1),
        ];
        let p = rates(&s);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].t_ms, 1_000);
        assert_eq!(p[0].writes_per_s, 10.0);
        assert_eq!(p[0].applied_per_s, 20.0);
        assert_eq!(p[0].reads_per_s, 100.0);
        assert_eq!(p[0].cache_hit_rate, Some(0.75));
        assert_eq!(p[0].write_latency_ms, Some(2.0));
        // Two seconds without writes or cacheable reads: rates per second, no latency, no rate.
        assert_eq!(p[1].reads_per_s, 100.0);
        assert_eq!((p[1].writes_per_s, p[1].write_latency_ms, p[1].cache_hit_rate), (0.0, None, None));
    }

    #[test]
    fn ring_keeps_the_last_minutes_and_filters_by_time() {
        let a = Activity::default();
        let t = Instant::now();
        for i in 0..(KEEP as u64 + 50) {
            a.push(sample(t, i, i, i, i, 0, 0));
        }
        let all = a.points(0);
        assert_eq!(all.len(), KEEP);
        let last = all.last().map(|p| p.t_ms).unwrap_or_default();
        assert_eq!(a.points(last - 2_000).len(), 2);
        a.wrote(Duration::from_millis(3));
        a.read();
        assert_eq!(a.writes.load(Ordering::Relaxed), 1);
        assert_eq!(a.write_us.load(Ordering::Relaxed), 3_000);
        assert_eq!(a.reads.load(Ordering::Relaxed), 1);
    }
}
