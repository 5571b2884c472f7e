import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Database, HiqliteError } from 'hiqlite'

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hiqlite-quickstart-'))
// One embedded node (a single-node cluster); add `peers` for more. Port 0 picks free ports.
const db = await Database.open({ node: { dataDir, raftAddr: '127.0.0.1:0', apiAddr: '127.0.0.1:0' } })
try {
  await db.exec('CREATE TABLE todo (id INTEGER PRIMARY KEY, title TEXT UNIQUE, done INTEGER, data BLOB)')
  const add = db.prepare('INSERT INTO todo (title, done, data) VALUES (?, ?, ?)')
  const { lastInsertRowid } = await add.run('write docs', 0, Buffer.from('notes'))
  await db.batch(
    [
      { sql: 'INSERT INTO todo (title, done) VALUES (@title, 0)', args: { title: 'ship it' } },
      { sql: 'UPDATE todo SET done = 1 WHERE id = ?', args: [lastInsertRowid] },
    ],
    { transaction: true },
  )
  for await (const todo of db.prepare('SELECT id, title, done FROM todo ORDER BY id').iterate()) {
    console.log(`${todo.id}. [${todo.done ? 'x' : ' '}] ${todo.title}`)
  }
  const fresh = await db.query('SELECT count(*) AS n FROM todo', [], { consistency: 'linearizable' })
  console.log(`${fresh[0].n} todos`)
  try {
    await add.run('ship it', 0, null)
  } catch (e) {
    if (!(e instanceof HiqliteError)) throw e
    console.log(`refused: ${e.code}`) // SQLITE_CONSTRAINT_UNIQUE
  }
} finally {
  await db.close()
  fs.rmSync(dataDir, { recursive: true, force: true })
}
