// A 3-node cluster of embedded nodes in this process, and remote clients of it.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import { Database, HiqliteError } from '../index.js'
import { agreedLeader, eventually, freePort } from './helpers.mjs'
import { openCluster } from './helpers.mjs'

describe('3-node cluster from Node', () => {
  let cluster
  const remotes = []

  before(async () => {
    cluster = await openCluster(3)
  })

  after(async () => {
    for (const r of remotes) await r.close()
    for (const db of cluster?.dbs ?? []) await db.close()
  })

  test('exactly one node leads and every node knows the members', async () => {
    const { dbs } = cluster
    const leader = await agreedLeader(dbs)
    assert.equal(dbs.filter((db) => db.isLeader()).length, 1)
    const st = await dbs[leader].status()
    assert.equal(st.state, 'Leader')
    assert.deepEqual([...st.voters].sort(), [1, 2, 3])
    assert.equal(st.members.length, 3)
    assert.equal(dbs[0].remote, false)
    const nodes = await dbs[(leader + 1) % 3].nodes()
    assert.deepEqual(nodes.map((n) => n.id).sort(), [1, 2, 3])
    assert.ok(nodes.every((n) => n.reachable && n.voter))
    assert.equal(nodes.filter((n) => n.leader).length, 1)
  })

  test('writes through a follower replicate to every node', async () => {
    const { dbs } = cluster
    const leader = await agreedLeader(dbs)
    const f1 = dbs[(leader + 1) % 3]
    const f2 = dbs[(leader + 2) % 3]
    await f1.exec('CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB, n INTEGER)')
    const put = f1.prepare('INSERT INTO kv (k, v, n) VALUES (?, ?, ?)')
    for (let i = 0; i < 10; i++) {
      const r = await put.run(`k${i}`, Buffer.from([i, 255 - i]), 2n ** 60n + BigInt(i))
      assert.equal(r.changes, 1)
    }
    // A linearizable read on the other follower sees every acknowledged write.
    const rows = await f2.prepare('SELECT k, v, n FROM kv ORDER BY k', { consistency: 'linearizable' }).all()
    assert.equal(rows.length, 10)
    assert.deepEqual(rows[3], { k: 'k3', v: Buffer.from([3, 252]), n: 2n ** 60n + 3n })
    // Local reads catch up on every node.
    for (const db of dbs) {
      await eventually(async () => {
        const [{ c }] = await db.query('SELECT count(*) AS c FROM kv')
        assert.equal(c, 10)
      })
    }
    // A leader read from a follower is forwarded.
    const row = await f1.prepare('SELECT n FROM kv WHERE k = ?', { consistency: 'leader' }).get('k9')
    assert.equal(row.n, 2n ** 60n + 9n)
  })

  test('remote client: same API over HTTP, errors keep their codes', async () => {
    // A deadline no call here can reach on a slow machine: this test is not about timeouts.
    const remote = await Database.connect(cluster.apiUrls, { timeoutMs: 300_000 })
    remotes.push(remote)
    assert.equal(remote.remote, true)
    assert.equal(remote.isLeader(), false)
    await remote.exec('CREATE TABLE r (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)')
    const r = await remote.prepare('INSERT INTO r (name) VALUES (?)').run('ada')
    assert.deepEqual(r, { changes: 1, lastInsertRowid: 1, logIndex: r.logIndex })
    assert.ok(Number.isInteger(r.logIndex) && r.logIndex > 0)
    // The default level of a remote client is `leader`: it reads its own writes.
    assert.deepEqual(await remote.prepare('SELECT * FROM r').all(), [{ id: 1, name: 'ada' }])
    const ret = await remote.prepare('INSERT INTO r (name) VALUES (@name) RETURNING id, name').get({ name: 'bob' })
    assert.deepEqual(ret, { id: 2, name: 'bob' })
    await assert.rejects(remote.execute('INSERT INTO r (name) VALUES (?)', ['ada']), (e) => {
      assert.ok(e instanceof HiqliteError)
      assert.equal(e.code, 'SQLITE_CONSTRAINT_UNIQUE')
      assert.equal(e.sqliteCode, 2067)
      return true
    })
    await assert.rejects(remote.execute('INSERT INTO r (name) VALUES (NULL)'), { code: 'SQLITE_CONSTRAINT_NOTNULL' })
    const batch = await remote.batch([
      { sql: 'INSERT INTO r (name) VALUES (?)', args: ['cy'] },
      { sql: 'INSERT INTO r (name) VALUES (:n)', args: { n: 'di' } },
    ])
    assert.deepEqual(
      batch.map((b) => b.changes),
      [1, 1],
    )
    const cached = await remote.query('SELECT count(*) AS c FROM r', [], { consistency: 'local', cache: true })
    assert.ok(cached[0].c >= 2 && cached[0].c <= 4)
    const lin = await remote.query('SELECT count(*) AS c FROM r', null, { consistency: 'linearizable' })
    assert.equal(lin[0].c, 4)
    const st = await remote.status()
    assert.ok([1, 2, 3].includes(st.id))
    assert.equal((await remote.nodes()).length, 3)
    // The embedded nodes see what the remote client wrote.
    const [{ c }] = await cluster.dbs[0].query('SELECT count(*) AS c FROM r', [], { consistency: 'linearizable' })
    assert.equal(c, 4)
  })

  test('remote client: a cluster that cannot be reached fails with a code, in time', async () => {
    const port = await freePort()
    const remote = await Database.connect(`http://127.0.0.1:${port}`, { timeoutMs: 500, connectTimeoutMs: 200 })
    remotes.push(remote)
    await assert.rejects(remote.execute('INSERT INTO r (name) VALUES (1)'), (e) => {
      assert.ok(e instanceof HiqliteError)
      assert.ok(['HIQLITE_UNREACHABLE', 'HIQLITE_TIMEOUT'].includes(e.code), e.code)
      return true
    })
    await assert.rejects(remote.query('SELECT 1'), (e) => e instanceof HiqliteError && e.code.startsWith('HIQLITE_'))
  })
})
