// listen/notify from Node: every notification in one order on every node of a 3-node cluster
// and through a remote client, resuming after an id, the lag marker of a listener that fell
// behind (nothing missed), close() and leaving a `for await` loop, the end of a listener whose
// node was closed, bad arguments, and a process that exits by itself once its listener is closed.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'

import { Database, HiqliteError, Listener } from '../index.js'
import { openCluster, openSingle } from './helpers.mjs'

const DEADLINE_MS = 180_000

/** Fail if `promise` is not settled within a deadline no healthy run reaches. */
function within(promise, what) {
  let timer
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), DEADLINE_MS)
  })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

/** Read `n` notifications (lag markers collected aside) without closing the listener. */
async function take(listener, n) {
  const notes = []
  const lags = []
  while (notes.length < n) {
    const { done, value } = await within(listener.next(), `notification ${notes.length + 1} of ${n}`)
    assert.equal(done, false, `ended after ${notes.length} of ${n}`)
    if (value.type === 'lagged') lags.push(value)
    else notes.push(value)
  }
  return { notes, lags }
}

const code = (c) => (e) => e instanceof HiqliteError && e.code === c

describe('listen/notify on a 3-node cluster', () => {
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

  test('one order on every node and over HTTP', async () => {
    const listeners = await Promise.all([...cluster.dbs, remote].map((db) => db.listen('orders')))
    assert.ok(listeners.every((l) => l instanceof Listener && l.channel === 'orders' && !l.closed))
    const other = await cluster.dbs[1].listen('other')
    const total = 300
    const publishers = [...cluster.dbs, remote]
    const ids = []
    for (let i = 0; i < total; i++) ids.push(await publishers[i % 4].notify('orders', `n-${i}`))
    assert.ok(ids.every((id, i) => typeof id === 'number' && (i === 0 || id > ids[i - 1])))
    const otherId = await cluster.dbs[2].notify('other', Buffer.from([0, 255]))
    for (const l of listeners) {
      const { notes, lags } = await take(l, total)
      assert.deepEqual(lags, [])
      assert.deepEqual(
        notes.map((n) => n.id),
        ids,
      )
      assert.deepEqual(
        notes.map((n) => n.payload.toString()),
        ids.map((_, i) => `n-${i}`),
      )
      assert.ok(notes.every((n) => n.type === 'notification' && n.channel === 'orders' && Buffer.isBuffer(n.payload)))
      l.close()
      assert.equal(l.closed, true)
      assert.deepEqual(await l.next(), { done: true, value: undefined })
    }
    const { notes } = await take(other, 1)
    assert.deepEqual(notes, [{ type: 'notification', id: otherId, channel: 'other', payload: Buffer.from([0, 255]) }])
    other.close()

    // Resume after an id (number or bigint) on any node and remote; `after: 0` from the start.
    for (const [db, cursor] of [
      [cluster.dbs[2], ids[199]],
      [remote, BigInt(ids[199])],
    ]) {
      const resumed = await db.listen('orders', { after: cursor })
      const got = []
      for await (const ev of resumed) {
        got.push(ev.id)
        if (got.length === total - 200) break // leaving the loop closes the listener
      }
      assert.deepEqual(got, ids.slice(200))
      assert.equal(resumed.closed, true)
    }
    const fromStart = await cluster.dbs[0].listen('orders', { after: 0 })
    assert.deepEqual((await take(fromStart, total)).notes.map((n) => n.id), ids)
    await fromStart[Symbol.asyncDispose]()
    assert.equal(fromStart.closed, true)
  })

  test('ids as bigint with safeIntegers', async () => {
    const db = await Database.connect(cluster.apiUrls, { timeoutMs: 300_000, safeIntegers: true })
    const l = await db.listen('big')
    const id = await db.notify('big', 'x')
    assert.equal(typeof id, 'bigint')
    const { notes } = await take(l, 1)
    assert.equal(notes[0].id, id)
    l.close()
    await db.close()
  })
})

