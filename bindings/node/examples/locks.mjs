import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Database } from 'hiqlite'

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hiqlite-locks-'))
const db = await Database.open({ node: { dataDir, raftAddr: '127.0.0.1:0', apiAddr: '127.0.0.1:0' } })
try {
  // One holder at a time, cluster-wide; waits in line up to waitMs (then HIQLITE_TIMEOUT).
  const lock = await db.lock('nightly-report', { leaseMs: 10_000, waitMs: 5_000 })
  try {
    console.log(await db.tryLock('nightly-report')) // null: held (tryLock does not wait)
    console.log(lock.isHeld()) // true while the background renewals succeed
  } finally {
    await lock.release()
  }
  // Every new holder gets a greater fencing token, to hand to storage that must refuse stale holders.
  const next = await db.tryLock('nightly-report')
  console.log(next.token > lock.token)
  await next[Symbol.asyncDispose]() // what `await using` calls, where the runtime has it
} finally {
  await db.close()
  fs.rmSync(dataDir, { recursive: true, force: true })
}
