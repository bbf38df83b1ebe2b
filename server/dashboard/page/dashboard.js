// qcal-server's dashboard: polls /api/v1/models, shows the chosen quantizer's histogram (log
// scale) with each method's amax, or a max calibrator's per-channel amax. No libraries.
"use strict";

const POLL_MS = 2000;
const METHODS = [
  ["max", "#d62728"],
  ["entropy", "#2ca02c"],
  ["mse", "#1f77b4"],
  ["percentile", "#9467bd"],
];
const SVG = "http://www.w3.org/2000/svg";

// What is shown: the chosen quantizer, and the previous poll's counters for the ingest rate.
const state = { model: null, quantizer: null, batches: -1, last: null };

// Amax as shown (and as the browser test reads it): 4 significant digits.
function formatAmax(value) { return Number(value).toPrecision(4); }
function formatPercent(fraction) {
  const p = 100 * fraction;
  return (p === 0 ? "0" : p < 0.001 ? "<0.001" : p.toPrecision(3)) + "%";
}
function formatCount(n) { return Number(n).toLocaleString("en-US"); }
function formatBytes(b) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (b >= 1000 && i < units.length - 1) { b /= 1000; i++; }
  return (i === 0 ? b.toFixed(0) : b.toPrecision(3)) + " " + units[i];
}

// A name that may wrap after its dots and slashes rather than in the middle of a word.
function breakable(name) {
  const span = document.createElement("span");
  name.split(/(?<=[./])/).forEach((part, i) => {
    if (i > 0) span.append(document.createElement("wbr"));
    span.append(part);
  });
  return span;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
}
function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// Names may hold '/': each is one percent-encoded path segment.
function quantizerUrl(model, quantizer) {
  return "/api/v1/models/" + encodeURIComponent(model) + "/quantizers/" +
    encodeURIComponent(quantizer);
}

async function getJson(url) {
  const response = await fetch(url, { cache: "no-store" });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = body && body.error ? body.error.message : response.statusText;
    throw new Error(`${url}: ${response.status} ${message}`);
  }
  return body;
}

function setStatus(text, error) {
  const node = document.getElementById("status");
  node.textContent = text;
  node.className = error ? "status error" : "status";
}

// The rate between this poll and the previous one; negative (a model deleted) shows as 0.
function showIngest(ingest) {
  const now = performance.now();
  if (state.last) {
    const seconds = (now - state.last.time) / 1000;
    const bytes = Math.max(0, ingest.bytes_total - state.last.bytes) / seconds;
    const batches = Math.max(0, ingest.batches_total - state.last.batches) / seconds;
    document.getElementById("ingest-bytes").textContent = formatBytes(bytes) + "/s";
    document.getElementById("ingest-batches").textContent = batches.toFixed(1) + " batches/s";
  }
  state.last = { time: now, bytes: ingest.bytes_total, batches: ingest.batches_total };
}

function showModels(models) {
  const root = document.getElementById("models");
  root.replaceChildren();
  if (models.length === 0) {
    root.append(el("p", { class: "empty" }, "No models yet: record some data."));
    return;
  }
  for (const model of models) {
    root.append(el("div", { class: "model-name" }, model.name,
      el("span", { class: "rate" }, `${formatBytes(model.ingest.bytes_total)} recorded`)));
    const table = el("table", {},
      el("tr", {}, el("th", {}, "quantizer"), el("th", {}, "batches"),
        el("th", {}, "elements"), el("th", {}, "non-finite")));
    for (const q of model.quantizers) {
      const selected = model.name === state.model && q.name === state.quantizer;
      const kind = q.calibrator === "max"
        ? (q.axis === null ? "max" : `max, axis ${q.axis}`) : "histogram";
      const row = el("tr", { class: "quantizer" + (selected ? " selected" : ""),
                             "data-model": model.name, "data-quantizer": q.name },
        el("td", {}, breakable(q.name), " ", el("span", { class: "kind" }, kind)),
        el("td", { class: "batches" }, formatCount(q.batches)),
        el("td", {}, formatCount(q.elements)),
        el("td", q.nonfinite > 0 ? { class: "nonfinite" } : {}, formatCount(q.nonfinite)));
      row.addEventListener("click", () => choose(model.name, q.name));
      table.append(row);
      if (selected && q.batches !== state.batches) {
        state.batches = q.batches;
        loadQuantizer();
      }
    }
    root.append(table);
  }
}

function choose(model, quantizer) {
  state.model = model;
  state.quantizer = quantizer;
  state.batches = -1;
  location.hash = new URLSearchParams({ model, quantizer }).toString();
  poll();
}

