// Interactive transactions: db.transaction(fn), db.begin(), and BEGIN/COMMIT/SAVEPOINT through
// exec/run on one node; serializable read-modify-write from several handles of a 3-node cluster.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import { Database, HiqliteError, Transaction } from '../index.js'
import { openCluster, openSingle } from './helpers.mjs'

const count = async (db, table, where = '1') =>
  (await db.query(`SELECT count(*) AS c FROM ${table} WHERE ${where}`, [], { consistency: 'leader' }))[0].c

describe('transactions on one node', () => {
  let db
  let other // a second handle (remote client) on the same node: what everyone else sees

  before(async () => {
    db = await openSingle()
    const st = await db.status()
    other = await Database.connect(`http://${st.apiAddr}`, { timeoutMs: 300_000 })
    await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)')
  })

  after(async () => {
    await other?.close()
    await db?.close()
  })

  test('db.transaction: reads see its writes, others see them after commit, returns the value', async () => {
    const value = await db.transaction(async (tx) => {
      assert.ok(tx instanceof Transaction)
      assert.equal(tx.active, true)
      await tx.exec("INSERT INTO t (v) VALUES ('own-1')")
      const r = await tx.prepare('INSERT INTO t (v) VALUES (?)').run('own-2')
      assert.equal(r.changes, 1)
      const seen = await tx.prepare("SELECT v FROM t WHERE v LIKE 'own-%' ORDER BY id").all()
      assert.deepEqual(
        seen.map((x) => x.v),
        ['own-1', 'own-2'],
      )
      assert.deepEqual(await tx.prepare('SELECT v FROM t WHERE id = ?').get(r.lastInsertRowid), { v: 'own-2' })
      const rows = []
      for await (const row of tx.prepare("SELECT v FROM t WHERE v LIKE 'own-%' ORDER BY id").iterate()) rows.push(row.v)
      assert.deepEqual(rows, ['own-1', 'own-2'])
      assert.deepEqual(await tx.query("SELECT count(*) AS c FROM t WHERE v LIKE 'own-%'"), [{ c: 2 }])
      // Nobody else sees them before COMMIT (reads do not wait for the transaction).
      assert.equal(await count(other, 't', "v LIKE 'own-%'"), 0)
      assert.equal(await count(db, 't', "v LIKE 'own-%'"), 0)
      return 'done'
    })
    assert.equal(value, 'done')
    assert.equal(await count(other, 't', "v LIKE 'own-%'"), 2)
  })

  test('db.transaction rolls back when the callback throws, and rethrows', async () => {
    let kept
    const boom = new Error('boom')
    await assert.rejects(
      db.transaction(async (tx) => {
        kept = tx
        await tx.execute("INSERT INTO t (v) VALUES ('thrown')")
        assert.equal(await count(tx, 't', "v = 'thrown'"), 1)
        throw boom
      }),
      (e) => e === boom,
    )
    assert.equal(kept.active, false)
    assert.equal(await count(other, 't', "v = 'thrown'"), 0)
    // The transaction is over: its statements are refused.
    await assert.rejects(kept.query('SELECT 1'), { code: 'HIQLITE_INVALID_REQUEST' })
    // And the database is free for other writers.
    await db.execute("INSERT INTO t (v) VALUES ('after-throw')")
    assert.equal(await count(other, 't', "v = 'after-throw'"), 1)
  })

  test('savepoints inside a transaction', async () => {
    await db.transaction(async (tx) => {
      await tx.execute("INSERT INTO t (v) VALUES ('sp-keep')")
      await tx.exec('SAVEPOINT a')
      await tx.execute("INSERT INTO t (v) VALUES ('sp-undone')")
      await tx.exec('SAVEPOINT b')
      await tx.execute("INSERT INTO t (v) VALUES ('sp-undone-too')")
      assert.equal(await count(tx, 't', "v LIKE 'sp-%'"), 3)
      await tx.exec('ROLLBACK TO a')
      assert.equal(await count(tx, 't', "v LIKE 'sp-%'"), 1)
      await tx.exec('RELEASE a')
      await tx.exec('SAVEPOINT c; INSERT INTO t (v) VALUES (\'sp-released\'); RELEASE c')
    })
    const rows = await other.query("SELECT v FROM t WHERE v LIKE 'sp-%' ORDER BY id")
    assert.deepEqual(
      rows.map((r) => r.v),
      ['sp-keep', 'sp-released'],
    )
  })

  test('changes and lastInsertRowid inside a transaction', async () => {
    const tx = await db.begin()
    const a = await tx.execute("INSERT INTO t (v) VALUES ('ch-1')")
    const b = await tx.prepare('INSERT INTO t (v) VALUES (?)').run('ch-2')
    assert.equal(a.changes, 1)
    assert.equal(b.changes, 1)
    assert.equal(b.lastInsertRowid, Number(a.lastInsertRowid) + 1)
    const [{ id }] = await tx.query("SELECT id FROM t WHERE v = 'ch-2'")
    assert.equal(id, b.lastInsertRowid)
    const u = await tx.execute("UPDATE t SET v = v || '-x' WHERE v IN ('ch-1', 'ch-2')")
    assert.equal(u.changes, 2)
    const ret = await tx.prepare("INSERT INTO t (v) VALUES ('ch-3') RETURNING id, v").get()
    assert.deepEqual(ret, { id: b.lastInsertRowid + 1, v: 'ch-3' })
    await tx.commit()
    assert.equal(tx.active, false)
    assert.equal(await count(other, 't', "v IN ('ch-1-x', 'ch-2-x', 'ch-3')"), 3)
    await assert.rejects(tx.commit(), { code: 'HIQLITE_INVALID_REQUEST' })
  })

  test('a failed statement leaves the transaction open, with SQLite error codes', async () => {
    const tx = await db.begin()
    await tx.execute("INSERT INTO t (v) VALUES ('dup')")
    await assert.rejects(tx.execute("INSERT INTO t (v) VALUES ('dup')"), (e) => {
      assert.ok(e instanceof HiqliteError)
      assert.equal(e.code, 'SQLITE_CONSTRAINT_UNIQUE')
      assert.equal(e.sqliteCode, 2067)
      assert.match(e.message, /UNIQUE constraint failed: t\.v/)
      return true
    })
    assert.equal(tx.active, true)
    await tx.execute("INSERT INTO t (v) VALUES ('dup-next')")
    assert.equal(await count(tx, 't', "v IN ('dup', 'dup-next')"), 2)
    // BEGIN inside a transaction fails as SQLite's does, and leaves it open too.
    await assert.rejects(tx.exec('BEGIN'), (e) => {
      assert.equal(e.code, 'SQLITE_ERROR')
      assert.equal(e.sqliteCode, 1)
      assert.equal(e.message, 'cannot start a transaction within a transaction')
      return true
    })
    await tx.commit()
    assert.equal(await count(other, 't', "v IN ('dup', 'dup-next')"), 2)
  })

  test('BEGIN/COMMIT through exec: every statement of the database runs inside', async () => {
    assert.equal(db.inTransaction, false)
    await db.exec('BEGIN')
    assert.equal(db.inTransaction, true)
    const r = await db.prepare('INSERT INTO t (v) VALUES (?)').run('conn-1')
    assert.equal(r.changes, 1)
    await db.execute("INSERT INTO t (v) VALUES ('conn-2')")
    // Reads of this database see its writes, whatever their consistency; others do not.
    assert.equal((await db.prepare("SELECT count(*) AS c FROM t WHERE v LIKE 'conn-%'").get()).c, 2)
    assert.equal(await count(db, 't', "v LIKE 'conn-%'"), 2)
    assert.equal(await count(other, 't', "v LIKE 'conn-%'"), 0)
    await assert.rejects(db.exec('BEGIN'), { code: 'SQLITE_ERROR', message: 'cannot start a transaction within a transaction' })
    await assert.rejects(db.execute("INSERT INTO t (v) VALUES ('conn-1')"), { code: 'SQLITE_CONSTRAINT_UNIQUE', sqliteCode: 2067 })
    assert.equal(db.inTransaction, true)
    // A db.transaction/begin cannot start inside it either (it would wait for it forever).
    await assert.rejects(db.begin(), { code: 'SQLITE_ERROR' })
    await db.exec('COMMIT')
    assert.equal(db.inTransaction, false)
    assert.equal(await count(other, 't', "v LIKE 'conn-%'"), 2)

    // ROLLBACK through a prepared statement; several statements in one exec.
    await db.exec("BEGIN; INSERT INTO t (v) VALUES ('conn-gone'); INSERT INTO t (v) VALUES ('conn-gone-2')")
    assert.equal(db.inTransaction, true)
    assert.equal(await count(db, 't', "v LIKE 'conn-gone%'"), 2)
    await db.prepare('ROLLBACK').run()
    assert.equal(db.inTransaction, false)
    assert.equal(await count(db, 't', "v LIKE 'conn-gone%'"), 0)

    // Misuse gets SQLite's errors.
    await assert.rejects(db.exec('COMMIT'), { code: 'SQLITE_ERROR', message: 'cannot commit - no transaction is active' })
    await assert.rejects(db.exec('ROLLBACK'), { code: 'SQLITE_ERROR', message: 'cannot rollback - no transaction is active' })
    await assert.rejects(db.exec('RELEASE nope'), { code: 'SQLITE_ERROR', message: 'no such savepoint: nope' })
  })

  test('SAVEPOINT outside a transaction begins one; releasing it commits', async () => {
    await db.exec('SAVEPOINT outer')
    assert.equal(db.inTransaction, true)
    await db.execute("INSERT INTO t (v) VALUES ('svp-1')")
    await db.exec('SAVEPOINT inner')
    await db.execute("INSERT INTO t (v) VALUES ('svp-2')")
    await db.exec('ROLLBACK TO inner')
    assert.equal(await count(db, 't', "v LIKE 'svp-%'"), 1)
    await db.exec('RELEASE inner')
    assert.equal(db.inTransaction, true)
    assert.equal(await count(other, 't', "v LIKE 'svp-%'"), 0)
    await db.exec('RELEASE OUTER')
    assert.equal(db.inTransaction, false)
    assert.equal(await count(other, 't', "v LIKE 'svp-%'"), 1)
  })

  test('statements keep their call order around BEGIN and ROLLBACK without awaiting', async () => {
    const begin = db.exec('BEGIN')
    const insert = db.execute("INSERT INTO t (v) VALUES ('order-1')")
    const inside = db.query("SELECT count(*) AS c FROM t WHERE v = 'order-1'")
    const rollback = db.exec('ROLLBACK')
    const outside = db.query("SELECT count(*) AS c FROM t WHERE v = 'order-1'", [], { consistency: 'leader' })
    await begin
    assert.equal((await insert).changes, 1)
    assert.deepEqual(await inside, [{ c: 1 }])
    await rollback
    assert.deepEqual(await outside, [{ c: 0 }])
    assert.equal(db.inTransaction, false)
  })

  test('batch inside a connection-level transaction', async () => {
    await db.exec('BEGIN')
    const rs = await db.batch(["INSERT INTO t (v) VALUES ('b-1')", { sql: 'INSERT INTO t (v) VALUES (?)', args: ['b-2'] }])
    assert.deepEqual(
      rs.map((r) => r.changes),
      [1, 1],
    )
    // All or none, inside the transaction: the failed batch leaves the rest of it alone.
    await assert.rejects(db.batch(["INSERT INTO t (v) VALUES ('b-3')", "INSERT INTO t (v) VALUES ('b-1')"]), {
      code: 'SQLITE_CONSTRAINT_UNIQUE',
    })
    assert.equal(await count(db, 't', "v LIKE 'b-%'"), 2)
    await db.exec('COMMIT')
    assert.equal(await count(other, 't', "v LIKE 'b-%'"), 2)
  })
})

