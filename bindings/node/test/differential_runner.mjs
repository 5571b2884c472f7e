#!/usr/bin/env node
// The Node face's differential runner (tests/differential/PROTOCOL.md): one JSON document on
// stdin ({ urls, steps }), one on stdout ({ results }: one per step), exit 0; logs on stderr.
// Not a test by itself (its name does not end in .test.mjs): differential_runner.test.mjs and
// the Rust harness (tests/tests/differential.rs) run it.
//
// It connects as a remote client (linearizable reads, a 120 s budget per call). `exec` runs
// through `stmt.result()`, which routes a statement as the package always does (a read is
// queried, a write goes through Raft, whatever the step's `read` hint says) and answers with
// columns, rows, changes and the last insert id. `begin`/`commit`/`rollback` use the
// transaction API: `db.begin()`, then every `exec` runs on the transaction until
// `tx.commit()`/`tx.rollback()`.
import { Database } from '../index.js'

async function readStdin() {
  const chunks = []
  for await (const c of process.stdin) chunks.push(c)
  return Buffer.concat(chunks).toString('utf8')
}

// Integers are written as bare JSON numbers where the protocol wants numbers and as decimal
// strings in values; a bigint never goes through a double on the way.
const marker = `\u0001bigint-${process.pid}-${Date.now()}:`
const exact = (n) => (typeof n === 'bigint' ? `${marker}${n}` : n)

function value(v) {
  if (v === null || v === undefined) return null
  if (typeof v === 'bigint') return { int: v.toString() }
  if (typeof v === 'number') {
    // JSON has no infinity or NaN (PROTOCOL.md spells them as strings).
    if (Number.isNaN(v)) return { real: 'nan' }
    if (!Number.isFinite(v)) return { real: v > 0 ? 'inf' : '-inf' }
    return { real: v }
  }
  if (typeof v === 'string') return { text: v }
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return { blob: Buffer.from(v).toString('hex') }
  throw new Error(`unexpected value from the driver: ${typeof v}`)
}

function failure(e) {
  return { err: { code: typeof e?.sqliteCode === 'number' ? e.sqliteCode : 0, message: String(e?.message ?? e) } }
}

/** SQLite's own errors for transaction control out of place. */
function sqlError(message) {
  return { err: { code: 1, message } }
}

async function main() {
  if (process.env.NODE_TEST_CONTEXT) {
    // `node --test` runs every file under test/ (Node 20); this one only runs when spawned.
    process.stderr.write('differential_runner.mjs: a runner, not a test (see differential_runner.test.mjs)\n')
    return
  }
  const input = JSON.parse(await readStdin())
  if (!Array.isArray(input.urls) || !Array.isArray(input.steps)) throw new Error('input needs `urls` and `steps`')
  // safeIntegers: every INTEGER arrives as a bigint, so INTEGER and REAL stay apart.
  const db = await Database.connect(input.urls, { timeoutMs: 120_000, consistency: 'linearizable', safeIntegers: true })
  const results = []
  let tx = null
  try {
    for (const [i, step] of input.steps.entries()) {
      let r
      try {
        switch (step.op) {
          case 'exec': {
            const stmt = (tx ?? db).prepare(step.sql)
            const out = await stmt.result()
            r = {
              ok: {
                columns: out.columns,
                rows: out.rows.map((row) => row.map(value)),
                changes: out.changes,
                last_insert_id: exact(out.lastInsertRowid),
              },
            }
            break
          }
          case 'begin':
            if (tx) {
              r = sqlError('cannot start a transaction within a transaction')
            } else {
              tx = await db.begin()
              r = { ok: {} }
            }
            break
          case 'commit':
          case 'rollback': {
            if (!tx) {
              r = sqlError(`cannot ${step.op} - no transaction is active`)
              break
            }
            const ending = tx
            // Either way the transaction is over (a failed commit applied nothing).
            tx = null
            await (step.op === 'commit' ? ending.commit() : ending.rollback())
            r = { ok: {} }
            break
          }
          default:
            throw new Error(`step ${i}: unknown op ${JSON.stringify(step.op)}`)
        }
      } catch (e) {
        if (e?.name !== 'HiqliteError') throw e
        r = failure(e)
      }
      results.push(r)
    }
  } finally {
    if (tx) await tx.rollback().catch(() => {})
    await db.close()
  }
  const text = JSON.stringify({ results }, (_, v) => (typeof v === 'bigint' ? exact(v) : v))
  const markerJson = JSON.stringify(marker).slice(1, -1).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  process.stdout.write(text.replace(new RegExp(`"${markerJson}(-?\\d+)"`, 'g'), '$1') + '\n')
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`differential_runner: ${e?.stack ?? e}\n`)
    process.exit(2)
  },
)
