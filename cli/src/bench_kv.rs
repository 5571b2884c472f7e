//! `hiqlite bench --only kv`: the coordination primitives: key/value puts (through the log, as
//! durable as an INSERT), local gets (from the in-memory mirror), counter adds, and lock
//! acquire + release round trips.

use crate::bench::timed;

/// Run the key/value and counter scenarios against `db` (the leader's client).
pub(crate) async fn run(db: &hiqlite::Client, secs: f64, mode: &str) -> anyhow::Result<()> {
    for conc in [1usize, 16] {
        let c = db.clone();
        let s = timed(conc, secs, move |i| {
            let c = c.clone();
            async move {
                c.kv_put("bench", &format!("k{}", i % 1000), b"value-0123456789", None).await?;
                Ok(())
            }
        })
        .await?;
        s.print(&format!("kv put, concurrency {conc}"), mode);
    }
    for conc in [1usize, 2] {
        let c = db.clone();
        let s = timed(conc, secs, move |i| {
            let c = c.clone();
            async move {
                c.kv_get("bench", &format!("k{}", i % 1000)).await?;
                Ok(())
            }
        })
        .await?;
        s.print(&format!("kv get, concurrency {conc}"), "local read (in-memory mirror)");
    }
    let c = db.clone();
    let s = timed(16, secs, move |_| {
        let c = c.clone();
        async move {
            c.counter_add("bench", 1).await?;
            Ok(())
        }
    })
    .await?;
    s.print("counter add, concurrency 16", mode);
    for conc in [1usize, 16] {
        let c = db.clone();
        // Each worker its own lock: a round trip is one acquire and one release entry.
        let s = timed(conc, secs, move |i| {
            let c = c.clone();
            async move {
                let name = format!("bench-{}", i % conc as u64);
                let g = c
                    .lock(&name, std::time::Duration::from_secs(10), std::time::Duration::from_secs(10))
                    .await?;
                g.release().await?;
                Ok(())
            }
        })
        .await?;
        s.print(&format!("lock+release, concurrency {conc}"), mode);
    }
    Ok(())
}
