// The cluster view: every member's role, term, applied index, lag, snapshots, round trip and
// health as this node gathers them (`/console/api/cluster`), refreshed every second while
// shown, with the leader changes and outages this page saw listed as they happen.
"use strict";

(function (HQ) {
  const { $, el, call, fmtMs, fmtNum, fmtClock, poll } = HQ;
  const EVERY_MS = 1000;

  let stop = null;
  let last = null;
  const events = [];

  function event(text, kind) {
    events.unshift({ t: Date.now(), text, kind });
    events.length = Math.min(events.length, 30);
    $("cluster-events").replaceChildren(...events.map((e) =>
      el("li", { class: e.kind ? "ev-" + e.kind : undefined },
        el("span", { class: "muted" }, fmtClock(e.t)), " ", e.text)));
  }

  /** What changed since the previous answer, as events. */
  function compare(prev, cur) {
    if (!prev) {
      event(cur.leader ? "Leader is node " + cur.leader + " (term " + cur.term + ")." : "No leader known.",
        cur.leader ? "info" : "bad");
      return;
    }
    if (prev.leader !== cur.leader) {
      event(cur.leader
        ? "Leader changed: " + (prev.leader ? "node " + prev.leader : "none") + " → node " + cur.leader + " (term " + cur.term + ")."
        : "Leader node " + prev.leader + " lost; election under way.", cur.leader ? "warn" : "bad");
    }
    const was = new Map(prev.members.map((m) => [m.id, m]));
    for (const m of cur.members) {
      const p = was.get(m.id);
      if (!p) event("Node " + m.id + " joined.", "info");
      else if (p.reachable && !m.reachable) event("Node " + m.id + " stopped answering.", "bad");
      else if (!p.reachable && m.reachable) event("Node " + m.id + " answers again.", "good");
    }
    for (const p of prev.members) {
      if (!cur.members.some((m) => m.id === p.id)) event("Node " + p.id + " left the cluster.", "warn");
    }
  }

  function role(m) {
    if (!m.reachable) return "Unreachable";
    return (m.status && m.status.state) || "Unknown";
  }

  function card(label, value, cls, id) {
    return el("div", { class: "card stat" + (cls ? " " + cls : "") },
      el("div", { class: "stat-label" }, label), el("div", { class: "stat-value", id }, value));
  }

  function render(o) {
    const reachable = o.members.filter((m) => m.reachable).length;
    const voters = o.members.filter((m) => m.voter).length;
    const healthy = o.members.filter((m) => m.status && m.status.healthy).length;
    const applied = Math.max(0, ...o.members.map((m) => (m.status && m.status.applied_index) || 0));
    $("cluster-summary").replaceChildren(
      card("Leader", o.leader ? "node " + o.leader : "none", o.leader ? "stat-good" : "stat-bad", "cluster-leader"),
      card("Term", String(o.term), null, "cluster-term"),
      card("Members", o.members.length + " (" + voters + " voters)", null, "cluster-members"),
      card("Answering", reachable + " / " + o.members.length, reachable === o.members.length ? "stat-good" : "stat-warn"),
      card("Healthy", healthy + " / " + o.members.length, healthy === o.members.length ? "stat-good" : "stat-warn"),
      card("Applied index", fmtNum(applied)));
    const rows = o.members.map((m) => {
      const s = m.status || {};
      const r = role(m);
      const lagCls = m.lag === null || m.lag === undefined ? "" : m.lag === 0 ? "lag-ok" : m.lag < 1000 ? "lag-some" : "lag-far";
      const health = !m.reachable
        ? el("span", { class: "bad", title: m.error || "" }, "no answer")
        : s.healthy ? el("span", { class: "good" }, "healthy") : el("span", { class: "bad", title: s.error || "" }, "failed: " + (s.error || "?"));
      const snaps = m.status
        ? [s.snapshot_index === null || s.snapshot_index === undefined ? "none yet" : "at #" + fmtNum(s.snapshot_index),
          el("span", { class: "muted small" }, " · " + s.snapshots_built + " built" +
            (s.snapshots_built ? " (last " + fmtMs(s.snapshot_build_ms) + ")" : "") + " · " + s.snapshots_installed + " installed")]
        : "–";
      return el("tr", { dataset: { nodeId: String(m.id), role: r }, class: m.reachable ? undefined : "down" },
        el("td", { class: "strong" }, "node " + m.id, m.id === o.node ? el("span", { class: "pill" }, "this node") : null,
          m.voter ? null : el("span", { class: "pill" }, "learner")),
        el("td", {}, el("span", { class: "role role-" + r.toLowerCase() }, r)),
        el("td", {}, /^https?:\/\//.test(m.api_addr)
          ? el("a", { href: m.api_addr + "/console/#/cluster", title: "this member's own console" }, m.api_addr.replace(/^https?:\/\//, ""))
          : m.api_addr),
        el("td", { class: "muted" }, m.raft_addr),
        el("td", { class: "num" }, m.status ? String(s.term) : "–"),
        el("td", { class: "num" }, m.status ? fmtNum(s.applied_index || 0) : "–"),
        el("td", { class: "num" }, m.status ? fmtNum(s.last_log_index || 0) : "–"),
        el("td", { class: "num " + lagCls }, m.lag === null || m.lag === undefined ? "–" : fmtNum(m.lag)),
        el("td", {}, snaps),
        el("td", { class: "num" }, m.rtt_ms === null || m.rtt_ms === undefined ? "–" : fmtMs(m.rtt_ms)),
        el("td", {}, health));
    });
    $("cluster-table").tBodies[0].replaceChildren(...rows);
    const self = o.members.find((m) => m.id === o.node);
    if (self && self.status && HQ.setBadge) HQ.setBadge(self.status);
  }

  async function refresh() {
    const upd = $("cluster-updated");
    try {
      const o = await call("GET", "/console/api/cluster");
      compare(last, o);
      last = o;
      render(o);
      upd.textContent = "node " + o.node + "'s view · updated " + fmtClock(Date.now()) + " · every second";
      upd.classList.remove("bad");
    } catch (e) {
      upd.textContent = (e.status === 401 ? "Refused by the node: " : "No answer: ") + e.message;
      upd.classList.add("bad");
    }
  }

  HQ.views.cluster = {
    show() {
      if (stop) stop();
      stop = poll(refresh, EVERY_MS, () => !$("view-cluster").hidden);
    },
    hide() {
      if (stop) stop();
      stop = null;
    },
  };
})(window.HQ);
