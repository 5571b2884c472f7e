// A small time-series line chart on a canvas (the console's own, no library): one or more
// series over a sliding window ending now, y axis from zero with round ticks, gaps where a
// value is missing, sharp on high-density screens.
"use strict";

(function (HQ) {
  const PAD = { left: 52, right: 12, top: 12, bottom: 24 };
  const GRID = "#e5e7eb";
  const AXIS = "#6b7280";
  const FONT = "11px system-ui, -apple-system, 'Segoe UI', sans-serif";

  /** A step of 1, 2 or 5 times a power of ten giving about `count` ticks up to `max`. */
  function niceStep(max, count) {
    const raw = max / count;
    const pow = Math.pow(10, Math.floor(Math.log10(raw)));
    const m = raw / pow;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * pow;
  }

  function label(v, step) {
    if (v === 0) return "0";
    if (v >= 10000) return (v / 1000).toFixed(v >= 100000 ? 0 : 1) + "k";
    const digits = step >= 1 ? 0 : Math.min(3, Math.ceil(-Math.log10(step)));
    return v.toFixed(digits);
  }

  class LineChart {
    /**
     * `opts.series`: [{label, color}]; `opts.max`: a fixed top of the y axis (e.g. 100 for a
     * percentage), else it follows the data; `opts.empty`: what to say when no value is shown.
     */
    constructor(canvas, opts) {
      this.canvas = canvas;
      this.opts = opts;
    }

    /**
     * Draw `points` ([{t: ms, values: [number|null, ...]}], oldest first) over the `windowSec`
     * seconds that end at `now` (ms).
     */
    draw(points, windowSec, now) {
      const c = this.canvas;
      const dpr = window.devicePixelRatio || 1;
      const w = c.clientWidth, h = c.clientHeight;
      if (!w || !h) return;
      if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
        c.width = Math.round(w * dpr);
        c.height = Math.round(h * dpr);
      }
      const g = c.getContext("2d");
      g.setTransform(dpr, 0, 0, dpr, 0, 0);
      g.clearRect(0, 0, w, h);
      g.font = FONT;

      const from = now - windowSec * 1000;
      const shown = points.filter((p) => p.t >= from - 1000);
      let top = 0;
      for (const p of shown) for (const v of p.values) if (v !== null && v > top) top = v;
      if (this.opts.max !== undefined) top = this.opts.max;
      else top = top > 0 ? top * 1.15 : 1;
      const step = niceStep(top, 4);
      top = Math.ceil(top / step) * step;

      const x0 = PAD.left, x1 = w - PAD.right, y0 = h - PAD.bottom, y1 = PAD.top;
      const xOf = (t) => x0 + ((t - from) / (windowSec * 1000)) * (x1 - x0);
      const yOf = (v) => y0 - (v / top) * (y0 - y1);

      // Grid and y labels.
      g.strokeStyle = GRID;
      g.lineWidth = 1;
      g.fillStyle = AXIS;
      g.textAlign = "right";
      g.textBaseline = "middle";
      for (let v = 0; v <= top + step / 2; v += step) {
        const y = Math.round(yOf(v)) + 0.5;
        g.beginPath(); g.moveTo(x0, y); g.lineTo(x1, y); g.stroke();
        g.fillText(label(v, step), x0 - 6, y);
      }
      // x labels: seconds or minutes before now.
      g.textAlign = "center";
      g.textBaseline = "top";
      const tick = windowSec <= 60 ? 15 : windowSec <= 300 ? 60 : 120;
      for (let s = 0; s <= windowSec; s += tick) {
        const x = xOf(now - s * 1000);
        const text = s === 0 ? "now" : tick < 60 ? "-" + s + "s" : "-" + s / 60 + "m";
        g.fillText(text, Math.min(Math.max(x, x0 + 10), x1 - 12), y0 + 6);
      }

      // Lines, the first series filled beneath and drawn last (on top); the others dashed.
      g.save();
      g.beginPath(); g.rect(x0, y1 - 2, x1 - x0, y0 - y1 + 2); g.clip();
      this.opts.series.map((s, i) => [s, i]).reverse().forEach(([s, i]) => {
        const runs = [];
        let run = [];
        for (const p of shown) {
          const v = p.values[i];
          if (v === null || v === undefined) { if (run.length) runs.push(run); run = []; continue; }
          run.push([xOf(p.t), yOf(Math.min(v, top))]);
        }
        if (run.length) runs.push(run);
        for (const r of runs) {
          if (i === 0 && r.length > 1) {
            g.beginPath();
            g.moveTo(r[0][0], y0);
            r.forEach(([x, y]) => g.lineTo(x, y));
            g.lineTo(r[r.length - 1][0], y0);
            g.closePath();
            g.fillStyle = s.color + "22";
            g.fill();
          }
          g.beginPath();
          r.forEach(([x, y], k) => (k ? g.lineTo(x, y) : g.moveTo(x, y)));
          if (r.length === 1) g.arc(r[0][0], r[0][1], 1.5, 0, 2 * Math.PI);
          g.strokeStyle = s.color;
          g.lineWidth = i === 0 ? 1.8 : 1.4;
          g.lineJoin = "round";
          g.setLineDash(i === 0 ? [] : [5, 3]);
          g.stroke();
          g.setLineDash([]);
        }
      });
      g.restore();

      // Legend when there is more than one series.
      if (this.opts.series.length > 1) {
        g.textAlign = "left";
        g.textBaseline = "middle";
        let x = x0 + 8;
        for (const s of this.opts.series) {
          g.fillStyle = s.color;
          g.fillRect(x, y1 + 4, 10, 3);
          g.fillStyle = AXIS;
          g.fillText(s.label, x + 14, y1 + 6);
          x += 24 + g.measureText(s.label).width;
        }
      }
      const any = shown.some((p) => p.values.some((v) => v !== null && v !== undefined));
      if (!any) {
        g.fillStyle = AXIS;
        g.textAlign = "center";
        g.textBaseline = "middle";
        g.fillText(shown.length ? this.opts.empty || "no data in this window" : "collecting…", (x0 + x1) / 2, (y0 + y1) / 2);
      }
    }
  }

  HQ.LineChart = LineChart;
})(window.HQ);
