// Distributed locks from Node: mutual exclusion across the nodes of a 3-node cluster and a
// remote client, fencing tokens, FIFO waiting with a deadline, release by `release()`, by
// `Symbol.asyncDispose` and by a collected `Lock`.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import v8 from 'node:v8'
import vm from 'node:vm'

import { Database, HiqliteError, Lock } from '../index.js'
import { eventually, openCluster, openSingle } from './helpers.mjs'

// The garbage collector, callable without `node --expose-gc`.
v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc')

const timeout = (e) => e instanceof HiqliteError && e.code === 'HIQLITE_TIMEOUT'

describe('locks on a 3-node cluster', () => {
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

  test('one holder at a time, across nodes', async () => {
    const [a, b, c] = cluster.dbs
    const first = await a.tryLock('job', { leaseMs: 30_000 })
    assert.ok(first instanceof Lock)
    assert.equal(first.name, 'job')
    assert.equal(first.isHeld(), true)
    assert.equal(typeof first.token, 'number')
    assert.equal(await b.tryLock('job'), null)
    assert.equal(await c.tryLock('job'), null)
    assert.equal(await a.tryLock('job'), null) // not reentrant
    assert.equal(await remote.tryLock('job'), null)
    assert.equal(await first.release(), true)
    assert.equal(first.isHeld(), false)
    assert.equal(await first.release(), false)
    const second = await b.tryLock('job', { leaseMs: 30_000 })
    assert.ok(second !== null && second.token > first.token)
    assert.equal(await c.tryLock('job'), null)
    await second.release()
    // Other names are independent.
    const [x, y] = await Promise.all([a.tryLock('x'), b.tryLock('y')])
    assert.ok(x && y)
    await Promise.all([x.release(), y.release()])
  })

  test('tokens grow across holders; asyncDispose releases', async () => {
    const tokens = []
    for (const db of [...cluster.dbs, remote, cluster.dbs[0]]) {
      const lock = await db.lock('section', { leaseMs: 30_000, waitMs: 60_000 })
      tokens.push(lock.token)
      for (const other of cluster.dbs) assert.equal(await other.tryLock('section'), null)
      await lock[Symbol.asyncDispose]()
      assert.equal(lock.isHeld(), false)
    }
    assert.deepEqual([...tokens].sort((p, q) => p - q), tokens)
    assert.equal(new Set(tokens).size, tokens.length)
  })

  test('a waiter times out; a patient waiter gets the lock when it is released', async () => {
    const [a, b, c] = cluster.dbs
    const held = await a.lock('queue', { leaseMs: 30_000, waitMs: 10_000 })
    await assert.rejects(b.lock('queue', { waitMs: 300 }), timeout)
    // A wait that runs out is withdrawn by the server: a definite timeout, remote too.
    await assert.rejects(remote.lock('queue', { waitMs: 300 }), timeout)
    const waiting = c.lock('queue', { leaseMs: 30_000, waitMs: 120_000 })
    assert.equal(await b.tryLock('queue'), null)
    assert.equal(await held.release(), true)
    const got = await waiting
    assert.ok(got.isHeld() && got.token > held.token)
    assert.equal(await a.tryLock('queue'), null)
    await got.release()
  })

  test('a Lock collected without release() releases the lock', async () => {
    const [a, b] = cluster.dbs
    let token
    await (async () => {
      const lock = await a.tryLock('dropped', { leaseMs: 60_000 })
      token = lock.token
    })()
    let taken = null
    // Well before the 60 s lease would end.
    await eventually(async () => {
      gc()
      taken = await b.tryLock('dropped', { leaseMs: 60_000 })
      assert.ok(taken !== null)
    }, 30_000)
    assert.ok(taken.token > token)
    await taken.release()
  })
})

describe('locks: bad input and options', () => {
  test('are refused with HiqliteError codes; safeIntegers gives a bigint token', async () => {
    const db = await openSingle()
    try {
      const invalid = (e) => e instanceof HiqliteError && e.code === 'HIQLITE_INVALID_REQUEST'
      await assert.rejects(db.lock('l', { leaseMs: 0 }), invalid)
      await assert.rejects(db.tryLock('l', { leaseMs: -1 }), invalid)
      await assert.rejects(db.lock('l', { waitMs: 'soon' }), invalid)
      await assert.rejects(db.tryLock('l', { waitMs: 1 }), invalid)
      await assert.rejects(db.lock(42), invalid)
      const safe = await openSingle({ safeIntegers: true })
      try {
        const lock = await safe.lock('l')
        assert.equal(typeof lock.token, 'bigint')
        await lock.release()
      } finally {
        await safe.close()
      }
    } finally {
      await db.close()
    }
    await assert.rejects(db.tryLock('l'), (e) => e instanceof HiqliteError && e.code === 'HIQLITE_SHUTDOWN')
  })
})
