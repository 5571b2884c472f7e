// Every SQLite type to JavaScript and back, including BigInt and Buffer.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { HiqliteError } from '../index.js'
import { openSingle } from './helpers.mjs'

const MAX_SAFE = Number.MAX_SAFE_INTEGER
const I64_MAX = 2n ** 63n - 1n
const I64_MIN = -(2n ** 63n)

let db
before(async () => {
  db = await openSingle()
  await db.exec('CREATE TABLE v (id INTEGER PRIMARY KEY, x)')
})
after(() => db?.close())

async function roundTrip(value) {
  const { lastInsertRowid } = await db.prepare('INSERT INTO v (x) VALUES (?)').run(value)
  return db.prepare('SELECT x, typeof(x) AS t FROM v WHERE id = ?').get(lastInsertRowid)
}

test('INTEGER: number when exact, BigInt beyond ±(2^53 − 1)', async () => {
  for (const [input, output] of [
    [0, 0],
    [42, 42],
    [-7, -7],
    [MAX_SAFE, MAX_SAFE],
    [-MAX_SAFE, -MAX_SAFE],
    [5n, 5],
    [BigInt(MAX_SAFE) + 1n, BigInt(MAX_SAFE) + 1n],
    [-(BigInt(MAX_SAFE) + 1n), -(BigInt(MAX_SAFE) + 1n)],
    [I64_MAX, I64_MAX],
    [I64_MIN, I64_MIN],
    [true, 1],
    [false, 0],
  ]) {
    assert.deepEqual(await roundTrip(input), { x: output, t: 'integer' }, `input ${input}`)
  }
})

test('REAL, TEXT, BLOB and NULL', async () => {
  for (const [input, output, t] of [
    [1.5, 1.5, 'real'],
    [-0.25, -0.25, 'real'],
    [1e300, 1e300, 'real'],
    [2 ** 60, 2 ** 60, 'real'], // an integral number beyond 2^53 is not exact: it stays REAL
    ['héllo wörld 🌍', 'héllo wörld 🌍', 'text'],
    ['', '', 'text'],
    [Buffer.from([0, 1, 2, 254, 255]), Buffer.from([0, 1, 2, 254, 255]), 'blob'],
    [new Uint8Array([9, 8, 7]), Buffer.from([9, 8, 7]), 'blob'],
    [Buffer.alloc(0), Buffer.alloc(0), 'blob'],
    [null, null, 'null'],
    [undefined, null, 'null'],
  ]) {
    const row = await roundTrip(input)
    assert.deepEqual(row, { x: output, t }, `input ${String(input)}`)
  }
  const blob = Buffer.alloc(256 * 1024, 7)
  const row = await roundTrip(blob)
  assert.ok(Buffer.isBuffer(row.x))
  assert.ok(row.x.equals(blob))
})

test('expressions keep their types', async () => {
  const row = await db.prepare("SELECT 1 AS i, 2.5 AS r, 'a' AS s, x'00ff' AS b, NULL AS n, 9007199254740993 AS big").get()
  assert.deepEqual(row, { i: 1, r: 2.5, s: 'a', b: Buffer.from([0, 255]), n: null, big: 9007199254740993n })
})

test('safeIntegers: every INTEGER as BigInt, per statement, per call and per database', async () => {
  const stmt = db.prepare('SELECT 7 AS i, 1.5 AS r')
  assert.deepEqual(await stmt.get(), { i: 7, r: 1.5 })
  assert.equal(stmt.safeIntegers(), stmt)
  assert.deepEqual(await stmt.get(), { i: 7n, r: 1.5 })
  assert.deepEqual(await stmt.safeIntegers(false).get(), { i: 7, r: 1.5 })
  assert.deepEqual(await db.prepare('SELECT 7 AS i', { safeIntegers: true }).all(), [{ i: 7n }])
  assert.deepEqual(await db.query('SELECT 7 AS i', [], { safeIntegers: true }), [{ i: 7n }])
  const ins = db.prepare('INSERT INTO v (x) VALUES (1)').safeIntegers()
  const r = await ins.run()
  assert.equal(typeof r.lastInsertRowid, 'bigint')
  assert.equal(typeof r.logIndex, 'bigint')
})

test('lastInsertRowid beyond 2^53 is a BigInt', async () => {
  const id = 2n ** 60n
  const r = await db.prepare('INSERT INTO v (id, x) VALUES (?, 1)').run(id)
  assert.deepEqual(r, { changes: 1, lastInsertRowid: id, logIndex: r.logIndex })
  await db.prepare('DELETE FROM v WHERE id = ?').run(id)
})

test('values that cannot be bound are a HiqliteError, not a crash', async () => {
  const ins = db.prepare('INSERT INTO v (x) VALUES (?)')
  for (const bad of [2n ** 63n, -(2n ** 63n) - 1n, 2n ** 64n, Symbol('s'), () => 1, new Date(), new Int32Array([1]), new ArrayBuffer(2), new Map()]) {
    await assert.rejects(ins.run(bad), (e) => {
      assert.ok(e instanceof HiqliteError, String(e))
      assert.equal(e.code, 'HIQLITE_INVALID_REQUEST')
      return true
    })
  }
  // Nothing was written by the refused calls.
  const [{ c }] = await db.query('SELECT count(*) AS c FROM v WHERE typeof(x) NOT IN (\'integer\', \'real\', \'text\', \'blob\', \'null\')')
  assert.equal(c, 0)
})
