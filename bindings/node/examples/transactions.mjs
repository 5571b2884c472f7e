import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Database } from 'hiqlite'

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hiqlite-transactions-'))
const db = await Database.open({ node: { dataDir, raftAddr: '127.0.0.1:0', apiAddr: '127.0.0.1:0' } })
try {
  await db.exec('CREATE TABLE acct (name TEXT PRIMARY KEY, bal INTEGER NOT NULL CHECK (bal >= 0))')
  await db.exec("INSERT INTO acct VALUES ('ann', 100), ('bob', 0)")

  // Read, decide, write: the reads see the transaction's own writes, and no other writer can
  // slip in between. It commits when the callback resolves, rolls back when it throws.
  const transfer = (from, to, amount) =>
    db.transaction(async (tx) => {
      const { bal } = await tx.prepare('SELECT bal FROM acct WHERE name = ?').get(from)
      if (bal < amount) throw new Error(`${from} has only ${bal}`)
      await tx.execute('UPDATE acct SET bal = bal - ? WHERE name = ?', [amount, from])
      await tx.execute('UPDATE acct SET bal = bal + ? WHERE name = ?', [amount, to])
      return (await tx.prepare('SELECT bal FROM acct WHERE name = ?').get(from)).bal
    })
  console.log(`ann has ${await transfer('ann', 'bob', 30)} left`)
  await transfer('ann', 'bob', 500).catch((e) => console.log(`rolled back: ${e.message}`))

  // SQL's own transaction control works too: until COMMIT every statement of `db` runs inside.
  await db.exec('BEGIN')
  await db.execute("UPDATE acct SET bal = bal + 1 WHERE name = 'bob'")
  console.log(`inside: bob has ${(await db.prepare("SELECT bal FROM acct WHERE name = 'bob'").get()).bal}`)
  await db.exec('ROLLBACK')
  console.log(db.inTransaction, await db.query('SELECT name, bal FROM acct ORDER BY name'))
} finally {
  await db.close()
  fs.rmSync(dataDir, { recursive: true, force: true })
}
