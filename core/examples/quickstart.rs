//! Quickstart: embed a one-node hiqlite database, write, read, map rows with serde.
//! Run with `cargo run -p hiqlite --example quickstart`.

use std::time::Duration;

use hiqlite::{params, Client, NodeConfig};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Todo {
    id: i64,
    title: String,
    done: bool,
}

#[tokio::main]
async fn main() -> hiqlite::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = Client::start(NodeConfig {
        data_dir: dir.path().into(),
        // Port 0: let the OS pick free ports, so the example never collides with anything.
        raft_addr: "127.0.0.1:0".into(),
        api_addr: "127.0.0.1:0".into(),
        ..NodeConfig::default()
    })
    .await?;
    db.wait_for_leader(Duration::from_secs(10)).await?;

    db.execute("CREATE TABLE todo (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done INTEGER NOT NULL)", ())
        .await?;
    let r = db.execute("INSERT INTO todo (title, done) VALUES (?, ?)", params!["write docs", false]).await?;
    println!("inserted row {}", r.last_insert_id);
    db.transaction([
        ("INSERT INTO todo (title, done) VALUES (?, ?)", params!["ship it", false]),
        ("UPDATE todo SET done = 1 WHERE id = ?", params![r.last_insert_id]),
    ])
    .await?;

    // An interactive transaction: its reads see its writes; it commits as one log entry.
    let tx = db.begin().await?;
    tx.execute("INSERT INTO todo (title, done) VALUES (?, ?)", params!["review", false]).await?;
    let open: Vec<Todo> = tx.query_as("SELECT id, title, done FROM todo WHERE done = 0", ()).await?;
    tx.execute("UPDATE todo SET title = title || ' (' || ? || ' open)'", params![open.len() as i64]).await?;
    tx.commit().await?;

    let todos: Vec<Todo> = db.query_as("SELECT id, title, done FROM todo ORDER BY id", ()).await?;
    for t in &todos {
        println!("{} {:<12} done={}", t.id, t.title, t.done);
    }
    assert_eq!(todos.len(), 3);
    assert!(todos[0].done);

    let err = db
        .execute("INSERT INTO todo (title) VALUES ('no done flag')", ())
        .await
        .expect_err("a missing NOT NULL column is refused");
    println!("constraint errors are typed: {err}");

    db.shutdown().await?;
    Ok(())
}