// A frame of width x height with margins, and x/y scales onto it.
function frame(width, height) {
  const m = { left: 56, right: 16, top: 14, bottom: 34 };
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img" });
  return { root, m, w: width - m.left - m.right, h: height - m.top - m.bottom };
}

// A horizontal line across the frame at y.
function hline(f, y, cls) {
  return svg("line", { class: cls, x1: f.m.left, x2: f.m.left + f.w, y1: y, y2: y });
}
function tick(x, y, anchor, text) {
  return svg("text", { class: "tick", x, y, "text-anchor": anchor }, text);
}

function niceTicks(max, count) {
  const step0 = max / count;
  const magnitude = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 5, 10].map(f => f * magnitude).find(s => s >= step0);
  const ticks = [];
  for (let v = 0; v <= max * 1.0001; v += step) ticks.push(v);
  return ticks;
}

function drawHistogram(data) {
  const h = data.histogram;
  const chart = document.getElementById("chart");
  chart.replaceChildren();
  if (h.counts.length === 0) {
    chart.append(el("p", { class: "empty" }, "No values yet (or only zeros)."));
    return;
  }
  const f = frame(720, 300);
  const xMax = h.edges[h.edges.length - 1];
  const yMax = Math.log10(maxOf(h.counts) + 1);
  const x = v => f.m.left + (v / xMax) * f.w;
  const y = c => f.m.top + f.h - (Math.log10(c + 1) / yMax) * f.h;
  // Decades of the log scale.
  for (let d = 0; Math.pow(10, d) <= Math.pow(10, yMax); d++) {
    const yy = y(Math.pow(10, d) - 1);
    f.root.append(hline(f, yy, "grid"));
    f.root.append(tick(f.m.left - 6, yy + 4, "end",
      d === 0 ? "1" : "1e" + d));
  }
  let path = "";
  const base = f.m.top + f.h;
  for (let i = 0; i < h.counts.length; i++) {
    if (h.counts[i] === 0) continue;
    const x0 = x(h.edges[i]);
    const x1 = Math.max(x(h.edges[i + 1]), x0 + 0.6);
    path += `M${x0.toFixed(2)} ${base}V${y(h.counts[i]).toFixed(2)}H${x1.toFixed(2)}V${base}Z`;
  }
  f.root.append(svg("path", { class: "bars", d: path }));
  for (const v of niceTicks(xMax, 6)) {
    f.root.append(tick(x(v), base + 16, "middle",
      Number(v.toPrecision(3)).toString()));
  }
  f.root.append(hline(f, base, "axis"));
  f.root.append(svg("line", { class: "axis", x1: f.m.left, x2: f.m.left, y1: f.m.top, y2: base }));
  f.root.append(tick(f.m.left + f.w, base + 30, "end",
    "|x|"));
  f.root.append(tick(4, f.m.top + 4, "start", "count"));
  // One line per method, its label on its own row so that close amaxes stay readable.
  METHODS.forEach(([method, color], row) => {
    const a = data.amax[method];
    if (!a || a.error !== undefined) return;
    const xx = Math.min(x(a.amax), f.m.left + f.w);
    f.root.append(svg("line", { x1: xx, x2: xx, y1: f.m.top, y2: base, stroke: color,
                                "stroke-width": 2, "stroke-dasharray": row ? "5 3" : "" }));
    const left = xx > f.m.left + f.w * 0.7;
    f.root.append(svg("text", { class: "label method-label", fill: color,
                                x: left ? xx - 5 : xx + 5, y: f.m.top + 12 + 15 * row,
                                "text-anchor": left ? "end" : "start", "data-method": method },
      `${method} ${formatAmax(a.amax)} (${formatPercent(a.clipped)} clipped)`));
  });
  chart.append(f.root);
}

// Loops, not Math.max(...a): spreading an array passes each value as an argument, and V8
// refuses about 125,000 of them (an LLM's vocabulary-sized weight has more channels).
function plural(n, one, many) { return `${formatCount(n)} ${n === 1 ? one : many}`; }
function maxOf(a) { let m = -Infinity; for (const v of a) if (v > m) m = v; return m; }
function minOf(a) { let m = Infinity; for (const v of a) if (v < m) m = v; return m; }

// At most this many bars: past it, each bar is the largest amax of a run of channels.
const MAX_CHANNEL_BARS = 2048;

