// Parameters, statement methods, batches, and per-call consistency and caching.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { HiqliteError } from '../index.js'
import { openSingle } from './helpers.mjs'

let db
before(async () => {
  db = await openSingle()
  await db.exec('CREATE TABLE p (id INTEGER PRIMARY KEY, a, b)')
})
after(() => db?.close())

const count = async (table = 'p') => (await db.query(`SELECT count(*) AS c FROM ${table}`))[0].c

test('positional parameters: separate arguments, one array, ?NNN', async () => {
  const stmt = db.prepare('SELECT ? AS x, ? AS y')
  assert.deepEqual(await stmt.get(1, 'two'), { x: 1, y: 'two' })
  assert.deepEqual(await stmt.get([1, 'two']), { x: 1, y: 'two' })
  assert.deepEqual(await db.prepare('SELECT ?2 AS x, ?1 AS y').get('a', 'b'), { x: 'b', y: 'a' })
  assert.deepEqual(await db.query('SELECT ? AS x', [null]), [{ x: null }])
})

test('named parameters @x, :x and $x from one object', async () => {
  for (const sql of ['SELECT @x AS x, @y AS y', 'SELECT :x AS x, :y AS y', 'SELECT $x AS x, $y AS y']) {
    assert.deepEqual(await db.prepare(sql).get({ x: 1, y: Buffer.from('hi') }), { x: 1, y: Buffer.from('hi') }, sql)
  }
  assert.deepEqual(await db.prepare('SELECT :x AS x').get({ ':x': 5 }), { x: 5 })
  assert.deepEqual(await db.prepare('SELECT @x AS x').get(Object.assign(Object.create(null), { x: 6 })), { x: 6 })
  assert.deepEqual(await db.query('SELECT @n AS n', { n: 7n }), [{ n: 7 }])
  const r = await db.prepare('INSERT INTO p (a, b) VALUES (@a, $b)').run({ a: 'named', b: 2 })
  assert.equal(r.changes, 1)
  assert.deepEqual(await db.prepare('SELECT a, b FROM p WHERE id = :id').get({ id: r.lastInsertRowid }), { a: 'named', b: 2 })
})

test('run, get, all, iterate; get on no row is undefined', async () => {
  await db.exec('DELETE FROM p')
  const ins = db.prepare('INSERT INTO p (a, b) VALUES (?, ?)')
  assert.equal(ins.source, 'INSERT INTO p (a, b) VALUES (?, ?)')
  for (let i = 1; i <= 5; i++) assert.equal((await ins.run(`r${i}`, i)).changes, 1)
  const sel = db.prepare('SELECT a, b FROM p WHERE b >= ? ORDER BY b')
  assert.equal(await sel.get(99), undefined)
  assert.deepEqual(await sel.all(99), [])
  assert.deepEqual((await sel.all(4)).map((r) => r.a), ['r4', 'r5'])
  const seen = []
  for await (const row of sel.iterate(2)) seen.push(row.b)
  assert.deepEqual(seen, [2, 3, 4, 5])
  // Leaving early, and overlapping next() calls in call order.
  for await (const row of sel.iterate(1)) {
    assert.equal(row.b, 1)
    break
  }
  const it = sel.iterate(3)
  const results = await Promise.all([it.next(), it.next(), it.next(), it.next()])
  assert.deepEqual(
    results.map((r) => (r.done ? 'done' : r.value.b)),
    [3, 4, 5, 'done'],
  )
  assert.deepEqual(await it.next(), { value: undefined, done: true })
  const bad = db.prepare('SELECT * FROM missing').iterate()
  await assert.rejects(bad.next(), (e) => e instanceof HiqliteError && e.code === 'SQLITE_ERROR')
  assert.deepEqual(await bad.next(), { value: undefined, done: true })
  const [{ c }] = await db.query('SELECT count(*) AS c FROM p')
  assert.equal(c, 5)
  const upd = await db.prepare('UPDATE p SET b = b + 10 WHERE b > ?').run(3)
  assert.equal(upd.changes, 2)
})

