// Runs once in each JavaScript environment that loads the addon (see `install_prelude` in
// lib.rs), before any user code can see the exports. It holds the two things N-API cannot
// express: a class that `extends Error`, and rest parameters. No engine logic lives here.
(function install(exports) {
  'use strict'

  /** Every error the package throws or rejects with; `code` tells what happened. */
  class HiqliteError extends Error {
    constructor(message, code) {
      super(message)
      this.code = code
    }
  }
  Object.defineProperty(HiqliteError.prototype, 'name', {
    value: 'HiqliteError',
    writable: true,
    configurable: true,
  })

  // The native methods take a statement's parameters as one array; callers pass them as
  // separate arguments, as with better-sqlite3: stmt.run(1, 'a'), stmt.run([1, 'a']),
  // stmt.run({ x: 1 }).
  const proto = exports.Statement.prototype
  for (const name of ['run', 'get', 'all', 'iterate', 'result']) {
    const native = proto[name]
    const wrapped = {
      [name](...params) {
        return native.call(this, params)
      },
    }[name]
    Object.defineProperty(proto, name, { value: wrapped, writable: true, configurable: true })
  }

  // db.transaction(fn): begin, run `fn(tx)`, commit when it resolves (to its value), roll back
  // when it throws (rethrowing). Written here because it awaits a JavaScript callback.
  async function transaction(fn) {
    if (typeof fn !== 'function') {
      throw new HiqliteError('transaction takes a function: db.transaction(async (tx) => { ... })', 'HIQLITE_INVALID_REQUEST')
    }
    const tx = await this.begin()
    let result
    try {
      result = await fn(tx)
    } catch (e) {
      if (tx.active) {
        // The callback's error is the one to report; a failed rollback still ends the transaction.
        await tx.rollback().catch(() => {})
      }
      throw e
    }
    if (tx.active) await tx.commit()
    return result
  }
  Object.defineProperty(exports.Database.prototype, 'transaction', {
    value: transaction,
    writable: true,
    configurable: true,
  })

  // db.kvPutJson / db.kvGetJson: kvPut/kvGet of a value as JSON text (presentation only).
  const db = exports.Database.prototype
  const methods = {
    async kvPutJson(ns, key, value, ttlMs) {
      let text
      try {
        text = JSON.stringify(value)
      } catch (e) {
        throw new HiqliteError(`value to JSON: ${e.message}`, 'HIQLITE_INVALID_REQUEST')
      }
      if (text === undefined) throw new HiqliteError('value to JSON: it has no JSON form', 'HIQLITE_INVALID_REQUEST')
      return this.kvPut(ns, key, text, ttlMs)
    },
    async kvGetJson(ns, key, consistency) {
      const buf = await this.kvGet(ns, key, consistency)
      if (buf === null) return null
      try {
        return JSON.parse(buf.toString('utf8'))
      } catch (e) {
        throw new HiqliteError(`value of ${ns}/${key} as JSON: ${e.message}`, 'HIQLITE_DECODE')
      }
    },
  }
  for (const [name, value] of Object.entries(methods)) {
    Object.defineProperty(db, name, { value, writable: true, configurable: true })
  }

  // lock[Symbol.asyncDispose]: `await using lock = await db.lock('job')` releases it at the end
  // of the block (where the runtime has the symbol).
  if (typeof Symbol.asyncDispose === 'symbol') {
    Object.defineProperty(exports.Lock.prototype, Symbol.asyncDispose, {
      async value() {
        await this.release()
      },
      writable: true,
      configurable: true,
    })
  }

  // A Listener, a ChangeStream and a Watch are their own async iterators (`for await (const ev
  // of listener)`); leaving the loop calls `return()`, which closes them. `await using` closes
  // them at the end of the block.
  for (const cls of [exports.Listener, exports.ChangeStream, exports.Watch]) {
    Object.defineProperty(cls.prototype, Symbol.asyncIterator, {
      value() {
        return this
      },
      writable: true,
      configurable: true,
    })
    if (typeof Symbol.asyncDispose === 'symbol') {
      Object.defineProperty(cls.prototype, Symbol.asyncDispose, {
        async value() {
          this.close()
        },
        writable: true,
        configurable: true,
      })
    }
  }

  exports.HiqliteError = HiqliteError
  return HiqliteError
})