function drawChannels(data) {
  const chart = document.getElementById("chart");
  chart.replaceChildren();
  const amax = data.channel_amax;
  if (amax.length === 0) { chart.append(el("p", { class: "empty" }, "No values yet.")); return; }
  const f = frame(720, 240);
  const top = maxOf(amax) || 1;
  const base = f.m.top + f.h;
  const group = Math.ceil(amax.length / MAX_CHANNEL_BARS);
  const bars = Math.ceil(amax.length / group);
  const bar = f.w / bars;
  const y = v => base - (v / top) * f.h;
  for (const v of niceTicks(top, 5)) {
    f.root.append(hline(f, y(v), "grid"));
    f.root.append(tick(f.m.left - 6, y(v) + 4, "end",
      Number(v.toPrecision(3)).toString()));
  }
  const every = Math.ceil(bars / 16);
  for (let b = 0; b < bars; b++) {
    const first = b * group;
    const last = Math.min(first + group, amax.length) - 1;
    const v = maxOf(amax.slice(first, last + 1));
    if (b % every === 0) {
      f.root.append(svg("text", { class: "tick", x: f.m.left + (b + 0.5) * bar, y: base + 14,
                                  "text-anchor": "middle" }, String(first)));
    }
    const rect = svg("rect", { class: "bars channel", x: f.m.left + b * bar + bar * 0.1, y: y(v),
                               width: Math.max(bar * 0.8, 0.5), height: base - y(v) });
    rect.append(svg("title", {}, group === 1 ? `channel ${first}: ${formatAmax(v)}`
                                             : `channels ${first}-${last}: largest ${formatAmax(v)}`));
    f.root.append(rect);
  }
  f.root.append(hline(f, base, "axis"));
  f.root.append(tick(f.m.left + f.w, base + 30, "end",
    group === 1 ? `channel (${amax.length})`
               : `channel (${amax.length}; a bar is the largest of ${group})`));
  f.root.append(tick(4, f.m.top + 4, "start", "amax"));
  chart.append(f.root);
}

function amaxTable(data) {
  const root = document.getElementById("amax");
  root.replaceChildren();
  if (data.calibrator === "max") {
    const a = data.channel_amax;
    if (a.length > 0) {
      root.append(el("p", { class: "meta" }, `${a.length} channel${a.length > 1 ? "s" : ""}: ` +
        `amax from ${formatAmax(minOf(a))} to ${formatAmax(maxOf(a))}`));
    }
    return;
  }
  const table = el("table", { id: "amax-table" },
    el("tr", {}, el("th", {}, "method"), el("th", {}, "amax"), el("th", {}, "clipped")));
  for (const [method, color] of METHODS) {
    const a = data.amax[method];
    const name = el("td", {}, el("span", { class: "swatch", style: `background:${color}` }),
      method === "percentile" && a && a.percentile ? `percentile ${a.percentile}` : method);
    const row = a.error !== undefined
      ? el("tr", { "data-method": method }, name,
          el("td", { colspan: 2, class: "error-text" }, a.error))
      : el("tr", { "data-method": method }, name,
          el("td", { class: "amax" }, formatAmax(a.amax)),
          el("td", { class: "clipped" }, formatPercent(a.clipped)));
    table.append(row);
  }
  root.append(table);
}

async function loadQuantizer() {
  const { model, quantizer } = state;
  try {
    const data = await getJson(quantizerUrl(model, quantizer));
    if (model !== state.model || quantizer !== state.quantizer) return;  // Chosen another since.
    document.getElementById("detail-title").textContent = `${model} / ${quantizer}`;
    const kind = data.calibrator === "max"
      ? `max calibrator, ${data.axis === null ? "per tensor" : "per channel, axis " + data.axis}`
      : `histogram, ${formatCount(data.histogram.counts.length)} bins` +
        (data.histogram.merged_bins > 1 ? ` (shown ${data.histogram.merged_bins} to a bar)` : "");
    document.getElementById("detail-meta").textContent =
      `${kind} · ${data.format === "fp8_e4m3" ? "FP8 E4M3" : data.num_bits + " bits"} · ${plural(data.batches, "batch", "batches")} · ` +
      `${plural(data.elements, "element", "elements")}`;
    if (data.calibrator === "max") drawChannels(data); else drawHistogram(data);
    amaxTable(data);
  } catch (error) {
    setStatus(error.message, true);
  }
}

async function poll() {
  try {
    const data = await getJson("/api/v1/models");
    showIngest(data.ingest);
    showModels(data.models);
    setStatus("updated " + new Date().toLocaleTimeString("en-GB"), false);
  } catch (error) {
    setStatus(error.message, true);
  }
}

const chosen = new URLSearchParams(location.hash.slice(1));
if (chosen.get("model") && chosen.get("quantizer")) {
  state.model = chosen.get("model");
  state.quantizer = chosen.get("quantizer");
}
poll();
setInterval(poll, POLL_MS);
