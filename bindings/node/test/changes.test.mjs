// Change streams and live queries from Node: resuming at a cursor without gaps or repeats
// (embedded and through a remote client), the tables filter, old values, a cursor too old, bad
// options, close() / return() / leaving a `for await` loop, watches, and a process that exits
// by itself once its stream and watch are closed.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'

import { ChangeStream, Database, HiqliteError, Watch } from '../index.js'
import { openSingle, tempDir } from './helpers.mjs'

const DEADLINE_MS = 180_000

/** Fail if `promise` is not settled within a deadline no healthy run reaches. */
function within(promise, what) {
  let timer
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), DEADLINE_MS)
  })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

/** Read `n` changes without closing the stream. */
async function take(stream, n) {
  const got = []
  while (got.length < n) {
    const { done, value } = await within(stream.next(), `change ${got.length + 1} of ${n}`)
    assert.equal(done, false, `ended after ${got.length} of ${n}`)
    got.push(value)
  }
  return got
}

/** Read a watch until its rows equal `want`. */
async function until(watch, want) {
  for (;;) {
    const { done, value } = await within(watch.next(), `rows ${JSON.stringify(want)}`)
    assert.equal(done, false)
    try {
      assert.deepEqual(value, want)
      return
    } catch {
      // not yet
    }
  }
}

const code = (c) => (e) => e instanceof HiqliteError && e.code === c
const ids = (changes) => changes.map((c) => c.new.id)
const range = (a, b) => Array.from({ length: b - a }, (_, i) => a + i)

async function insert(db, first, n) {
  for (let i = first; i < first + n; i++) {
    await db.execute('INSERT INTO items (id, v) VALUES (?, ?)', [i, `item-${i}`])
  }
}

