import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Database } from 'hiqlite'

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hiqlite-changes-'))
// changeRetention turns change capture on (about the latest 10,000 row changes are kept).
const node = { dataDir, raftAddr: '127.0.0.1:0', apiAddr: '127.0.0.1:0', changeRetention: 10_000 }
const db = await Database.open({ node })
try {
  await db.execute('CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT, open INTEGER)')
  // A live query: the rows at once, then each time a write changed them.
  const open = await db.watch('SELECT count(*) AS n FROM orders WHERE open')
  console.log('open orders:', (await open.next()).value[0].n)
  // A change stream, subscribed once awaited: every row change from now on, in log order.
  const changes = await db.changes({ tables: ['orders'], oldValues: true })
  await db.execute("INSERT INTO orders VALUES (1, 'tea', 1), (2, 'cake', 1)")
  await db.execute('UPDATE orders SET open = 0 WHERE id = 1')
  let cursor
  for await (const c of changes) {
    console.log(c.op, c.key, c.old?.open ?? null, '->', c.new?.open ?? null)
    cursor = c.cursor // resume after this change, on any node, across restarts
    if (c.op === 'update') break // leaving the loop closes the stream
  }
  console.log('open orders:', (await open.next()).value[0].n)
  open.close()
  await db.execute('DELETE FROM orders WHERE id = 2')
  const again = await db.changes({ from: cursor })
  const { value } = await again.next()
  console.log(value.op, value.key)
  again.close()
} finally {
  await db.close()
  fs.rmSync(dataDir, { recursive: true, force: true })
}
