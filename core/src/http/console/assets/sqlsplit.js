// Splitting the editor's text into statements where SQLite itself would end them: a port of
// SQLite's `sqlite3_complete` state machine (complete.c), which knows string literals, quoted
// names, comments and the semicolons inside CREATE TRIGGER ... END bodies.
"use strict";

(function (HQ) {
  const SEMI = 0, WS = 1, OTHER = 2, EXPLAIN = 3, CREATE = 4, TEMP = 5, TRIGGER = 6, END = 7;
  // States: 0 INVALID, 1 START, 2 NORMAL, 3 EXPLAIN, 4 CREATE, 5 TRIGGER, 6 SEMI, 7 END.
  const TRANS = [
    /* 0 INVALID */ [1, 0, 2, 3, 4, 2, 2, 2],
    /* 1 START   */ [1, 1, 2, 3, 4, 2, 2, 2],
    /* 2 NORMAL  */ [1, 2, 2, 2, 2, 2, 2, 2],
    /* 3 EXPLAIN */ [1, 3, 3, 2, 4, 2, 2, 2],
    /* 4 CREATE  */ [1, 4, 2, 2, 2, 4, 5, 2],
    /* 5 TRIGGER */ [6, 5, 5, 5, 5, 5, 5, 5],
    /* 6 SEMI    */ [6, 6, 5, 5, 5, 5, 5, 7],
    /* 7 END     */ [1, 7, 5, 5, 5, 5, 5, 5],
  ];

  const isIdChar = (c) => /[A-Za-z0-9_$]/.test(c) || c.charCodeAt(0) >= 0x80;
  const isSpace = (c) => c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f" || c === "\v";

  function keyword(word) {
    switch (word.toLowerCase()) {
      case "create": return CREATE;
      case "trigger": return TRIGGER;
      case "temp": case "temporary": return TEMP;
      case "end": return END;
      case "explain": return EXPLAIN;
      default: return OTHER;
    }
  }

  /**
   * The statements of `sql`: [{sql, start, end}] with offsets into the text. Pieces holding
   * only whitespace, comments and semicolons are left out; an unterminated last statement
   * (no final semicolon, or an open string or comment) is kept as it is.
   */
  function splitSql(sql) {
    const out = [];
    let state = 0;
    let start = 0;
    let meaningful = false;
    let i = 0;
    const n = sql.length;
    const push = (end) => {
      if (meaningful) out.push({ sql: sql.slice(start, end).trim(), start, end });
      start = end;
      meaningful = false;
    };
    while (i < n) {
      const c = sql[i];
      let token;
      let next = i + 1;
      if (c === ";") {
        token = SEMI;
      } else if (isSpace(c)) {
        token = WS;
      } else if (c === "/" && sql[i + 1] === "*") {
        const close = sql.indexOf("*/", i + 2);
        next = close < 0 ? n : close + 2;
        token = WS;
      } else if (c === "-" && sql[i + 1] === "-") {
        const nl = sql.indexOf("\n", i + 2);
        next = nl < 0 ? n : nl + 1;
        token = WS;
      } else if (c === "[") {
        const close = sql.indexOf("]", i + 1);
        next = close < 0 ? n : close + 1;
        token = OTHER;
      } else if (c === "`" || c === '"' || c === "'") {
        // A doubled quote inside is two quoted runs back to back: the same token class.
        const close = sql.indexOf(c, i + 1);
        next = close < 0 ? n : close + 1;
        token = OTHER;
      } else if (isIdChar(c)) {
        while (next < n && isIdChar(sql[next])) next++;
        token = keyword(sql.slice(i, next));
      } else {
        token = OTHER;
      }
      if (token !== WS && token !== SEMI) meaningful = true;
      state = TRANS[state][token];
      i = next;
      if (token === SEMI && state === 1) push(i);
    }
    push(n);
    return out;
  }

  HQ.splitSql = splitSql;
})(window.HQ);
