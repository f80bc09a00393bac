// The dashboard: calls in progress, calls a second, refusals, and each customer's channels in
// use against those bought, with a live chart; GET /api/limits and /api/calls every 2 s.
import { api, el, poll, section, startPage, table } from "./api.js";
import { COLORS, drawChart } from "./chart.js";

startPage();
const INTERVAL = 2000;
const SAMPLES = 90; // three minutes of history in the chart
const tiles = section("dash-tiles");
const chartPart = section("dash-chart", "Channels in use by customer (dashed: bought)");
const pools = section("dash-pools", "Channel pools");
const refused = section("dash-rejections", "Calls refused since the server started");
const canvas = el("canvas", { attrs: { id: "channels-chart", role: "img", "aria-label": "channels in use by customer" } });
const legend = el("div", { className: "legend", attrs: { id: "chart-legend" } });
chartPart.fill(canvas, legend);
const history = new Map(); // customer pool name -> channels in use, oldest first
let seen = new Set();
let seenAt = null;

function tile(id, label, value, alert = false) {
  return el("div", { className: alert ? "tile alert" : "tile", attrs: { id } },
    el("div", { className: "label", text: label }), el("div", { className: "value", text: value }));
}

// New calls a second: the calls listed now that were not at the last poll, over the time
// between the two polls (a call shorter than a poll's interval is not counted).
function callRate(calls, now) {
  const ids = new Set(calls.map((c) => c.id));
  let fresh = 0;
  for (const id of ids) if (!seen.has(id)) fresh += 1;
  const rate = seenAt === null ? null : fresh / ((now - seenAt) / 1000);
  seen = ids;
  seenAt = now;
  return rate;
}

function usage(pool) {
  const bought = pool.channels;
  const bar = el("div", { className: bought !== null && pool.channels_in_use >= bought ? "bar full" : "bar" }, el("span"));
  const share = bought ? Math.min(100, (100 * pool.channels_in_use) / bought) : 0;
  bar.firstChild.style.width = share + "%";
  return el("div", {}, el("span", { text: pool.channels_in_use + " / " + (bought === null ? "no limit" : bought) }), bar);
}

function drawHistory(customers) {
  const names = customers.map((p) => p.name);
  for (const name of history.keys()) if (!names.includes(name)) history.delete(name);
  for (const pool of customers) {
    const values = history.get(pool.name) || [];
    values.push(pool.channels_in_use);
    if (values.length > SAMPLES) values.shift();
    history.set(pool.name, values);
  }
  const series = customers.map((p) => ({ label: p.name, values: history.get(p.name), limit: p.channels }));
  drawChart(canvas, series, SAMPLES);
  legend.replaceChildren(...series.map((s, i) => {
    const swatch = el("i");
    swatch.style.background = COLORS[i % COLORS.length];
    return el("span", {}, swatch, s.label + ": " + s.values[s.values.length - 1]);
  }));
}

async function refresh() {
  const [limits, calls] = await Promise.all([api("/api/limits"), api("/api/calls")]);
  const rate = callRate(calls.calls, performance.now());
  const refusals = Object.values(limits.rejections).reduce((a, b) => a + b, 0);
  tiles.fill(el("div", { className: "tiles" },
    tile("calls-in-progress", "Calls in progress", limits.calls_in_progress),
    tile("calls-per-second", "New calls a second", rate === null ? "…" : rate.toFixed(1)),
    tile("refused", "Calls refused", refusals, refusals > 0)));
  const customers = limits.pools.filter((p) => p.kind === "customer");
  drawHistory(customers);
  pools.fill(table([
    { title: "Kind", value: (p) => p.kind },
    { title: "Name", value: (p) => p.name },
    { title: "Customer", value: (p) => p.customer || "operator" },
    { title: "Channels in use / bought", value: usage },
    { title: "Calls a second (limit)", value: (p) => (p.cps === null ? "no limit" : p.cps), className: "num" },
  ], limits.pools, { empty: "no channel pool", rowAttrs: (p) => ({ "data-pool": p.kind + ":" + p.name }) }));
  const reasons = Object.entries(limits.rejections).map(([reason, count]) => ({ reason, count }));
  refused.fill(table([
    { title: "Reason", value: (r) => r.reason },
    { title: "Calls", value: (r) => r.count, className: "num" },
  ], reasons, { empty: "none", rowAttrs: (r) => ({ "data-reason": r.reason }) }));
}

poll(refresh, INTERVAL);
