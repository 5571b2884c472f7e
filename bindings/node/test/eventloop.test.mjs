// The event loop keeps running while a slow write is in flight: the work happens on the
// library's Tokio runtime, never on the JavaScript thread.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { openSingle } from './helpers.mjs'

let db
before(async () => {
  db = await openSingle()
  await db.exec('CREATE TABLE big (id INTEGER PRIMARY KEY, pad BLOB)')
})
after(() => db?.close())

/** Count setInterval ticks while `work` is pending. */
async function ticksDuring(work) {
  let ticks = 0
  const timer = setInterval(() => ticks++, 1)
  const started = process.hrtime.bigint()
  try {
    await work()
  } finally {
    clearInterval(timer)
  }
  return { ticks, ms: Number(process.hrtime.bigint() - started) / 1e6 }
}

test('timers keep firing during a slow write', async (t) => {
  // A blocked event loop would let a 1 ms interval fire at most once after the write. The
  // write is made bigger until it is slow enough to tell (no absolute timing is asserted:
  // the size only has to make the write take long on this machine).
  let rows = 25_000
  for (;;) {
    const { ticks, ms } = await ticksDuring(() =>
      db.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${rows})
               INSERT INTO big (pad) SELECT randomblob(100) FROM n`),
    )
    t.diagnostic(`${rows} rows: ${ms.toFixed(0)} ms, ${ticks} ticks of a 1 ms interval`)
    if (ms >= 150 || rows >= 3_200_000) {
      assert.ok(ticks >= 5, `only ${ticks} ticks during a ${ms.toFixed(0)} ms write of ${rows} rows`)
      break
    }
    rows *= 4
  }
  const [{ c }] = await db.query('SELECT count(*) AS c FROM big')
  assert.ok(c >= 25_000)
})

test('timers keep firing while reads and writes run concurrently', async () => {
  const { ticks } = await ticksDuring(async () => {
    const stmt = db.prepare('SELECT count(*) AS c, sum(length(pad)) AS s FROM big')
    await Promise.all([
      ...Array.from({ length: 4 }, () => stmt.get()),
      db.exec('UPDATE big SET pad = randomblob(120) WHERE id % 2 = 0'),
    ])
  })
  assert.ok(ticks >= 1, `${ticks} ticks`)
})
