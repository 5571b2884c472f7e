// Type-checked with `npx tsc -p tsconfig.json` (strict) against the shipped index.d.ts; not run.
import {
  Database,
  HiqliteError,
  type Change,
  type ChangeStream,
  type Lock,
  type Watch,
  type Lagged,
  type ListenEvent,
  type Listener,
  type Notification,
  type BatchResults,
  type NodeStatus,
  type Row,
  type RunResult,
  type SqlValue,
  type Statement,
  type Transaction,
  type TransactionCallback,
} from '../index.js'

interface Todo {
  id: number
  title: string
  done: number
  data: Buffer | null
}

async function embedded(): Promise<void> {
  const db: Database = await Database.open({
    node: {
      nodeId: 1,
      dataDir: '/tmp/hiqlite-types',
      raftAddr: '127.0.0.1:4002',
      apiAddr: '127.0.0.1:4001',
      peers: [{ id: 1, raftAddr: '127.0.0.1:4002', apiAddr: '127.0.0.1:4001' }],
      secret: 'a-long-enough-secret',
      cache: { ttlMs: 1000 },
    },
    consistency: 'local',
    safeIntegers: false,
  })
  const leader: number = await db.waitForLeader(5000)
  const isLeader: boolean = db.isLeader()
  await db.exec('CREATE TABLE todo (id INTEGER PRIMARY KEY, title TEXT, done INTEGER, data BLOB)')

  const add: Statement = db.prepare('INSERT INTO todo (title, done, data) VALUES (?, ?, ?)')
  const r: RunResult = await add.run('a', 0, Buffer.from('x'))
  const id: number | bigint = r.lastInsertRowid
  const at: number | bigint | null = r.logIndex
  if (at !== null) await db.query('SELECT count(*) FROM todo', [], { minIndex: at })
  const last: number | bigint | null = db.lastWriteIndex
  const ryw: boolean = db.readYourWrites
  await add.run(['b', false, new Uint8Array([1])])
  await db.prepare('INSERT INTO todo (title) VALUES (@t)').run({ t: 'c' })
  await db.prepare('SELECT ?').get(10n, null, undefined, 1.5)

  const one: Row | undefined = await db.prepare('SELECT * FROM todo WHERE id = ?').get(id)
  const v: SqlValue | undefined = one?.title
  const todos: Todo[] = await db.prepare('SELECT * FROM todo').all<Todo>()
  const titles: string[] = todos.map((t) => t.title)
  for await (const row of db.prepare('SELECT id FROM todo WHERE done = ?', { consistency: 'linearizable' }).iterate(0)) {
    const rid: SqlValue = row.id
    void rid
  }
  const big = db.prepare('SELECT id FROM todo', { cache: true, cacheTtlMs: 500 }).safeIntegers()
  const rows: Row[] = await big.all()
  const q: Row[] = await db.query('SELECT count(*) AS n FROM todo', [], { consistency: 'leader', cache: true })
  await db.execute('DELETE FROM todo WHERE id = :id', { id: 1 })

  const tx: RunResult[] = await db.batch([{ sql: 'INSERT INTO todo (title) VALUES (?)', args: ['d'] }], { transaction: true })
  const tx2: RunResult[] = await db.batch(['DELETE FROM todo'])
  const each: BatchResults<false> = await db.batch(['DELETE FROM todo'], { transaction: false })
  for (const res of each) {
    if (res instanceof HiqliteError) {
      const code: string = res.code
      void code
    } else {
      const n: number = res.changes
      void n
    }
  }

  const st: NodeStatus = await db.status()
  const members: number[] = st.members.map((m) => m.id)
  const reachable: boolean[] = (await db.nodes()).map((n) => n.reachable)
  void [leader, isLeader, v, titles, rows, q, tx, tx2, members, reachable]
  await db.close()
}

async function remote(): Promise<void> {
  const db = await Database.connect(['http://127.0.0.1:4001'], { timeoutMs: 5000, username: 'u', password: 'p' })
  await Database.connect('http://127.0.0.1:4001', { consistency: 'local', readYourWrites: true })
  const isRemote: boolean = db.remote
  try {
    await db.execute('INSERT INTO t VALUES (1)')
  } catch (e) {
    if (e instanceof HiqliteError && e.code === 'SQLITE_CONSTRAINT_UNIQUE') {
      const ext: number | undefined = e.sqliteCode
      void ext
    } else if (e instanceof HiqliteError && e.code === 'HIQLITE_OUTCOME_UNKNOWN') {
      const msg: string = e.message
      void msg
    }
  }
  void isRemote

  // Interactive transactions: the callback's value comes back typed.
  const total: number = await db.transaction(async (t: Transaction) => {
    await t.exec('SAVEPOINT a')
    const row = await t.prepare('SELECT bal FROM acct WHERE id = ?').get<{ bal: number }>(1)
    const r: RunResult = await t.execute('UPDATE acct SET bal = ? WHERE id = 1', [(row?.bal ?? 0) + 1])
    const rows: Row[] = await t.query('SELECT * FROM acct')
    const active: boolean = t.active
    void [r, rows, active]
    return row?.bal ?? 0
  })
  const sync: string = await db.transaction(() => 'no await needed')
  const cb: TransactionCallback<void> = async (t) => {
    await t.exec('INSERT INTO t VALUES (2)')
  }
  await db.transaction(cb)
  const manual: Transaction = await db.begin()
  await manual.execute('INSERT INTO t VALUES (3)')
  await manual.rollback()
  await db.exec('BEGIN')
  const open: boolean = db.inTransaction
  await db.prepare('COMMIT').run()
  void [total, sync, open]
  // @ts-expect-error: the callback takes the transaction, not a string
  void db.transaction(async (t: string) => t)
  await db.close()
}

