// rqlite-js (the rqlite client from npm), unchanged, against a real hiqlite node.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import rqlite from 'rqlite-js'

const { DataApiClient, StatusApiClient } = rqlite

function freePort () {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

let proc
let dir
let api

before(async () => {
  const binary = process.env.HIQLITE_BIN || '../../target/debug/hiqlite'
  api = await freePort()
  const raft = await freePort()
  dir = mkdtempSync(join(tmpdir(), 'hiqlite-rqlitejs-'))
  proc = spawn(binary, ['serve', '--data-dir', dir, '--api-addr', `127.0.0.1:${api}`,
    '--raft-addr', `127.0.0.1:${raft}`, '--secret', 'rqlite-js-test'], { stdio: 'ignore' })
  const deadline = Date.now() + 30000
  for (;;) {
    try {
      const r = await fetch(`http://127.0.0.1:${api}/readyz`)
      if (r.status === 200) break
    } catch {}
    if (Date.now() > deadline) throw new Error('hiqlite did not become ready')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
})

after(async () => {
  if (proc) {
    const exited = new Promise((resolve) => proc.on('exit', resolve))
    proc.kill('SIGTERM')
    await exited
  }
  if (dir) rmSync(dir, { recursive: true, force: true })
})

test('create, insert, query, parameters, blobs and transactions', async () => {
  const client = new DataApiClient(`http://127.0.0.1:${api}`)
  let res = await client.execute('CREATE TABLE foo (id integer not null primary key, name text, data blob)')
  assert.equal(res.hasError(), false)
  res = await client.execute([['INSERT INTO foo(name) VALUES(?)', 'fiona'], ['INSERT INTO foo(name, data) VALUES(:name, X\'0001ff\')', { name: 'declan' }]])
  assert.equal(res.hasError(), false)
  assert.equal(res.get(0).getLastInsertId(), 1)
  assert.equal(res.get(1).getLastInsertId(), 2)
  res = await client.query('SELECT id, name FROM foo WHERE id = 1')
  assert.equal(res.get(0).get('name'), 'fiona')
  res = await client.query([['SELECT name, data FROM foo WHERE name = ?', 'declan']], { level: 'strong' })
  assert.equal(res.get(0).get('data'), 'AAH/')
  res = await client.execute(['INSERT INTO foo(name) VALUES("t")', 'INSERT INTO foo(id, name) VALUES(1, "dup")'], { transaction: true })
  assert.equal(res.hasError(), true)
  assert.match(res.getFirstError().toString(), /UNIQUE constraint failed/)
  res = await client.query('SELECT count(*) AS n FROM foo', { level: 'none' })
  assert.equal(res.get(0).get('n'), 2)
  res = await client.query('SELECT * FROM nope')
  assert.equal(res.hasError(), true)
})

test('readiness wait on /status store.ready, and DROP TABLE counters', async () => {
  // The readiness wait rqlite-js users write: poll /status until store.ready.
  const status = new StatusApiClient(`http://127.0.0.1:${api}`)
  const deadline = Date.now() + 60000
  for (;;) {
    const res = await status.status()
    if (res.body && res.body.store && res.body.store.ready === true) {
      assert.equal(typeof res.body.build.version, 'string')
      break
    }
    if (Date.now() > deadline) throw new Error(`never ready: ${JSON.stringify(res.body)}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  // rqlite reports its connection's counters after DDL: what the last write left.
  const client = new DataApiClient(`http://127.0.0.1:${api}`)
  let res = await client.execute('CREATE TABLE drops (id integer primary key)')
  assert.equal(res.hasError(), false)
  res = await client.execute('INSERT INTO drops(id) VALUES(41)')
  assert.equal(res.get(0).getLastInsertId(), 41)
  res = await client.execute('DROP TABLE drops')
  assert.equal(res.hasError(), false)
  assert.equal(res.get(0).getLastInsertId(), 41)
  assert.equal(res.get(0).getRowsAffected(), 1)
})
