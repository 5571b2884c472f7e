// Read-your-writes on a 3-node cluster: a write's `logIndex` read with `minIndex` on another
// node, and `readYourWrites` databases (embedded on a follower, remote) whose local reads
// always see their own writes.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import { Database, HiqliteError } from '../index.js'
import { agreedLeader, openCluster } from './helpers.mjs'

const COUNT = 'SELECT count(*) AS c FROM t WHERE id = ?'

async function rejectsWith(promise, code, pattern) {
  const err = await promise.then(
    () => assert.fail('expected a rejection'),
    (e) => e,
  )
  assert.ok(err instanceof HiqliteError, `not a HiqliteError: ${err}`)
  assert.equal(err.code, code, err.message)
  if (pattern) assert.match(err.message, pattern)
}

describe('read-your-writes', () => {
  let cluster
  const remotes = []

  before(async () => {
    cluster = await openCluster(3, { readYourWrites: true })
  })

  after(async () => {
    for (const r of remotes) await r.close()
    for (const db of cluster?.dbs ?? []) await db.close()
  })

  test("a write's logIndex read with minIndex on another node", async () => {
    const { dbs } = cluster
    const li = await agreedLeader(dbs)
    const leader = dbs[li]
    await leader.exec('CREATE TABLE t (id INTEGER PRIMARY KEY)')
    const remote = await Database.connect(cluster.apiUrls[(li + 2) % 3], { timeoutMs: 300_000, discover: false })
    remotes.push(remote)
    assert.equal(remote.readYourWrites, false)
    for (let i = 1; i <= 100; i++) {
      const r = await leader.execute('INSERT INTO t (id) VALUES (?)', [i])
      assert.ok(Number.isInteger(r.logIndex) && r.logIndex > 0, `logIndex ${r.logIndex}`)
      const reader = dbs[(li + 1 + (i % 2)) % 3]
      assert.deepEqual(await reader.query(COUNT, [i], { minIndex: r.logIndex }), [{ c: 1 }], `write ${i}`)
      // A remote client reads locally at the index too (a statement's option, as a bigint).
      const stmt = remote.prepare(COUNT, { consistency: 'local', minIndex: BigInt(r.logIndex) })
      assert.deepEqual(await stmt.all(i), [{ c: 1 }])
    }
    // A batch's results carry their entry's index; a read's result has none.
    const b = await leader.batch([{ sql: 'INSERT INTO t (id) VALUES (?)', args: [1001] }])
    assert.ok(b[0].logIndex > 0)
    assert.equal((await leader.prepare('SELECT 1').result()).logIndex, null)
    assert.ok(leader.lastWriteIndex >= b[0].logIndex)
    // With safeIntegers, indexes are bigints and minIndex takes them.
    const big = await leader.prepare('INSERT INTO t (id) VALUES (1002)').safeIntegers().run()
    assert.equal(typeof big.logIndex, 'bigint')
    const rows = await dbs[(li + 1) % 3].query(COUNT, [1002], { minIndex: big.logIndex })
    assert.deepEqual(rows, [{ c: 1 }])
  })

  test('readYourWrites: a follower and a remote client see their own writes', async () => {
    const { dbs } = cluster
    const li = await agreedLeader(dbs)
    await dbs[li].exec('CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY)')
    const follower = dbs[(li + 1) % 3]
    assert.equal(follower.readYourWrites, true)
    const remote = await Database.connect(cluster.apiUrls[(li + 2) % 3], {
      timeoutMs: 300_000,
      consistency: 'local',
      readYourWrites: true,
    })
    remotes.push(remote)
    assert.equal(remote.readYourWrites, true)
    assert.equal(remote.lastWriteIndex, null)
    for (const [name, db, base] of [['embedded', follower, 10_000], ['remote', remote, 20_000]]) {
      let last = db.lastWriteIndex
      for (let i = base + 1; i <= base + 60; i++) {
        if (i % 3 === 0) {
          await db.execute('INSERT INTO t (id) VALUES (?)', [i])
        } else if (i % 3 === 1) {
          await db.prepare('INSERT INTO t (id) VALUES (?)').run(i)
        } else {
          // The commit names no index: the next local read is a linearizable one.
          await db.exec('BEGIN')
          await db.execute('INSERT INTO t (id) VALUES (?)', [i])
          await db.exec('COMMIT')
        }
        assert.deepEqual(await db.query(COUNT, [i], { consistency: 'local' }), [{ c: 1 }], `${name}: write ${i}`)
        const now = db.lastWriteIndex
        if (last !== null) assert.ok(now !== null && now >= last, `${name}: lastWriteIndex ${last} -> ${now}`)
        last = now
      }
      assert.notEqual(last, null)
    }
  })

  test('bad minIndex values and combinations are clear errors', async () => {
    const db = cluster.dbs[0]
    for (const bad of [-1, 1.5, 'x', 2n ** 64n, -1n, true, Number.MAX_SAFE_INTEGER + 2]) {
      await rejectsWith(db.query('SELECT 1', [], { minIndex: bad }), 'HIQLITE_INVALID_REQUEST', /minIndex|log index/)
    }
    await rejectsWith(
      db.query('SELECT 1', [], { minIndex: 1, consistency: 'leader' }),
      'HIQLITE_INVALID_REQUEST',
      /minIndex reads locally/,
    )
    await rejectsWith(db.query('SELECT 1', [], { minIndex: 1, cache: true }), 'HIQLITE_INVALID_REQUEST', /cache/)
    assert.throws(() => db.prepare('SELECT 1', { minIndex: -3 }), (e) => e instanceof HiqliteError)
    assert.deepEqual(await db.query('SELECT 1 AS one', [], { minIndex: 0 }), [{ one: 1 }])
    assert.deepEqual(await db.query('SELECT 1 AS one', [], { minIndex: null }), [{ one: 1 }])
  })
})