test('a write with RETURNING read through get/all/query goes through Raft', async () => {
  const stmt = db.prepare('INSERT INTO p (a, b) VALUES (?, ?) RETURNING id, a')
  const row = await stmt.get('ret', 1)
  assert.equal(row.a, 'ret')
  const rows = await stmt.all('ret2', 2)
  assert.deepEqual(rows.map((r) => r.a), ['ret2'])
  const q = await db.query('DELETE FROM p WHERE a LIKE ? RETURNING a', ['ret%'])
  assert.deepEqual(q.map((r) => r.a).sort(), ['ret', 'ret2'])
})

test('batch with transaction: all or nothing', async () => {
  await db.exec('CREATE TABLE acct (name TEXT PRIMARY KEY, bal INTEGER NOT NULL CHECK (bal >= 0))')
  const ok = await db.batch(
    [
      { sql: 'INSERT INTO acct VALUES (?, ?)', args: ['ann', 100] },
      { sql: 'INSERT INTO acct VALUES (:n, :b)', args: { n: 'ben', b: 0 } },
      "UPDATE acct SET bal = bal + 1 WHERE name = 'ben'",
    ],
    { transaction: true },
  )
  assert.deepEqual(
    ok.map((r) => r.changes),
    [1, 1, 1],
  )
  // The third statement fails: the first two are not applied either.
  await assert.rejects(
    db.batch(
      [
        { sql: "UPDATE acct SET bal = bal - 50 WHERE name = 'ann'" },
        { sql: "UPDATE acct SET bal = bal + 50 WHERE name = 'ben'" },
        { sql: "UPDATE acct SET bal = bal - 500 WHERE name = 'ann'" },
      ],
      { transaction: true },
    ),
    (e) => e instanceof HiqliteError && e.code === 'SQLITE_CONSTRAINT_CHECK',
  )
  assert.deepEqual(await db.query('SELECT name, bal FROM acct ORDER BY name'), [
    { name: 'ann', bal: 100 },
    { name: 'ben', bal: 1 },
  ])
  // The default is a transaction too.
  await assert.rejects(db.batch(["INSERT INTO acct VALUES ('cat', 1)", "INSERT INTO acct VALUES ('cat', 2)"]), {
    code: 'SQLITE_CONSTRAINT_PRIMARYKEY',
  })
  assert.equal(await count('acct'), 2)
  assert.deepEqual(await db.batch([]), [])
})

test('batch without transaction: each statement alone, errors in their slots', async () => {
  const results = await db.batch(
    ["INSERT INTO acct VALUES ('dan', 5)", "INSERT INTO acct VALUES ('dan', 6)", "INSERT INTO acct VALUES ('eve', 7)"],
    { transaction: false },
  )
  assert.equal(results[0].changes, 1)
  assert.ok(results[1] instanceof HiqliteError)
  assert.equal(results[1].code, 'SQLITE_CONSTRAINT_PRIMARYKEY')
  assert.equal(results[2].changes, 1)
  assert.equal(await count('acct'), 4)
})

test('consistency and the query cache, per call and per statement', async () => {
  await db.exec('CREATE TABLE c (v INTEGER)')
  await db.execute('INSERT INTO c VALUES (1)')
  for (const consistency of ['local', 'leader', 'linearizable']) {
    assert.deepEqual(await db.query('SELECT sum(v) AS s FROM c', [], { consistency }), [{ s: 1 }], consistency)
  }
  const cached = db.prepare('SELECT sum(v) AS s FROM c', { cache: true })
  assert.deepEqual(await cached.get(), { s: 1 })
  assert.deepEqual(await cached.get(), { s: 1 })
  // A write invalidates exactly the cached results that read the table.
  await db.execute('INSERT INTO c VALUES (2)')
  assert.deepEqual(await cached.get(), { s: 3 })
  assert.deepEqual(await db.query('SELECT sum(v) AS s FROM c', [], { cacheTtlMs: 60_000, consistency: 'linearizable' }), [
    { s: 3 },
  ])
  assert.deepEqual(await db.prepare('SELECT count(*) AS n FROM c', { cacheTtlMs: 1 }).get(), { n: 2 })
})
