import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Database } from 'hiqlite'

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hiqlite-listen-'))
const db = await Database.open({ node: { dataDir, raftAddr: '127.0.0.1:0', apiAddr: '127.0.0.1:0' } })
try {
  // Subscribed once awaited: every notification from now on, in the same order on every node.
  const listener = await db.listen('orders')
  const first = await db.notify('orders', JSON.stringify({ order: 42 }))
  await db.notify('orders', 'shipped')
  for await (const ev of listener) {
    if (ev.type === 'lagged') continue // fell behind its buffer; nothing missed unless ev.lost
    console.log(ev.id === first, ev.payload.toString())
    if (ev.payload.toString() === 'shipped') break // leaving the loop closes the listener
  }
  // Resume after an id: what followed it (the cluster keeps the last 10,000 per channel).
  const again = await db.listen('orders', { after: first })
  const { value } = await again.next()
  console.log(value.payload.toString())
  again.close()
} finally {
  await db.close()
  fs.rmSync(dataDir, { recursive: true, force: true })
}
