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
  for (const name of ['run', 'get', 'all', 'iterate']) {
    const native = proto[name]
    const wrapped = {
      [name](...params) {
        return native.call(this, params)
      },
    }[name]
    Object.defineProperty(proto, name, { value: wrapped, writable: true, configurable: true })
  }

  exports.HiqliteError = HiqliteError
  return HiqliteError
})
