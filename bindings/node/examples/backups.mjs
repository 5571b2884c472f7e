import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Database } from 'hiqlite'

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hiqlite-backups-'))
const db = await Database.open({ node: { dataDir, raftAddr: '127.0.0.1:0', apiAddr: '127.0.0.1:0' } })
try {
  // Ordered migrations, each applied once cluster-wide (or a folder: db.migrate('migrations/')
  // with 1_init.sql, 2_more.sql, ...).
  const applied = await db.migrate([
    { id: 1, name: 'init', sql: 'CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)' },
    { id: 2, name: 'seed', sql: "INSERT INTO notes (body) VALUES ('first')" },
  ])
  console.log(applied) // 2
  // A consistent online backup, then a restore into the running cluster.
  const file = path.join(dataDir, 'notes-backup.db')
  console.log((await db.backup(file)) > 0) // the log index it holds
  await db.exec('DELETE FROM notes')
  await db.restore(file)
  console.log((await db.query('SELECT body FROM notes'))[0].body) // first
} finally {
  await db.close()
  fs.rmSync(dataDir, { recursive: true, force: true })
}
