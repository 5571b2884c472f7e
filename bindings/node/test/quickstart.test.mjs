// The README's Node.js examples (examples/*.mjs) run as written.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const pkg = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')

test('examples/quickstart.mjs', async () => {
  // `import ... from 'hiqlite'` resolves to this package through its own name (self-reference
  // needs an "exports" field in package.json).
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(pkg, 'examples', 'quickstart.mjs')], {
    cwd: pkg,
    timeout: 60_000,
  })
  assert.equal(stdout, '1. [x] write docs\n2. [ ] ship it\n2 todos\nrefused: SQLITE_CONSTRAINT_UNIQUE\n')
})

test('examples/transactions.mjs', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(pkg, 'examples', 'transactions.mjs')], {
    cwd: pkg,
    timeout: 60_000,
  })
  assert.equal(
    stdout,
    "ann has 70 left\nrolled back: ann has only 70\ninside: bob has 31\nfalse [ { name: 'ann', bal: 70 }, { name: 'bob', bal: 30 } ]\n",
  )
})

test('examples/coordination.mjs', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(pkg, 'examples', 'coordination.mjs')], {
    cwd: pkg,
    timeout: 60_000,
  })
  assert.equal(stdout, 'token-1\ntrue\nfalse\n10\n42 42\n')
})

test('examples/locks.mjs', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(pkg, 'examples', 'locks.mjs')], {
    cwd: pkg,
    timeout: 60_000,
  })
  assert.equal(stdout, 'null\ntrue\ntrue\n')
})

test('examples/listen.mjs', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(pkg, 'examples', 'listen.mjs')], {
    cwd: pkg,
    timeout: 60_000,
  })
  assert.equal(stdout, 'true {"order":42}\nfalse shipped\nshipped\n')
})

test('examples/changes.mjs', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(pkg, 'examples', 'changes.mjs')], {
    cwd: pkg,
    timeout: 60_000,
  })
  assert.equal(
    stdout,
    'open orders: 0\ninsert [ 1 ] null -> 1\ninsert [ 2 ] null -> 1\nupdate [ 1 ] 1 -> 0\nopen orders: 1\ndelete [ 2 ]\n',
  )
})

test('examples/backups.mjs', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(pkg, 'examples', 'backups.mjs')], {
    cwd: pkg,
    timeout: 60_000,
  })
  assert.equal(stdout, '2\ntrue\nfirst\n')
})

test('examples/read_your_writes.mjs', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(pkg, 'examples', 'read_your_writes.mjs')], {
    cwd: pkg,
    timeout: 60_000,
  })
  assert.equal(stdout, 'true\nhello\n')
})

test('the README shows the examples as they are', () => {
  const readme = fs.readFileSync(path.join(pkg, '..', '..', 'README.md'), 'utf8')
  let section = readme.slice(readme.indexOf('## Node.js'))
  section = section.slice(0, section.indexOf('\n## ', 1))
  const blocks = []
  for (let at = section.indexOf('```js\n'); at >= 0; at = section.indexOf('```js\n', at + 1)) {
    blocks.push(section.slice(at + 6, section.indexOf('```\n', at + 6)))
  }
  assert.deepEqual(blocks, [
    fs.readFileSync(path.join(pkg, 'examples', 'quickstart.mjs'), 'utf8'),
    fs.readFileSync(path.join(pkg, 'examples', 'transactions.mjs'), 'utf8'),
    fs.readFileSync(path.join(pkg, 'examples', 'coordination.mjs'), 'utf8'),
    fs.readFileSync(path.join(pkg, 'examples', 'locks.mjs'), 'utf8'),
    fs.readFileSync(path.join(pkg, 'examples', 'listen.mjs'), 'utf8'),
    fs.readFileSync(path.join(pkg, 'examples', 'changes.mjs'), 'utf8'),
    fs.readFileSync(path.join(pkg, 'examples', 'backups.mjs'), 'utf8'),
    fs.readFileSync(path.join(pkg, 'examples', 'read_your_writes.mjs'), 'utf8'),
  ])
})
