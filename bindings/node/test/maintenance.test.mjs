// Backups, restores and migrations from Node: migrations from an array and from a folder of
// numbered .sql files (applied once), a backup with its log index, a restore that brings the
// rows back and drops a table added since, the same through a remote client, and bad input.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'

import { Database, HiqliteError } from '../index.js'
import { openSingle, tempDir } from './helpers.mjs'

const MIGRATIONS = [
  { id: 1, name: 'init', sql: 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)' },
  { id: 2, name: 'seed', sql: "INSERT INTO t (v) VALUES ('a'), ('b')" },
]

const count = async (db, sql = 'SELECT count(*) AS n FROM t') => (await db.query(sql, [], { consistency: 'leader' }))[0].n

describe('backup, restore and migrate', () => {
  let db
  let remote
  const dir = tempDir()

  before(async () => {
    db = await openSingle()
    const st = await db.status()
    remote = await Database.connect([`http://${st.apiAddr}`], { timeoutMs: 300_000 })
  })

  after(async () => {
    await remote?.close()
    await db?.close()
  })

  test('migrations from an array and from a folder', async () => {
    assert.equal(await db.migrate(MIGRATIONS), 2)
    assert.equal(await db.migrate(MIGRATIONS), 0)
    const folder = path.join(dir, 'migrations')
    fs.mkdirSync(folder)
    for (const m of MIGRATIONS) fs.writeFileSync(path.join(folder, `${String(m.id).padStart(3, '0')}_${m.name}.sql`), m.sql)
    fs.writeFileSync(path.join(folder, '003_more.sql'), "INSERT INTO t (v) VALUES ('c')")
    fs.writeFileSync(path.join(folder, 'notes.txt'), 'not a migration')
    assert.equal(await db.migrate(folder), 1)
    assert.equal(await remote.migrate(folder), 0)
    assert.equal(await count(db), 3)
    const invalid = (e) => e instanceof HiqliteError && e.code === 'HIQLITE_INVALID_REQUEST'
    await assert.rejects(db.migrate([{ id: 1, name: 'init', sql: 'CREATE TABLE other (x)' }]), invalid)
    await assert.rejects(db.migrate(42), invalid)
    await assert.rejects(db.migrate([{ id: 'x' }]), invalid)
    await assert.rejects(db.migrate(path.join(dir, 'no-such-folder')), invalid)
  })

  for (const which of ['embedded', 'remote']) {
    test(`backup and restore (${which})`, async () => {
      const client = which === 'embedded' ? db : remote
      const file = path.join(dir, `${which}.db`)
      const index = await client.backup(file)
      if (which === 'embedded') assert.ok(index > 0)
      else assert.equal(index, null)
      await assert.rejects(client.backup(file), (e) => e instanceof HiqliteError && /exists/.test(e.message))
      await client.exec('DELETE FROM t')
      await client.exec('CREATE TABLE added_later (x)')
      await client.restore(file)
      assert.equal(await count(db), 3)
      assert.equal(await count(db, "SELECT count(*) AS n FROM sqlite_master WHERE name = 'added_later'"), 0)
    })
  }

  test('bad input rejects and changes nothing', async () => {
    const junk = path.join(dir, 'junk.db')
    fs.writeFileSync(junk, 'not a database')
    await assert.rejects(db.restore(junk), HiqliteError)
    await assert.rejects(remote.restore(junk), HiqliteError)
    await assert.rejects(db.restore(path.join(dir, 'missing.db')), HiqliteError)
    await assert.rejects(db.backup(42), (e) => e instanceof HiqliteError && e.code === 'HIQLITE_INVALID_REQUEST')
    assert.equal(await count(db), 3)
  })
})
