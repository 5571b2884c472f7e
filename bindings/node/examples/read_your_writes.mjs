import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Database } from 'hiqlite'

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hiqlite-ryw-'))
// readYourWrites: every `local` read first waits until this node applied the database's writes.
const db = await Database.open({
  node: { dataDir, raftAddr: '127.0.0.1:0', apiAddr: '127.0.0.1:0' },
  readYourWrites: true,
})
try {
  await db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)')
  const { logIndex } = await db.execute('INSERT INTO notes (body) VALUES (?)', ['hello'])
  console.log(db.lastWriteIndex === logIndex) // true
  // Any other database (another node, a remote client) reads the write at its index.
  const rows = await db.query('SELECT body FROM notes', [], { minIndex: logIndex })
  console.log(rows[0].body) // hello
} finally {
  await db.close()
  fs.rmSync(dataDir, { recursive: true, force: true })
}