describe('change streams and watches on one node', () => {
  let db
  let remote

  before(async () => {
    db = await Database.open({
      node: {
        dataDir: tempDir(),
        raftAddr: '127.0.0.1:0',
        apiAddr: '127.0.0.1:0',
        secret: 'node-test-secret',
        heartbeatMs: 200,
        electionTimeoutMinMs: 2000,
        electionTimeoutMaxMs: 4000,
        requestTimeoutMs: 60_000,
        changeRetention: 150,
      },
    })
    await db.waitForLeader(60_000)
    remote = await Database.connect([`http://${(await db.status()).apiAddr}`], { timeoutMs: 300_000 })
    await db.execute('CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT)')
    await db.execute('CREATE TABLE other (k TEXT PRIMARY KEY, b BLOB) WITHOUT ROWID')
  })

  after(async () => {
    await remote?.close()
    await db?.close()
  })

  test('resume at the last cursor: no gap, no repeat, embedded and remote', async () => {
    const first = await db.changes({ tables: ['items'] })
    assert.ok(first instanceof ChangeStream)
    const far = await remote.changes({ tables: ['ITEMS'] })
    await insert(db, 0, 100)
    const half = await take(first, 50)
    assert.deepEqual(ids(half), range(0, 50))
    for (const c of half) {
      assert.equal(c.table, 'items')
      assert.equal(c.op, 'insert')
      assert.equal(c.rowid, c.new.id)
      assert.deepEqual(c.key, [c.new.id])
      assert.equal(c.old, null)
      assert.equal(c.cursor, `${c.index}.${c.seq + 1}`)
    }
    assert.equal(first.closed, false)
    await first.return()
    assert.equal(first.closed, true)
    assert.deepEqual(await first.next(), { done: true, value: undefined })

    const rest = await db.changes({ from: half.at(-1).cursor })
    assert.deepEqual(ids(await take(rest, 50)), range(50, 100))
    rest.close()
    const all = await take(far, 100)
    assert.deepEqual(ids(all), range(0, 100))
    far.close()
    // Remote, resumed in the middle.
    const again = await remote.changes({ from: all[24].cursor, tables: ['items'] })
    assert.deepEqual(ids(await take(again, 75)), range(25, 100))
    again.close()
  })

  test('tables filter, old values, ops, blobs and keys of a WITHOUT ROWID table', async () => {
    const other = await db.changes({ tables: ['other'], oldValues: true })
    const everything = await db.changes()
    await db.execute("INSERT INTO items (id, v) VALUES (1000, 'x')")
    await db.execute("INSERT INTO other (k, b) VALUES ('x', ?)", [Buffer.from([0, 255])])
    await db.execute("UPDATE other SET b = NULL WHERE k = 'x'")
    await db.execute("DELETE FROM other WHERE k = 'x'")
    const got = await take(other, 3)
    assert.deepEqual(got.map((c) => c.op), ['insert', 'update', 'delete'])
    for (const c of got) {
      assert.equal(c.table, 'other')
      assert.equal(c.rowid, null)
      assert.deepEqual(c.key, ['x'])
    }
    assert.deepEqual(got[0].new, { k: 'x', b: Buffer.from([0, 255]) })
    assert.equal(got[0].old, null)
    assert.deepEqual(got[1].old, { k: 'x', b: Buffer.from([0, 255]) })
    assert.deepEqual(got[1].new, { k: 'x', b: null })
    assert.deepEqual(got[2].old, { k: 'x', b: null })
    assert.equal(got[2].new, null)
    const four = await take(everything, 4)
    assert.deepEqual(four.map((c) => c.table), ['items', 'other', 'other', 'other'])
    assert.ok(four.every((c) => c.old === null))
    other.close()
    // A next() that waits ends once the stream is closed.
    const pending = everything.next()
    everything.close()
    assert.deepEqual(await within(pending, 'a waiting next() ends at close'), { done: true, value: undefined })
  })

  test('leaving a for await loop closes the stream', async () => {
    const s = await db.changes({ tables: ['items'] })
    await db.execute("INSERT INTO items (id, v) VALUES (2000, 'y')")
    for await (const c of s) {
      assert.equal(c.new.id, 2000)
      break
    }
    assert.equal(s.closed, true)
  })

  test('a watch gives rows at once and after each write that changes them', async () => {
    const w = await db.watch('SELECT id, v FROM items WHERE v LIKE ? ORDER BY id', ['w%'])
    assert.ok(w instanceof Watch)
    assert.deepEqual((await within(w.next(), 'first rows')).value, [])
    await db.execute("INSERT INTO items (id, v) VALUES (3001, 'w1')")
    await until(w, [{ id: 3001, v: 'w1' }])
    await db.execute("INSERT INTO items (id, v) VALUES (3002, 'nope')")
    await db.execute("INSERT INTO items (id, v) VALUES (3003, 'w3')")
    await until(w, [{ id: 3001, v: 'w1' }, { id: 3003, v: 'w3' }])
    const pending = w.next()
    w.close()
    assert.deepEqual(await within(pending, 'a waiting next() ends at close'), { done: true, value: undefined })
    const rw = await remote.watch('SELECT v FROM items WHERE id = :id', { id: 3001 })
    await until(rw, [{ v: 'w1' }])
    await db.execute("UPDATE items SET v = 'w1!' WHERE id = 3001")
    await until(rw, [{ v: 'w1!' }])
    await rw.return()
  })

  test('bad options and a cursor too old reject clearly', async () => {
    for (const from of ['', 'x', '1.', '-1', '1.2.3']) {
      await assert.rejects(db.changes({ from }), (e) => code('HIQLITE_INVALID_REQUEST')(e) && /not a change cursor/.test(e.message))
    }
    await assert.rejects(db.changes({ from: 5 }), code('HIQLITE_INVALID_REQUEST'))
    await assert.rejects(db.changes({ tables: 'items' }), code('HIQLITE_INVALID_REQUEST'))
    await assert.rejects(db.changes({ tables: [''] }), code('HIQLITE_INVALID_REQUEST'))
    await assert.rejects(db.changes({ tables: [1] }), code('HIQLITE_INVALID_REQUEST'))
    await assert.rejects(db.changes({ oldValues: 'yes' }), code('HIQLITE_INVALID_REQUEST'))
    await assert.rejects(db.changes({ form: '1' }), /unknown field `form`/)
    await assert.rejects(db.changes(42), code('HIQLITE_INVALID_REQUEST'))
    await assert.rejects(db.watch('SELECT 1'), /nothing to watch/)
    await assert.rejects(db.watch(42), code('HIQLITE_INVALID_REQUEST'))
    await assert.rejects(db.watch('SELECT * FROM no_such'), /no_such/)
  })

  test('a cursor older than the node keeps rejects with HIQLITE_CURSOR_TOO_OLD', async () => {
    const keeps = await db.changes({ from: '1' }).then(
      (s) => {
        s.close()
        return true
      },
      (e) => {
        assert.ok(code('HIQLITE_CURSOR_TOO_OLD')(e), e)
        return false
      },
    )
    if (keeps) {
      // The node keeps everything so far: write past its retention, then index 1 is gone.
      await insert(db, 10_000, 200)
      await assert.rejects(db.changes({ from: '1' }), (e) => code('HIQLITE_CURSOR_TOO_OLD')(e) && /too old/.test(e.message))
    }
    await assert.rejects(remote.changes({ from: '1' }), code('HIQLITE_CURSOR_TOO_OLD'))
  })
})

test('a process exits by itself once its stream and watch are closed', async () => {
  const db = await openSingle({}, { changeRetention: 1000 })
  try {
    await db.execute('CREATE TABLE t (x)')
    const url = `http://${(await db.status()).apiAddr}`
    const index = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'index.js')
    const script = `
      const { Database } = require(${JSON.stringify(index)})
      ;(async () => {
        const db = await Database.connect([${JSON.stringify(url)}], { timeoutMs: 300000 })
        const w = await db.watch('SELECT count(*) AS n FROM t')
        const stream = await db.changes({ tables: ['t'] })
        console.log('watching')
        for await (const c of stream) {
          console.log('change ' + c.new.x)
          stream.close()
        }
        w.close()
        console.log('closed')
      })()`
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
    const killer = setTimeout(() => child.kill('SIGKILL'), DEADLINE_MS)
    let stdout = ''
    let written = false
    child.stdout.on('data', (d) => {
      stdout += d
      if (!written && stdout.includes('watching\n')) {
        written = true
        db.execute('INSERT INTO t (x) VALUES (7)').catch(() => {})
      }
    })
    const exitCode = await new Promise((resolve) => child.on('exit', (c) => resolve(c)))
    clearTimeout(killer)
    assert.equal(exitCode, 0, stdout)
    assert.match(stdout, /change 7\n/)
    assert.match(stdout, /closed\n/)
  } finally {
    await db.close()
  }
})