describe('listen/notify on one node', () => {
  let db

  before(async () => {
    db = await openSingle()
  })

  after(() => db?.close())

  test('a listener that falls behind gets a lag marker and misses nothing', async () => {
    const slow = await db.listen('busy')
    // More than the in-memory buffer (4,096) is published while the listener reads nothing.
    const total = 4800
    const ids = await Promise.all(Array.from({ length: total }, (_, i) => db.notify('busy', `b-${i}`)))
    const { notes, lags } = await take(slow, total)
    assert.ok(lags.length > 0 && lags.every((l) => l.type === 'lagged' && l.lost === false), JSON.stringify(lags))
    const got = notes.map((n) => n.id)
    assert.deepEqual(got, [...got].sort((a, b) => a - b))
    assert.deepEqual(got, [...ids].sort((a, b) => a - b))
    slow.close()
  })

  test('close() and return() end a waiting next()', async () => {
    const l = await db.listen('quiet')
    const pending = l.next()
    l.close()
    assert.deepEqual(await within(pending, 'close ends next'), { done: true, value: undefined })
    const m = await db.listen('quiet')
    const waiting = m.next()
    assert.deepEqual(await m.return(), { done: true, value: undefined })
    assert.deepEqual(await within(waiting, 'return ends next'), { done: true, value: undefined })
    m.close() // again: nothing
  })

  test('bad arguments', async () => {
    await assert.rejects(db.notify('', 'x'), code('HIQLITE_INVALID_REQUEST'))
    await assert.rejects(db.notify('ch', 42), code('HIQLITE_INVALID_REQUEST'))
    await assert.rejects(db.notify(null, 'x'), code('HIQLITE_INVALID_REQUEST'))
    await assert.rejects(db.listen(''), code('HIQLITE_INVALID_REQUEST'))
    await assert.rejects(db.listen('ch', { after: 1.5 }), code('HIQLITE_INVALID_REQUEST'))
    await assert.rejects(db.listen('ch', { since: 1 }), code('HIQLITE_INVALID_REQUEST'))
    await assert.rejects(db.listen('ch', 5), code('HIQLITE_INVALID_REQUEST'))
    const l = await db.listen('ch', { after: null })
    l.close()
  })
})

test('closing an embedded node ends its listeners with HIQLITE_SHUTDOWN', async () => {
  const db = await openSingle()
  const l = await db.listen('gone')
  // Observed from now on: it may reject before close() resolves.
  const ended = assert.rejects(within(l.next(), 'the listener ends'), code('HIQLITE_SHUTDOWN'))
  await db.close()
  await ended
  assert.deepEqual(await l.next(), { done: true, value: undefined })
  await assert.rejects(db.listen('gone'), code('HIQLITE_SHUTDOWN'))
  await assert.rejects(db.notify('gone', 'x'), code('HIQLITE_SHUTDOWN'))
})

test('a process exits by itself once its listener is closed', async () => {
  // A child process listens through a remote client, gets one notification, closes the listener
  // and does nothing else: a pending next() kept it alive, nothing may once it is closed.
  const db = await openSingle()
  try {
    const url = `http://${(await db.status()).apiAddr}`
    const index = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'index.js')
    const script = `
      const { Database } = require(${JSON.stringify(index)})
      ;(async () => {
        const db = await Database.connect([${JSON.stringify(url)}], { timeoutMs: 300000 })
        const listener = await db.listen('exit')
        console.log('listening')
        for await (const ev of listener) {
          console.log(ev.payload.toString())
          listener.close()
        }
        console.log('closed')
      })()`
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
    const killer = setTimeout(() => child.kill('SIGKILL'), DEADLINE_MS)
    let stdout = ''
    let notified = false
    child.stdout.on('data', (d) => {
      stdout += d
      // Subscribed: one notification for it.
      if (!notified && stdout.includes('listening\n')) {
        notified = true
        db.notify('exit', 'bye')
      }
    })
    const status = await new Promise((resolve) => child.on('close', (c, signal) => resolve(signal ?? c)))
    clearTimeout(killer)
    assert.equal(status, 0, `the child did not exit by itself: ${status}, ${stdout}`)
    assert.match(stdout, /^listening\nbye\nclosed\n$/)
  } finally {
    await db.close()
  }
})
