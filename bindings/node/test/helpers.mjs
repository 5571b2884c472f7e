// Shared by the test files: free ports, temporary data directories, single nodes and
// 3-node clusters of embedded nodes in this process (real Raft and HTTP on 127.0.0.1).
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

import { Database } from '../index.js'

const given = new Set()
const FLOOR = 20000

function ephemeralLow() {
  try {
    return Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0]) || 32768
  } catch {
    return 32768
  }
}

function bindable(port) {
  return new Promise((resolve) => {
    const srv = net.createServer()
    srv.once('error', () => resolve(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
  })
}

/**
 * A port that was free a moment ago; never the same one twice in this process. Chosen below the
 * kernel's ephemeral range: a port from `listen(0)` is in that range, as is the local port of every
 * outgoing connection, so any connection could take it before the node binds it.
 */
export async function freePort() {
  const span = ephemeralLow() - FLOOR
  const start = (process.pid * 104729) % Math.max(span, 1)
  for (let k = 0; k < 4 * Math.min(span, 4096); k++) {
    const port = FLOOR + ((start + k * 7919) % span)
    if (!given.has(port) && (await bindable(port))) {
      given.add(port)
      return port
    }
  }
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const srv = net.createServer()
      srv.on('error', reject)
      srv.listen(0, '127.0.0.1', () => {
        const { port } = srv.address()
        srv.close(() => resolve(port))
      })
    })
    if (!given.has(port)) {
      given.add(port)
      return port
    }
  }
}

/** A fresh temporary directory, removed when the process exits. */
export function tempDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hiqlite-node-test-'))
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

// Margin for a loaded machine (tests share two cores with other work): a follower that misses
// heartbeats for a second would start needless elections, and a write that waits a few seconds
// would fail a test that is not about timeouts. Transactions queue behind each other: a write
// or BEGIN waits for the open one (a condition) up to a generous busy timeout.
const timing = {
  heartbeatMs: 200,
  electionTimeoutMinMs: 2000,
  electionTimeoutMaxMs: 4000,
  requestTimeoutMs: 60_000,
  busyTimeoutMs: 60_000,
}

/** A single-node cluster (ports picked by the OS). */
export async function openSingle(extra = {}, node = {}) {
  const db = await Database.open({
    node: { dataDir: tempDir(), raftAddr: '127.0.0.1:0', apiAddr: '127.0.0.1:0', secret: 'node-test-secret', ...timing, ...node },
    ...extra,
  })
  await db.waitForLeader(60_000)
  return db
}

/**
 * `n` embedded nodes forming one cluster; resolves once they agree on a leader. `extra`: more
 * `Database.open` options for every node (`readYourWrites`, `safeIntegers`...).
 */
export async function openCluster(n = 3, extra = {}) {
  const dir = tempDir()
  const peers = []
  for (let id = 1; id <= n; id++) {
    peers.push({ id, raftAddr: `127.0.0.1:${await freePort()}`, apiAddr: `127.0.0.1:${await freePort()}` })
  }
  const dbs = []
  for (const p of peers) {
    dbs.push(
      await Database.open({
        node: {
          nodeId: p.id,
          dataDir: path.join(dir, `node-${p.id}`),
          raftAddr: p.raftAddr,
          apiAddr: p.apiAddr,
          peers,
          secret: 'node-test-secret',
          ...timing,
        },
        ...extra,
      }),
    )
  }
  await agreedLeader(dbs)
  return { dbs, peers, apiUrls: peers.map((p) => `http://${p.apiAddr}`) }
}

/** Wait until every node names the same leader in the same term; resolves to its index. */
export async function agreedLeader(dbs, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const st = await Promise.all(dbs.map((db) => db.status()))
    const leader = st[0].leader
    const agreed = leader !== undefined && st.every((s) => s.leader === leader && s.term === st[0].term)
    const idx = dbs.findIndex((db) => db.isLeader())
    if (agreed && idx >= 0 && st[idx].id === leader) return idx
    if (Date.now() > deadline) throw new Error(`no agreed leader: ${JSON.stringify(st)}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Retry `check` until it returns without throwing. */
export async function eventually(check, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      return await check()
    } catch (e) {
      if (Date.now() > deadline) throw e
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}