describe('transactions on a 3-node cluster', () => {
  let cluster
  const remotes = []

  before(async () => {
    cluster = await openCluster(3)
  })

  after(async () => {
    for (const r of remotes) await r.close()
    for (const db of cluster?.dbs ?? []) await db.close()
  })

  test('4 concurrent callers × 50 read-modify-write transactions = exactly 200', async () => {
    const { dbs, apiUrls } = cluster
    await dbs[0].exec('CREATE TABLE acct (id INTEGER PRIMARY KEY, bal INTEGER NOT NULL)')
    await dbs[0].execute('INSERT INTO acct VALUES (1, 0)')
    // Three remote clients, one through each node, and one embedded node.
    for (const url of apiUrls) remotes.push(await Database.connect(url, { timeoutMs: 300_000 }))
    const handles = [...remotes, dbs[1]]
    await Promise.all(
      handles.map(async (db) => {
        for (let i = 0; i < 50; i++) {
          await db.transaction(async (tx) => {
            const { bal } = await tx.prepare('SELECT bal FROM acct WHERE id = 1').get()
            await tx.execute('UPDATE acct SET bal = ? WHERE id = 1', [bal + 1])
          })
        }
      }),
    )
    for (const db of dbs) {
      const [{ bal }] = await db.query('SELECT bal FROM acct', [], { consistency: 'linearizable' })
      assert.equal(bal, 200)
    }
  })

  test('BEGIN/COMMIT through a remote client; a follower BEGIN waits for it', async () => {
    const { dbs, apiUrls } = cluster
    const remote = await Database.connect(apiUrls[2], { timeoutMs: 300_000 })
    remotes.push(remote)
    const follower = dbs.find((db) => !db.isLeader())
    await remote.exec('CREATE TABLE rc (id INTEGER PRIMARY KEY, v TEXT)')
    await remote.exec('BEGIN')
    assert.equal(remote.inTransaction, true)
    await remote.execute("INSERT INTO rc (v) VALUES ('x')")
    assert.deepEqual(await remote.query('SELECT v FROM rc'), [{ v: 'x' }])
    // Serializable: the follower's transaction begins only once the remote one has ended.
    const begun = follower.exec('BEGIN IMMEDIATE TRANSACTION')
    const seenInside = follower.query('SELECT v FROM rc')
    await remote.exec('COMMIT')
    assert.equal(remote.inTransaction, false)
    await begun
    assert.equal(follower.inTransaction, true)
    assert.deepEqual(await seenInside, [{ v: 'x' }])
    await follower.execute("INSERT INTO rc (v) VALUES ('y')")
    await follower.exec('END')
    assert.equal(follower.inTransaction, false)
    assert.deepEqual(await remote.query('SELECT v FROM rc ORDER BY id'), [{ v: 'x' }, { v: 'y' }])
  })
})
