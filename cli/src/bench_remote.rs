//! `hiqlite bench --remote`: the remote `Client` over HTTP against raw keep-alive HTTP/1.1
//! requests doing the same work (what wrk or a curl loop would do), so the client's own cost is
//! visible. Point queries go to one node at `level=none`; writes go to the leader.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hiqlite::{params, Client, Consistency};

use crate::bench::{timed, Sample};

const ROWS: i64 = 10_000;
const CONCURRENCY: [usize; 3] = [1, 16, 64];

/// Host and port of an `http://host:port` URL (raw requests are plain HTTP only).
fn host_port(url: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("--remote raw comparison needs http:// URLs, got {url}"))?;
    Ok(rest.trim_end_matches('/').to_string())
}

pub(crate) async fn run(urls: &[String], secs: f64) -> anyhow::Result<()> {
    let db = Client::remote(urls.iter().cloned()).build()?;
    let leader_id = db.wait_for_leader(Duration::from_secs(30)).await?;
    let nodes = db.nodes().await?;
    let leader = nodes
        .iter()
        .find(|n| n.id == leader_id)
        .map(|n| n.api_addr.clone())
        .ok_or_else(|| anyhow::anyhow!("leader {leader_id} is not among the nodes"))?;
    let reader = urls.first().cloned().unwrap_or_else(|| leader.clone());
    println!("remote client vs raw HTTP/1.1 keep-alive; writes to the leader {leader}, reads from {reader}");
    println!("{:<34} {:>12} {:>9} {:>9}   path", "scenario", "ops/s", "p50 ms", "p99 ms");

    db.execute("DROP TABLE IF EXISTS rbench", ()).await?;
    db.execute("CREATE TABLE rbench (id INTEGER PRIMARY KEY, k INTEGER, v TEXT)", ()).await?;
    let stmts = (0..ROWS)
        .map(|i| hiqlite::Statement::new("INSERT INTO rbench (k, v) VALUES (?, ?)", params![i, "row"]));
    db.transaction(stmts).await?;
    // Point reads at `none` on `reader`: the client picks the nearest node, so pin it there.
    let local = Client::remote([reader.clone()]).discover(false).consistency(Consistency::Local).build()?;
    local.query("SELECT 1", ()).await?;

    let select_sql = "SELECT k, v FROM rbench WHERE id = ?";
    for conc in CONCURRENCY {
        let c = local.clone();
        let s = timed(conc, secs, move |i| {
            let c = c.clone();
            async move {
                let id = (i.wrapping_mul(2_654_435_761) % ROWS as u64) as i64 + 1;
                c.query(select_sql, params![id]).await?;
                Ok(())
            }
        })
        .await?;
        s.print(&format!("point select, concurrency {conc}"), "hiqlite::Client (remote)");
        let reqs: Vec<Vec<u8>> = (1..=1000)
            .map(|id| request(&reader, "/db/query?level=none", &format!(r#"[["{select_sql}", {id}]]"#)))
            .collect::<anyhow::Result<_>>()?;
        let s = raw(conc, secs, &host_port(&reader)?, reqs).await?;
        s.print(&format!("point select, concurrency {conc}"), "raw HTTP");
    }
    for conc in CONCURRENCY {
        let c = db.clone();
        let s = timed(conc, secs, move |i| {
            let c = c.clone();
            async move {
                c.execute("INSERT INTO rbench (k, v) VALUES (?, ?)", params![i as i64, "payload-0123456789"])
                    .await?;
                Ok(())
            }
        })
        .await?;
        s.print(&format!("insert, concurrency {conc}"), "hiqlite::Client (remote)");
        let reqs = vec![request(
            &leader,
            "/db/execute",
            r#"[["INSERT INTO rbench (k, v) VALUES (?, ?)", 1, "payload-0123456789"]]"#,
        )?];
        let s = raw(conc, secs, &host_port(&leader)?, reqs).await?;
        s.print(&format!("insert, concurrency {conc}"), "raw HTTP");
    }
    db.execute("DROP TABLE rbench", ()).await?;
    Ok(())
}

fn request(url: &str, path: &str, body: &str) -> anyhow::Result<Vec<u8>> {
    let host = host_port(url)?;
    Ok(format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes())
}

/// `conc` connections, each sending its requests back to back for `secs`, on blocking threads
/// (like wrk: no client library in the way).
async fn raw(conc: usize, secs: f64, addr: &str, reqs: Vec<Vec<u8>>) -> anyhow::Result<Sample> {
    let reqs = Arc::new(reqs);
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..conc {
        let (reqs, addr) = (reqs.clone(), addr.to_string());
        tasks.push(tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<u32>> {
            let mut s = TcpStream::connect(&addr)?;
            s.set_nodelay(true)?;
            let mut lat = Vec::new();
            let mut buf = Vec::with_capacity(8192);
            let mut i = w;
            while Instant::now() < end {
                let t = Instant::now();
                s.write_all(&reqs[i % reqs.len()])?;
                read_response(&mut s, &mut buf)?;
                lat.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                i += 1;
            }
            Ok(lat)
        }));
    }
    let mut lat_us = Vec::new();
    for t in tasks {
        lat_us.extend(t.await??);
    }
    Ok(Sample { ops: lat_us.len() as u64, secs: start.elapsed().as_secs_f64(), lat_us })
}

/// Read one HTTP/1.1 response with a Content-Length body; fail unless it is a 200 without a
/// per-statement error.
fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<()> {
    buf.clear();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| anyhow::anyhow!("response without Content-Length"))?;
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk)?;
                anyhow::ensure!(n > 0, "connection closed mid-response");
                buf.extend_from_slice(&chunk[..n]);
            }
            anyhow::ensure!(head.starts_with("http/1.1 200"), "HTTP error: {head}");
            let body = &buf[end + 4..end + 4 + len];
            anyhow::ensure!(
                !body.windows(8).any(|w| w == b"\"error\":"),
                "statement failed: {}",
                String::from_utf8_lossy(body)
            );
            return Ok(());
        }
        let n = s.read(&mut chunk)?;
        anyhow::ensure!(n > 0, "connection closed before the response");
        buf.extend_from_slice(&chunk[..n]);
    }
}
