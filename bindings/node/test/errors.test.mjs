// Errors are HiqliteError instances with string codes; bad input never crashes the process.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { Database, HiqliteError } from '../index.js'
import { openSingle, tempDir } from './helpers.mjs'

let db
before(async () => {
  db = await openSingle()
  await db.exec(`CREATE TABLE u (
    id INTEGER PRIMARY KEY,
    email TEXT UNIQUE NOT NULL,
    age INTEGER CHECK (age >= 0),
    team INTEGER REFERENCES team(id)
  );
  CREATE TABLE team (id INTEGER PRIMARY KEY)`)
  await db.execute("INSERT INTO u (email, age) VALUES ('a@x', 1)")
})
after(() => db?.close())

/** Assert that `promise` rejects with a HiqliteError of `code`; returns the error. */
async function rejectsWith(promise, code) {
  let err
  await assert.rejects(promise, (e) => {
    err = e
    return true
  })
  assert.ok(err instanceof HiqliteError, `not a HiqliteError: ${err}`)
  assert.ok(err instanceof Error)
  assert.equal(err.name, 'HiqliteError')
  assert.equal(err.code, code, err.message)
  return err
}

test('SQL errors carry SQLite’s symbolic code, extended code and message', async () => {
  const e = await rejectsWith(db.execute("INSERT INTO u (email) VALUES ('a@x')"), 'SQLITE_CONSTRAINT_UNIQUE')
  assert.equal(e.sqliteCode, 2067)
  assert.equal(e.message, 'UNIQUE constraint failed: u.email')
  assert.match(String(e), /^HiqliteError: UNIQUE constraint failed/)
  await rejectsWith(db.execute('INSERT INTO u (email) VALUES (NULL)'), 'SQLITE_CONSTRAINT_NOTNULL')
  await rejectsWith(db.execute("INSERT INTO u (id, email) VALUES (1, 'b@x')"), 'SQLITE_CONSTRAINT_PRIMARYKEY')
  await rejectsWith(db.execute("INSERT INTO u (email, age) VALUES ('c@x', -1)"), 'SQLITE_CONSTRAINT_CHECK')
  await rejectsWith(db.exec('SELEC 1'), 'SQLITE_ERROR')
  await rejectsWith(db.query('SELECT * FROM nowhere'), 'SQLITE_ERROR')
  await rejectsWith(db.prepare('SELECT ? + ?').get(1), 'SQLITE_RANGE')
  await rejectsWith(db.prepare('SELECT :a').get({ b: 1 }), 'SQLITE_RANGE')
  // Statements that would make replicas differ are refused by the engine.
  await rejectsWith(db.exec("ATTACH DATABASE ':memory:' AS aux"), 'SQLITE_AUTH')
})

test('a HiqliteError has a stack and can be constructed and subclassed', () => {
  const e = new HiqliteError('boom', 'HIQLITE_TIMEOUT')
  assert.equal(e.code, 'HIQLITE_TIMEOUT')
  assert.equal(e.message, 'boom')
  assert.ok(e.stack.includes('boom'))
  class Mine extends HiqliteError {}
  assert.ok(new Mine('x', 'HIQLITE_CONFIG') instanceof HiqliteError)
})

