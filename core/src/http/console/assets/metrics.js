// The metrics view: charts of this node's own activity (writes and applied entries per second,
// write latency, reads per second, query-cache hit rate) from `/console/api/series`, fetched
// every two seconds while shown (only the points not yet seen) and kept for ten minutes.
"use strict";

(function (HQ) {
  const { $, call, fmtNum, poll } = HQ;
  const EVERY_MS = 2000;
  const KEEP_MS = 600 * 1000;

  let stop = null;
  let points = [];
  let charts = null;
  let skew = 0; // node clock minus this browser's, so "now" is the node's now

  function makeCharts() {
    return {
      writes: new HQ.LineChart($("chart-writes"), {
        series: [{ label: "write requests via this node", color: "#0f766e" }, { label: "log entries applied", color: "#7c3aed" }],
      }),
      latency: new HQ.LineChart($("chart-latency"), {
        series: [{ label: "mean", color: "#c2410c" }], empty: "no writes via this node in this window",
      }),
      reads: new HQ.LineChart($("chart-reads"), { series: [{ label: "reads", color: "#2563eb" }] }),
      cache: new HQ.LineChart($("chart-cache"), {
        series: [{ label: "hit rate", color: "#16a34a" }], max: 100,
        empty: "no reads through the cache in this window",
      }),
    };
  }

  function lastValue(key, digits, suffix) {
    for (let i = points.length - 1; i >= 0; i--) {
      const v = points[i][key];
      if (v !== null && v !== undefined) return fmtNum(v, digits) + suffix;
    }
    return "–";
  }

  function draw() {
    if (!charts) return;
    const win = Number($("metrics-window").value);
    const now = Date.now() + skew;
    const map = (f) => points.map((p) => ({ t: p.t_ms, values: f(p) }));
    charts.writes.draw(map((p) => [p.writes_per_s, p.applied_per_s]), win, now);
    charts.latency.draw(map((p) => [p.write_latency_ms]), win, now);
    charts.reads.draw(map((p) => [p.reads_per_s]), win, now);
    charts.cache.draw(map((p) => [p.cache_hit_rate === null ? null : p.cache_hit_rate * 100]), win, now);
    $("v-writes").textContent = lastValue("writes_per_s", 1, "/s");
    $("v-latency").textContent = lastValue("write_latency_ms", 2, " ms");
    $("v-reads").textContent = lastValue("reads_per_s", 1, "/s");
    const hit = points.length ? points[points.length - 1].cache_hit_rate : null;
    $("v-cache").textContent = hit === null || hit === undefined ? "–" : fmtNum(hit * 100, 1) + " %";
  }

  async function refresh() {
    const since = points.length ? points[points.length - 1].t_ms : 0;
    try {
      const r = await call("GET", "/console/api/series?since=" + since);
      skew = r.now_ms - Date.now();
      points = points.concat(r.points).filter((p) => p.t_ms >= r.now_ms - KEEP_MS);
      $("metrics-node").textContent = "Node " + r.node + "'s own counters, one point a second.";
      $("metrics-node").classList.remove("bad");
    } catch (e) {
      $("metrics-node").textContent = (e.status === 401 ? "Refused by the node: " : "No answer: ") + e.message;
      $("metrics-node").classList.add("bad");
    }
    draw();
  }

  let wired = false;
  HQ.views.metrics = {
    show() {
      if (!wired) {
        wired = true;
        charts = makeCharts();
        $("metrics-window").addEventListener("change", draw);
        window.addEventListener("resize", draw);
      }
      if (stop) stop();
      stop = poll(refresh, EVERY_MS, () => !$("view-metrics").hidden);
    },
    hide() {
      if (stop) stop();
      stop = null;
    },
  };
})(window.HQ);
