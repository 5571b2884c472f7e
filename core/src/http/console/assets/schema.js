// The schema view: this node's tables and views (from sqlite_schema), each with its columns,
// indexes, triggers, row count and CREATE statement; read with the `query` permission through
// `/db/query?level=none` (this node's copy, answered even without a leader).
"use strict";

(function (HQ) {
  const { $, el, call, ident, fmtNum } = HQ;

  const OBJECTS = "SELECT name, type, tbl_name, sql FROM sqlite_schema " +
    "WHERE name NOT LIKE 'sqlite_%' ORDER BY name";
  const COLUMNS = "SELECT m.name, p.cid, p.name, p.type, p.\"notnull\", p.dflt_value, p.pk " +
    "FROM sqlite_schema m JOIN pragma_table_info(m.name) p " +
    "WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid";
  const INDEXES = "SELECT m.name, il.name, il.\"unique\", il.origin, il.partial, " +
    "(SELECT group_concat(coalesce(ii.name, '(expression)'), ', ') FROM pragma_index_xinfo(il.name) ii WHERE ii.key) " +
    "FROM sqlite_schema m JOIN pragma_index_list(m.name) il " +
    "WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, il.name";

  let tables = [];
  let selected = null;

  function rows(result) {
    if (result.error) throw new HQ.ApiError(200, result.error);
    return result.values || [];
  }

  async function load() {
    const detail = $("schema-detail");
    try {
      const r = await call("POST", "/db/query?level=none", [OBJECTS, COLUMNS, INDEXES]);
      const [objs, cols, idxs] = r.results.map(rows);
      tables = objs.filter((o) => o[1] === "table" || o[1] === "view").map((o) => ({
        name: o[0], type: o[1], sql: o[3], columns: [], indexes: [], triggers: [], count: null,
      }));
      const byName = new Map(tables.map((t) => [t.name, t]));
      for (const o of objs) {
        if (o[1] === "trigger" && byName.has(o[2])) byName.get(o[2]).triggers.push({ name: o[0], sql: o[3] });
      }
      for (const c of cols) {
        const t = byName.get(c[0]);
        if (t) t.columns.push({ name: c[2], type: c[3], notnull: c[4], dflt: c[5], pk: c[6] });
      }
      for (const i of idxs) {
        const t = byName.get(i[0]);
        if (t) t.indexes.push({ name: i[1], unique: i[2], origin: i[3], partial: i[4], cols: i[5] });
      }
      if (!byName.has(selected)) selected = tables.length ? tables[0].name : null;
      list();
      show();
      await counts();
    } catch (e) {
      $("schema-tables").replaceChildren();
      detail.replaceChildren(el("div", { class: "card" }, el("div", { class: "error-box" },
        (e.status === 401 ? "Refused by the node: " : "Cannot read the schema: ") + e.message)));
    }
  }

  /** Row counts of the tables, one statement each (one failing leaves the others). */
  async function counts() {
    const real = tables.filter((t) => t.type === "table");
    if (!real.length) return;
    const r = await call("POST", "/db/query?level=none", real.map((t) => "SELECT count(*) FROM " + ident(t.name)));
    r.results.forEach((res, i) => {
      real[i].count = res.error ? null : (res.values && res.values[0] ? res.values[0][0] : null);
    });
    list();
    show();
  }

  function list() {
    const f = $("schema-filter").value.trim().toLowerCase();
    const ul = $("schema-tables");
    ul.replaceChildren(...tables.filter((t) => !f || t.name.toLowerCase().includes(f)).map((t) =>
      el("li", {
        class: t.name === selected ? "active" : undefined,
        dataset: { table: t.name },
        onclick: () => { selected = t.name; list(); show(); },
      },
      el("span", { class: "tname" }, t.name),
      t.type === "view" ? el("span", { class: "pill" }, "view") : null,
      el("span", { class: "count muted" }, t.count === null ? "" : fmtNum(t.count)))));
    if (!tables.length) ul.append(el("li", { class: "muted empty" }, "No tables yet."));
  }

  function yes(v) { return v ? "✓" : ""; }

  function show() {
    const d = $("schema-detail");
    const t = tables.find((x) => x.name === selected);
    if (!t) {
      d.replaceChildren(el("div", { class: "card muted" }, "Create a table in the Query view and it shows here."));
      return;
    }
    const colTable = el("table", { class: "grid" },
      el("thead", {}, el("tr", {}, ["#", "Column", "Type", "Not null", "Default", "Primary key"].map((h) => el("th", {}, h)))),
      el("tbody", {}, t.columns.map((c, i) => el("tr", {},
        el("td", { class: "num muted" }, String(i + 1)),
        el("td", { class: "strong" }, c.name),
        el("td", {}, c.type || el("span", { class: "muted" }, "any")),
        el("td", {}, yes(c.notnull)),
        el("td", {}, c.dflt === null ? "" : String(c.dflt)),
        el("td", {}, c.pk ? "✓" + (t.columns.filter((x) => x.pk).length > 1 ? " (" + c.pk + ")" : "") : "")))));
    const origin = { c: "CREATE INDEX", u: "UNIQUE constraint", pk: "PRIMARY KEY" };
    const idxTable = t.indexes.length ? el("table", { class: "grid" },
      el("thead", {}, el("tr", {}, ["Index", "Columns", "Unique", "From"].map((h) => el("th", {}, h)))),
      el("tbody", {}, t.indexes.map((i) => el("tr", {},
        el("td", { class: "strong" }, i.name),
        el("td", {}, i.cols || ""),
        el("td", {}, yes(i.unique)),
        el("td", { class: "muted" }, (origin[i.origin] || i.origin) + (i.partial ? ", partial" : "")))))) :
      el("p", { class: "muted" }, "No indexes.");
    const browse = "SELECT * FROM " + ident(t.name) + " LIMIT 100;";
    d.replaceChildren(
      el("div", { class: "card" },
        el("div", { class: "toolbar" },
          el("h2", { id: "schema-title" }, t.name),
          el("span", { class: "pill" }, t.type),
          t.count === null ? null : el("span", { class: "muted", id: "schema-count" }, fmtNum(t.count) + (t.count === 1 ? " row" : " rows")),
          el("span", { class: "spacer" }),
          el("button", { class: "btn", type: "button", onclick: () => { location.hash = "#/query"; HQ.views.query.load(browse, true); } }, "Browse rows")),
        el("h3", {}, "Columns"), el("div", { class: "table-wrap" }, colTable),
        el("h3", {}, "Indexes"), el("div", { class: "table-wrap" }, idxTable),
        t.triggers.length ? [el("h3", {}, "Triggers"), ...t.triggers.map((g) => el("pre", { class: "sql" }, g.sql))] : null,
        el("h3", {}, "Definition"), el("pre", { class: "sql" }, t.sql || "")));
  }

  let wired = false;
  HQ.views.schema = {
    show() {
      if (!wired) {
        wired = true;
        $("schema-refresh").addEventListener("click", load);
        $("schema-filter").addEventListener("input", list);
      }
      load();
    },
    hide() {},
  };
})(window.HQ);
