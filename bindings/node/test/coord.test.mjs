// Coordination primitives from Node: replicated key/value entries (TTL, CAS, get-and-delete,
// namespace limits) and counters, on a 3-node cluster of embedded nodes and through a remote
// client.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import { Database, HiqliteError } from '../index.js'
import { eventually, openCluster, openSingle } from './helpers.mjs'

describe('coordination on a 3-node cluster', () => {
  let cluster
  let remote

  before(async () => {
    cluster = await openCluster(3)
    remote = await Database.connect(cluster.apiUrls, { timeoutMs: 300_000 })
  })

  after(async () => {
    await remote?.close()
    for (const db of cluster?.dbs ?? []) await db.close()
  })

  test('put and get across nodes', async () => {
    const [a, b, c] = cluster.dbs
    await a.kvPut('cfg', 'bytes', Buffer.from([0, 255]))
    await b.kvPut('cfg', 'text', 'héllo')
    await c.kvPut('cfg', 'u8', new Uint8Array([1, 2, 3]))
    for (const db of cluster.dbs) {
      assert.deepEqual(await db.kvGet('cfg', 'bytes', 'linearizable'), Buffer.from([0, 255]))
      assert.equal((await db.kvGet('cfg', 'text', 'linearizable')).toString('utf8'), 'héllo')
      assert.deepEqual(await db.kvGet('cfg', 'u8', 'leader'), Buffer.from([1, 2, 3]))
      assert.equal(await db.kvGet('cfg', 'missing', 'linearizable'), null)
    }
    // Local reads (the default) catch up on every replica.
    for (const db of cluster.dbs) {
      await eventually(async () => assert.deepEqual(await db.kvGet('cfg', 'bytes'), Buffer.from([0, 255])))
    }
    await b.kvPutJson('cfg', 'doc', { n: [1, 2.5, null], s: 'ü', ok: true })
    assert.deepEqual(await c.kvGetJson('cfg', 'doc', 'linearizable'), { n: [1, 2.5, null], s: 'ü', ok: true })
    assert.equal(await c.kvGetJson('cfg', 'nothing', 'linearizable'), null)
    assert.equal(await c.kvDelete('cfg', 'text'), true)
    assert.equal(await c.kvDelete('cfg', 'text'), false)
    for (const db of cluster.dbs) assert.equal(await db.kvGet('cfg', 'text', 'linearizable'), null)
  })

  test('a TTL expires the entry on every node', async () => {
    const [a, b] = cluster.dbs
    await a.kvPut('sessions', 's1', 'alive', 1000)
    await b.kvPut('sessions', 'forever', 'stays')
    for (const db of cluster.dbs) {
      await eventually(async () => assert.equal(await db.kvGet('sessions', 's1', 'linearizable'), null))
      await eventually(async () => assert.equal(await db.kvGet('sessions', 's1'), null))
      assert.equal((await db.kvGet('sessions', 'forever', 'linearizable')).toString(), 'stays')
    }
  })

  test('compare and swap: exactly one contender wins', async () => {
    const { dbs } = cluster
    const contenders = Array.from({ length: 9 }, (_, i) =>
      dbs[i % 3].kvReplace('locks', 'leader', null, `owner-${i}`, 300_000),
    )
    const results = await Promise.all(contenders)
    assert.equal(results.filter(Boolean).length, 1)
    const owner = `owner-${results.indexOf(true)}`
    for (const db of dbs) assert.equal((await db.kvGet('locks', 'leader', 'linearizable')).toString(), owner)
    assert.equal(await dbs[1].kvReplace('locks', 'leader', 'someone-else', 'x'), false)
    assert.equal(await dbs[1].kvReplace('locks', 'leader', Buffer.from(owner), 'next'), true)
    assert.equal((await dbs[2].kvGet('locks', 'leader', 'linearizable')).toString(), 'next')
    assert.equal(await dbs[2].kvReplace('locks', 'leader', 'next', null), true)
    assert.equal(await dbs[0].kvGet('locks', 'leader', 'linearizable'), null)
  })

  test('get-and-delete and namespace limits', async () => {
    const { dbs } = cluster
    await dbs[0].kvPut('queue', 'job', 'payload')
    assert.equal((await dbs[1].kvGetAndDelete('queue', 'job')).toString(), 'payload')
    assert.equal(await dbs[2].kvGetAndDelete('queue', 'job'), null)
    for (const db of dbs) assert.equal(await db.kvGet('queue', 'job', 'linearizable'), null)
    await dbs[0].kvSetLimit('lru', 2)
    for (const k of ['a', 'b', 'c']) await dbs[1].kvPut('lru', k, k)
    for (const db of dbs) {
      const got = await Promise.all(['a', 'b', 'c'].map((k) => db.kvGet('lru', k, 'linearizable')))
      assert.deepEqual(got, [null, Buffer.from('b'), Buffer.from('c')])
    }
    await dbs[2].kvSetLimit('lru', null)
    await dbs[0].kvPut('lru', 'd', 'd')
    assert.deepEqual(await dbs[0].kvGet('lru', 'b', 'linearizable'), Buffer.from('b'))
  })

  test('counters: concurrent adders sum exactly; large values are bigints', async () => {
    const { dbs } = cluster
    assert.equal(await dbs[0].counterGet('hits'), 0)
    const adds = []
    for (let i = 0; i < 60; i++) adds.push(dbs[i % 3].counterAdd('hits'))
    const values = await Promise.all(adds)
    assert.deepEqual([...values].sort((x, y) => x - y), Array.from({ length: 60 }, (_, i) => i + 1))
    for (const db of dbs) assert.equal(await db.counterGet('hits', 'linearizable'), 60)
    assert.equal(await dbs[1].counterAdd('hits', -20), 40)
    assert.equal(await dbs[2].counterSet('hits', 2n ** 62n), 2n ** 62n)
    assert.equal(await dbs[0].counterAdd('hits', 5), 2n ** 62n + 5n)
    assert.equal(await dbs[0].counterSet('hits', Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER)
    for (const db of dbs) {
      await eventually(async () => assert.equal(await db.counterGet('hits'), Number.MAX_SAFE_INTEGER))
    }
  })

  test('through a remote client', async () => {
    await remote.kvPut('remote', 'k', 'v', 600_000)
    assert.equal((await remote.kvGet('remote', 'k', 'linearizable')).toString(), 'v')
    assert.equal((await cluster.dbs[0].kvGet('remote', 'k', 'linearizable')).toString(), 'v')
    assert.equal(await remote.kvReplace('remote', 'k', 'v', 'w'), true)
    assert.equal((await remote.kvGetAndDelete('remote', 'k')).toString(), 'w')
    await remote.kvPutJson('remote', 'j', [1, 'two'])
    assert.deepEqual(await remote.kvGetJson('remote', 'j', 'linearizable'), [1, 'two'])
    assert.equal(await remote.counterAdd('remote-counter', 3), 3)
    assert.equal(await remote.counterGet('remote-counter', 'linearizable'), 3)
    assert.equal(await cluster.dbs[1].counterGet('remote-counter', 'linearizable'), 3)
  })
})

describe('coordination: bad input', () => {
  test('is refused with HiqliteError codes', async () => {
    const db = await openSingle()
    try {
      const invalid = (e) => e instanceof HiqliteError && e.code === 'HIQLITE_INVALID_REQUEST'
      await assert.rejects(db.kvPut('', 'k', 'v'), invalid)
      await assert.rejects(db.counterAdd('', 1), invalid)
      await assert.rejects(db.kvPut('ns', 'k', 42), invalid)
      await assert.rejects(db.kvPut('ns', 'k', { a: 1 }), invalid)
      await assert.rejects(db.kvGet('ns', 'k', 'sometimes'), invalid)
      await assert.rejects(db.kvPut('ns', 'k', 'v', -5), invalid)
      await assert.rejects(db.counterAdd('c', 1.5), invalid)
      await assert.rejects(db.counterAdd('c', 2n ** 64n), invalid)
      await assert.rejects(db.kvSetLimit('ns', -1), invalid)
      await assert.rejects(db.kvPutJson('ns', 'k', 10n), invalid)
      await db.kvPut('ns', 'not-json', Buffer.from([0xff]))
      await assert.rejects(db.kvGetJson('ns', 'not-json'), (e) => e instanceof HiqliteError && e.code === 'HIQLITE_DECODE')
      const safe = await openSingle({ safeIntegers: true })
      try {
        assert.equal(await safe.counterAdd('c', 2), 2n)
      } finally {
        await safe.close()
      }
    } finally {
      await db.close()
    }
    await assert.rejects(db.kvGet('ns', 'k'), (e) => e instanceof HiqliteError && e.code === 'HIQLITE_SHUTDOWN')
  })
})