async function coordination(db: Database): Promise<void> {
  await db.kvPut('ns', 'k', 'v', 1000)
  await db.kvPut('ns', 'k', Buffer.from('v'))
  const v: Buffer | null = await db.kvGet('ns', 'k', 'linearizable')
  const taken: Buffer | null = await db.kvGetAndDelete('ns', 'k')
  const deleted: boolean = await db.kvDelete('ns', 'k')
  const swapped: boolean = await db.kvReplace('ns', 'k', null, new Uint8Array([1]), null)
  await db.kvSetLimit('ns', null)
  await db.kvPutJson('ns', 'j', { a: 1 })
  const j = await db.kvGetJson<{ a: number }>('ns', 'j')
  const a: number | undefined = j?.a
  const n: number | bigint = await db.counterAdd('c')
  const m: number | bigint = await db.counterSet('c', 2n ** 60n)
  const g: number | bigint = await db.counterGet('c', 'leader')
  void [v, taken, deleted, swapped, a, n, m, g]
  // @ts-expect-error: values are bytes or text
  void db.kvPut('ns', 'k', 42)
  // @ts-expect-error: no such consistency level
  void db.kvGet('ns', 'k', 'strong')
}

async function locks(db: Database): Promise<void> {
  const lock: Lock = await db.lock('job', { leaseMs: 10_000, waitMs: 5_000 })
  const token: number | bigint = lock.token
  const name: string = lock.name
  const held: boolean = lock.isHeld()
  const released: boolean = await lock.release()
  const maybe: Lock | null = await db.tryLock('job', { leaseMs: 1_000 })
  if (maybe) await maybe[Symbol.asyncDispose]()
  await db.lock('job')
  await db.tryLock('job', null)
  void [token, name, held, released]
  // @ts-expect-error: tryLock does not wait
  void db.tryLock('job', { waitMs: 1 })
  // @ts-expect-error: durations are milliseconds as numbers
  void db.lock('job', { leaseMs: '10s' })
}

async function listenNotify(db: Database): Promise<void> {
  const id: number | bigint = await db.notify('orders', Buffer.from('x'))
  await db.notify('orders', 'text')
  await db.notify('orders', new Uint8Array([1]))
  const listener: Listener = await db.listen('orders', { after: id })
  await db.listen('orders', { after: 5n })
  await db.listen('orders', null)
  for await (const ev of listener) {
    const e: ListenEvent = ev
    if (e.type === 'notification') {
      const n: Notification = e
      const payload: Buffer = n.payload
      const channel: string = n.channel
      void [payload, channel, n.id]
    } else {
      const l: Lagged = e
      const lost: boolean = l.lost
      void [lost, l.after]
    }
    break
  }
  const step: IteratorResult<ListenEvent, undefined> = await listener.next()
  if (!step.done) void step.value.type
  listener.close()
  await listener.return()
  await listener[Symbol.asyncDispose]()
  const closed: boolean = listener.closed
  const channel: string = listener.channel
  void [closed, channel]
  // @ts-expect-error: payloads are bytes or text
  void db.notify('orders', 42)
  // @ts-expect-error: no such option
  void db.listen('orders', { since: 1 })
}

async function changesWatch(db: Database): Promise<void> {
  const stream: ChangeStream = await db.changes({ from: '12.3', tables: ['orders'], oldValues: true })
  await db.changes()
  await db.changes(null)
  for await (const c of stream) {
    const op: 'insert' | 'update' | 'delete' = c.op
    const cursor: string = c.cursor
    const rowid: number | bigint | null = c.rowid
    const row: Row | null = c.new ?? c.old
    const key: SqlValue[] = c.key
    void [op, cursor, rowid, row, key, c.index, c.seq, c.table]
  }
  const step: IteratorResult<Change, undefined> = await stream.next()
  void step
  stream.close()
  await stream.return()
  await stream[Symbol.asyncDispose]()
  const w: Watch = await db.watch('SELECT * FROM orders WHERE id = ?', [1])
  for await (const rows of w) {
    const first: Row | undefined = rows[0]
    void first
  }
  await w[Symbol.asyncDispose]()
  const closed: boolean = w.closed || stream.closed
  void closed
  // @ts-expect-error: a cursor is text
  void db.changes({ from: 12 })
  // @ts-expect-error: no such option
  void db.changes({ since: '1' })
}

// @ts-expect-error: options need `node`
void Database.open({})
// @ts-expect-error: no such consistency level
void Database.connect('http://x', { consistency: 'strong' })
// @ts-expect-error: a log index is a number or a bigint
void Database.prototype.query.call(null as unknown as Database, 'x', [], { minIndex: '3' })
// @ts-expect-error: objects other than named parameters do not bind
void Database.prototype.prepare.call(null as unknown as Database, 'x').run(new Date())

export { changesWatch, coordination, embedded, listenNotify, locks, remote }
