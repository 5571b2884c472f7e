// Runs test/differential_runner.mjs (tests/differential/PROTOCOL.md) against a 3-node cluster
// with a few steps and checks every result: the Rust harness trusts this runner's output.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, test } from 'node:test'

import { openCluster } from './helpers.mjs'

const runner = path.join(path.dirname(fileURLToPath(import.meta.url)), 'differential_runner.mjs')

/** Run the runner on `input`; resolves to its parsed stdout (it must exit 0). */
function run(input, deadlineMs = 120_000) {
  // Without NODE_TEST_CONTEXT, which tells the runner that `node --test` started it.
  const env = { ...process.env }
  delete env.NODE_TEST_CONTEXT
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [runner], { env, stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), deadlineMs)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      if (code !== 0) return reject(new Error(`runner exited ${code}: ${err}`))
      try {
        resolve({ parsed: JSON.parse(out), raw: out })
      } catch (e) {
        reject(new Error(`unparsable runner output ${JSON.stringify(out)}: ${e.message}; stderr: ${err}`))
      }
    })
    child.stdin.end(JSON.stringify(input))
  })
}

let cluster
before(async () => {
  cluster = await openCluster(3)
})
after(async () => {
  for (const db of cluster?.dbs ?? []) await db.close()
})

test('the differential runner speaks the protocol', async () => {
  const exec = (sql, read = false) => ({ op: 'exec', sql, read })
  const steps = [
    exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE, r REAL, b BLOB)'),
    exec("INSERT INTO t (v, r, b) VALUES ('a', 1.5, x'00ff')"),
    { op: 'begin' },
    exec("INSERT INTO t (v) VALUES ('b')"),
    exec('SELECT id, v, r, b FROM t ORDER BY id', true),
    exec("INSERT INTO t (v) VALUES ('a')"),
    exec('SELECT count(*) AS n FROM t', true),
    { op: 'commit' },
    { op: 'begin' },
    exec("INSERT INTO t (v) VALUES ('gone')"),
    { op: 'rollback' },
    exec('SELECT count(*) AS n FROM t', true),
    { op: 'commit' },
    exec('SELECT 9223372036854775807 AS big, -9223372036854775808 AS small, NULL AS nul', true),
    exec("INSERT INTO t (v) VALUES ('c') RETURNING id, v"),
    { op: 'begin' },
    exec("INSERT INTO t (v) VALUES ('d') RETURNING id, v"),
    { op: 'commit' },
  ]
  const { parsed, raw } = await run({ urls: cluster.apiUrls.slice(1), steps })
  const r = parsed.results
  assert.equal(r.length, steps.length)
  const empty = { columns: [], rows: [], changes: 0, last_insert_id: 0 }
  assert.deepEqual(r[0], { ok: empty })
  assert.deepEqual(r[1].ok.changes, 1)
  assert.deepEqual(r[1].ok.last_insert_id, 1)
  assert.deepEqual(r[2], { ok: {} })
  assert.deepEqual(r[3], { ok: { columns: [], rows: [], changes: 1, last_insert_id: 2 } })
  // Inside the transaction a read sees its own write; values keep their types.
  assert.deepEqual(r[4].ok.columns, ['id', 'v', 'r', 'b'])
  assert.deepEqual(r[4].ok.rows, [
    [{ int: '1' }, { text: 'a' }, { real: 1.5 }, { blob: '00ff' }],
    [{ int: '2' }, { text: 'b' }, null, null],
  ])
  assert.equal(r[5].err.code, 2067)
  assert.match(r[5].err.message, /UNIQUE constraint failed: t\.v/)
  // The failed statement left the transaction open.
  assert.deepEqual(r[6].ok.rows, [[{ int: '2' }]])
  assert.deepEqual(r[7], { ok: {} })
  assert.deepEqual(r[8], { ok: {} })
  assert.equal(r[9].ok.changes, 1)
  assert.deepEqual(r[10], { ok: {} })
  assert.deepEqual(r[11].ok.rows, [[{ int: '2' }]])
  assert.deepEqual(r[12], { err: { code: 1, message: 'cannot commit - no transaction is active' } })
  assert.ok(r[13].ok, JSON.stringify(r[13]))
  assert.deepEqual(r[13].ok.columns, ['big', 'small', 'nul'])
  assert.deepEqual(r[13].ok.rows, [[{ int: '9223372036854775807' }, { int: '-9223372036854775808' }, null]])
  assert.deepEqual(r[14].ok.columns, ['id', 'v'])
  assert.deepEqual(r[14].ok.rows, [[{ int: '3' }, { text: 'c' }]])
  assert.deepEqual(r[16].ok.columns, ['id', 'v'])
  assert.deepEqual(r[16].ok.rows, [[{ int: '4' }, { text: 'd' }]])
  // Known gap of the core's remote client, not of this runner: a RETURNING write's answer (in
  // rqlite's format, /db/request and /db/tx alike) carries its rows but not rows_affected and
  // last_insert_id, so a remote face reports 0 for both (embedded faces report 1 and the id).
  // Plain writes carry both:
  assert.match(raw, /"changes":1,"last_insert_id":2\b/)
  // Integers outside the values are bare JSON numbers (checked above on the raw text).
})

test('the differential runner fails loudly on bad input', async () => {
  await assert.rejects(run({ urls: cluster.apiUrls, steps: [{ op: 'nope' }] }), /runner exited 2/)
})
