// The console's shared ground: the session (credentials kept for this tab), calls to the node's
// API with Basic auth, small DOM helpers and number/time formatting. Every other script uses
// `HQ` from here; nothing here knows a page.
"use strict";

window.HQ = (function () {
  const KEY = "hiqlite.console.auth";

  /** The session: credentials (Basic header value) and what whoami said about them. */
  const session = {
    auth: sessionStorage.getItem(KEY) || null,
    me: null,
    set(user, pass) {
      // btoa needs Latin-1: encode UTF-8 first so any user name or password works.
      const bytes = new TextEncoder().encode(user + ":" + pass);
      let bin = "";
      bytes.forEach((b) => { bin += String.fromCharCode(b); });
      this.auth = "Basic " + btoa(bin);
      sessionStorage.setItem(KEY, this.auth);
    },
    clear() {
      this.auth = null;
      this.me = null;
      sessionStorage.removeItem(KEY);
    },
    can(perm) {
      const p = (this.me && this.me.perms) || [];
      return p.includes("all") || p.includes(perm);
    },
  };

  /** An API failure: HTTP status and the server's message. */
  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  /**
   * Call the node's API. `X-Requested-With` asks the node not to challenge a 401 (the browser
   * would otherwise show its own login prompt). Answers parsed JSON, or throws ApiError.
   */
  async function call(method, path, body, opts) {
    const headers = { "X-Requested-With": "hiqlite-console" };
    const auth = (opts && opts.auth !== undefined) ? opts.auth : session.auth;
    if (auth) headers["Authorization"] = auth;
    let payload;
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, { method, headers, body: payload, cache: "no-store", credentials: "omit" });
    } catch (e) {
      throw new ApiError(0, "cannot reach the node (" + e.message + ")");
    }
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!resp.ok) {
      const msg = (data && data.error) || text.trim() || resp.statusText;
      throw new ApiError(resp.status, msg);
    }
    return data;
  }

  /** Create an element: el("td", {class: "num", title: "x"}, "text", child, ...). */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "dataset") Object.assign(e.dataset, v);
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  const $ = (id) => document.getElementById(id);

  function fmtMs(ms) {
    if (ms === null || ms === undefined || isNaN(ms)) return "–";
    if (ms < 1) return ms.toFixed(2) + " ms";
    if (ms < 100) return ms.toFixed(1) + " ms";
    if (ms < 10000) return Math.round(ms) + " ms";
    return (ms / 1000).toFixed(1) + " s";
  }

  function fmtNum(n, digits) {
    if (n === null || n === undefined || isNaN(n)) return "–";
    if (digits !== undefined) return Number(n).toFixed(digits);
    return Number(n).toLocaleString("en-US");
  }

  function fmtClock(t) {
    const d = new Date(t);
    return d.toLocaleTimeString("en-GB", { hour12: false });
  }

  /** SQLite identifier quoting. */
  function ident(name) {
    return '"' + String(name).replace(/"/g, '""') + '"';
  }

  let toastTimer = null;
  /** A short message at the bottom of the page. */
  function toast(msg, kind) {
    const t = $("toast");
    t.textContent = msg;
    t.className = "toast" + (kind ? " toast-" + kind : "");
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
  }

  /**
   * Run `fn` now and then every `ms` while `active()` holds; never two at once (the next run is
   * planned when the previous one ended). Returns a function that stops it.
   */
  function poll(fn, ms, active) {
    let stopped = false;
    let timer = null;
    async function tick() {
      if (stopped || !active()) return;
      try { await fn(); } catch (e) { console.warn(e); }
      if (!stopped) timer = setTimeout(tick, ms);
    }
    tick();
    return () => { stopped = true; clearTimeout(timer); };
  }

  return { session, call, ApiError, el, $, fmtMs, fmtNum, fmtClock, ident, toast, poll, views: {} };
})();
