import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Database } from 'hiqlite'

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hiqlite-coordination-'))
const db = await Database.open({ node: { dataDir, raftAddr: '127.0.0.1:0', apiAddr: '127.0.0.1:0' } })
try {
  // Replicated key/value entries in namespaces; values are bytes (strings are stored as UTF-8).
  await db.kvPut('sessions', 'alice', 'token-1', 60_000) // expires after 60 s
  console.log((await db.kvGet('sessions', 'alice', 'linearizable')).toString())
  // Compare and swap: take a lock only if nobody holds it (expected `null`: absent).
  console.log(await db.kvReplace('locks', 'report', null, 'worker-1', 30_000)) // true
  console.log(await db.kvReplace('locks', 'report', null, 'worker-2', 30_000)) // false
  await db.kvPutJson('config', 'limits', { maxUsers: 10 })
  console.log((await db.kvGetJson('config', 'limits')).maxUsers)
  // Counters: atomic, cluster-wide.
  await db.counterAdd('visits')
  console.log(await db.counterAdd('visits', 41), await db.counterGet('visits'))
} finally {
  await db.close()
  fs.rmSync(dataDir, { recursive: true, force: true })
}
