// The query view: the SQL editor (Ctrl+Enter runs the selection or everything), statements
// split as SQLite ends them and sent together to the node's `/db/request` (reads are served at
// the chosen level, writes go through Raft; the node's permissions decide), each statement's
// rows in a grid with its timing, and a history of what ran.
"use strict";

(function (HQ) {
  const { $, el, call, fmtMs, fmtNum } = HQ;
  const HISTORY_KEY = "hiqlite.console.history";
  const MAX_ROWS = 1000;

  function history() {
    try { return JSON.parse(localStorage.getItem(HISTORY_KEY) || "[]"); } catch (_) { return []; }
  }

  function remember(sql) {
    const h = [sql, ...history().filter((s) => s !== sql)].slice(0, 25);
    localStorage.setItem(HISTORY_KEY, JSON.stringify(h));
    fillHistory();
  }

  function fillHistory() {
    const sel = $("sql-history");
    sel.replaceChildren(el("option", { value: "" }, "History"));
    history().forEach((s, i) => {
      const one = s.replace(/\s+/g, " ");
      sel.append(el("option", { value: String(i) }, one.length > 70 ? one.slice(0, 70) + "…" : one));
    });
  }

  /** One cell's content: NULL, numbers and BLOBs set apart. */
  function cell(v, type) {
    if (v === null || v === undefined) return el("td", { class: "null" }, "NULL");
    if (typeof v === "number") return el("td", { class: "num" }, String(v));
    if (typeof v === "object") return el("td", { class: "blob" }, JSON.stringify(v));
    const s = String(v);
    const shown = s.length > 300 ? s.slice(0, 300) + "…" : s;
    const cls = (type || "").toLowerCase() === "blob" ? "blob" : undefined;
    return el("td", { class: cls, title: s.length > 40 ? s : undefined }, shown);
  }

  /** A results grid: column names with their types, then the rows (at most MAX_ROWS). */
  function grid(columns, types, values) {
    // A last, empty column takes the width left, so the others are as wide as their content.
    const head = el("tr", {}, columns.map((c, i) =>
      el("th", {}, c, types && types[i] ? el("span", { class: "coltype" }, types[i]) : null)),
    el("th", { class: "fill" }));
    const body = el("tbody", {}, (values || []).slice(0, MAX_ROWS).map((row) =>
      el("tr", {}, row.map((v, i) => cell(v, types && types[i])), el("td", { class: "fill" }))));
    return el("div", { class: "table-wrap" },
      el("table", { class: "grid result-grid" }, el("thead", {}, head), body));
  }

  function short(sql) {
    const one = sql.replace(/\s+/g, " ").trim();
    return one.length > 90 ? one.slice(0, 90) + "…" : one;
  }

  /** The block of one statement's result. */
  function block(n, sql, r) {
    const meta = [];
    let body;
    if (r.error) {
      body = el("div", { class: "error-box result-error" }, r.error);
    } else if (r.columns) {
      const rows = (r.values || []).length;
      meta.push(fmtNum(rows) + (rows === 1 ? " row" : " rows"));
      body = [grid(r.columns, r.types, r.values)];
      if (rows > MAX_ROWS) {
        body.push(el("p", { class: "muted small" }, "Showing the first " + fmtNum(MAX_ROWS) + " rows; add a LIMIT to see others."));
      }
    } else {
      const changed = r.rows_affected || 0;
      meta.push(fmtNum(changed) + (changed === 1 ? " row affected" : " rows affected"));
      if (r.last_insert_id) meta.push("last insert id " + r.last_insert_id);
      body = null;
    }
    if (typeof r.time === "number") meta.push(fmtMs(r.time * 1000));
    return el("div", { class: "card result" + (r.error ? " failed" : "") },
      el("div", { class: "result-head" },
        el("span", { class: "stmt-no" }, "#" + n),
        el("code", { class: "stmt" }, short(sql)),
        el("span", { class: "spacer" }),
        el("span", { class: "muted" }, meta.join(" · "))),
      body);
  }

  /** The whole request failed: refused by the node, or no answer. */
  function refusal(e) {
    const refused = e.status === 401 || e.status === 403;
    const title = refused ? "Refused by the node" : e.status ? "The node answered " + e.status : "No answer";
    return el("div", { class: "card result failed" },
      el("div", { class: "error-box result-error" + (refused ? " refused" : "") },
        el("strong", {}, title + ": "), e.message));
  }

  async function run() {
    const ed = $("sql-editor");
    const selected = ed.value.slice(ed.selectionStart, ed.selectionEnd);
    const text = selected.trim() ? selected : ed.value;
    const stmts = HQ.splitSql(text);
    const out = $("sql-results");
    const status = $("sql-status");
    if (!stmts.length) {
      status.textContent = "Nothing to run.";
      return;
    }
    const level = $("sql-level").value;
    const q = "/db/request?timings&level=" + encodeURIComponent(level) + ($("sql-tx").checked ? "&transaction" : "") + ($("sql-cache").checked ? "&cache" : "");
    const btn = $("sql-run");
    btn.disabled = true;
    status.textContent = "Running " + stmts.length + (stmts.length === 1 ? " statement…" : " statements…");
    const t0 = performance.now();
    try {
      const resp = await call("POST", q, stmts.map((s) => s.sql));
      const took = performance.now() - t0;
      const results = (resp && resp.results) || [];
      out.replaceChildren(...results.map((r, i) => block(i + 1, stmts[i] ? stmts[i].sql : "", r)));
      const failed = results.filter((r) => r.error).length;
      status.textContent = results.length + (results.length === 1 ? " statement" : " statements") +
        (failed ? ", " + failed + " failed" : "") + " · " + fmtMs(took) +
        (typeof resp.time === "number" ? " (node " + fmtMs(resp.time * 1000) + ")" : "");
      remember(text.trim());
    } catch (e) {
      out.replaceChildren(refusal(e));
      status.textContent = "Failed after " + fmtMs(performance.now() - t0);
    } finally {
      btn.disabled = false;
    }
  }

  function keys(ev) {
    const ed = ev.target;
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      run();
    } else if (ev.key === "Tab" && !ev.shiftKey) {
      ev.preventDefault();
      const s = ed.selectionStart;
      ed.setRangeText("  ", s, ed.selectionEnd, "end");
    }
  }

  let wired = false;
  HQ.views.query = {
    show() {
      if (!wired) {
        wired = true;
        $("sql-run").addEventListener("click", run);
        $("sql-editor").addEventListener("keydown", keys);
        $("sql-history").addEventListener("change", (ev) => {
          const h = history()[Number(ev.target.value)];
          if (ev.target.value !== "" && h !== undefined) $("sql-editor").value = h;
          ev.target.value = "";
        });
        fillHistory();
        if (!$("sql-editor").value) $("sql-editor").value = "SELECT name, type FROM sqlite_schema ORDER BY name;";
      }
      $("sql-editor").focus();
    },
    hide() {},
    /** Put `sql` in the editor (and run it). */
    load(sql, andRun) {
      $("sql-editor").value = sql;
      if (andRun) run();
    },
    run,
  };
})(window.HQ);