test('bad arguments and options are HiqliteErrors, thrown or rejected, never crashes', async () => {
  await rejectsWith(db.exec(42), 'HIQLITE_INVALID_REQUEST')
  await rejectsWith(db.query('SELECT 1', 'not params'), 'HIQLITE_INVALID_REQUEST')
  await rejectsWith(db.query('SELECT 1', [], { consistency: 'strong' }), 'HIQLITE_INVALID_REQUEST')
  await rejectsWith(db.query('SELECT 1', [], { cacheTtlMs: -5 }), 'HIQLITE_INVALID_REQUEST')
  await rejectsWith(db.query('SELECT 1', [], 'fast'), 'HIQLITE_INVALID_REQUEST')
  await rejectsWith(db.batch('INSERT INTO team VALUES (1)'), 'HIQLITE_INVALID_REQUEST')
  await rejectsWith(db.batch([{ args: [] }]), 'HIQLITE_INVALID_REQUEST')
  await rejectsWith(db.batch([42]), 'HIQLITE_INVALID_REQUEST')
  await rejectsWith(db.batch([], { transaction: 'yes' }), 'HIQLITE_INVALID_REQUEST')
  await rejectsWith(db.waitForLeader('soon'), 'HIQLITE_INVALID_REQUEST')
  await rejectsWith(db.prepare('SELECT ?').get([1], 2), 'HIQLITE_INVALID_REQUEST')
  await rejectsWith(db.prepare('SELECT ?').get(1, { a: 1 }), 'HIQLITE_INVALID_REQUEST')
  for (const call of [
    () => db.prepare(1),
    () => db.prepare('SELECT 1', { consistency: 1 }),
    () => db.prepare('SELECT 1', { unknownOption: true }),
    () => db.prepare('SELECT 1').safeIntegers('yes'),
  ]) {
    assert.throws(call, (e) => e instanceof HiqliteError && e.code === 'HIQLITE_INVALID_REQUEST')
  }
  await rejectsWith(Database.open(), 'HIQLITE_INVALID_REQUEST')
  await rejectsWith(Database.open({}), 'HIQLITE_INVALID_REQUEST')
  await rejectsWith(Database.connect(42), 'HIQLITE_INVALID_REQUEST')
  await rejectsWith(Database.connect([]), 'HIQLITE_INVALID_REQUEST')
  await rejectsWith(Database.connect('http://127.0.0.1:1', { timeoutMs: 'long' }), 'HIQLITE_INVALID_REQUEST')
})

test('invalid node settings are HIQLITE_CONFIG and name the setting as written', async () => {
  const e = await rejectsWith(Database.open({ node: { dataDir: tempDir(), nodeID: 1 } }), 'HIQLITE_CONFIG')
  assert.match(e.message, /unknown field `nodeID`/)
  await rejectsWith(Database.open({ node: { dataDir: tempDir(), secret: 'short' } }), 'HIQLITE_CONFIG')
  await rejectsWith(Database.open({ node: { dataDir: tempDir(), nodeId: 'one' } }), 'HIQLITE_CONFIG')
  await rejectsWith(Database.open({ node: 'here' }), 'HIQLITE_CONFIG')
  // A data directory is used by one node at a time.
  const dataDir = tempDir()
  const node = { dataDir, raftAddr: '127.0.0.1:0', apiAddr: '127.0.0.1:0' }
  const first = await Database.open({ node })
  try {
    const e = await rejectsWith(Database.open({ node }), 'HIQLITE_CONFIG')
    assert.match(e.message, /in use/)
  } finally {
    await first.close()
  }
})

test('a closed database fails with HIQLITE_SHUTDOWN; closing twice is harmless', async () => {
  const other = await openSingle()
  const stmt = other.prepare('SELECT 1 AS one')
  assert.deepEqual(await stmt.get(), { one: 1 })
  const it = stmt.iterate()
  await other.close()
  await other.close()
  assert.equal(other.isLeader(), false)
  await rejectsWith(stmt.get(), 'HIQLITE_SHUTDOWN')
  await rejectsWith(other.exec('SELECT 1'), 'HIQLITE_SHUTDOWN')
  await rejectsWith(other.status(), 'HIQLITE_SHUTDOWN')
  assert.throws(() => other.prepare('SELECT 1').iterate(), { code: 'HIQLITE_SHUTDOWN' })
  // An iterator made before the close runs on the stopped node's client: it settles.
  await it.next().then(
    () => {},
    (e) => assert.ok(e instanceof HiqliteError),
  )
})

test('the classes cannot be constructed directly', () => {
  assert.throws(() => new Database())
})
