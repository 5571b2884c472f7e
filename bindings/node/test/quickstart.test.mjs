// The README's Node.js example (examples/quickstart.mjs) runs as written.
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

test('the README shows examples/quickstart.mjs as it is', () => {
  const readme = fs.readFileSync(path.join(pkg, '..', '..', 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## Node.js'))
  const block = section.slice(section.indexOf('```js\n') + 6, section.indexOf('```\n', section.indexOf('```js\n') + 6))
  assert.equal(block, fs.readFileSync(path.join(pkg, 'examples', 'quickstart.mjs'), 'utf8'))
})
