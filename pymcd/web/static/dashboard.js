// pymcd's dashboard: /api/events sends a snapshot of the server's stats once a second; this
// page turns consecutive snapshots into rates and keeps the last five minutes of them.
"use strict";

const KEEP = 300;            // points per series (seconds)
const TAIL_LINES = 200;      // lines kept in the watch tail
const FAMILIES = {           // requests per second by command family, from stats counters
  get: s => s.cmd_get,
  set: s => s.cmd_set,
  delete: s => s.delete_hits + s.delete_misses,
  "incr/decr": s => s.incr_hits + s.incr_misses + s.decr_hits + s.decr_misses,
  touch: s => s.cmd_touch,
  meta: s => s.cmd_meta,
  flush: s => s.cmd_flush,
};
const LRU_EVENTS = {
  evictions: s => s.evictions,
  "expired (reclaimed)": s => s.reclaimed,
  "crawler reclaimed": s => s.crawler_reclaimed,
  "expired unfetched": s => s.expired_unfetched,
};
const COLORS = ["#3b7dd8", "#e4572e", "#29a36a", "#f3a712", "#8a4fd8", "#17a2b8", "#8a8f98"];

function series(names) {
  return [{}].concat(names.map((name, i) => ({label: name, stroke: COLORS[i % COLORS.length],
                                              width: 1.5})));
}

function makeChart(id, names, options) {
  const el = document.getElementById(id);
  const data = [[]].concat(names.map(() => []));
  const chart = new uPlot(Object.assign({width: el.clientWidth || 400, height: 180,
                                         series: series(names), scales: {x: {time: true}},
                                         axes: [{}, {size: 70}]},
                                        options || {}), data, el);
  return {chart, data, names};
}

const charts = {
  requests: makeChart("chart-requests", Object.keys(FAMILIES)),
  hits: makeChart("chart-hits", ["hit ratio %"], {scales: {x: {time: true},
                                                            y: {range: [0, 100]}}}),
  lru: makeChart("chart-lru", Object.keys(LRU_EVENTS)),
  connections: makeChart("chart-connections", ["current", "new per second"]),
};

function push(entry, t, values) {
  entry.data[0].push(t);
  values.forEach((v, i) => entry.data[i + 1].push(v));
  if (entry.data[0].length > KEEP) entry.data.forEach(column => column.shift());
  entry.chart.setData(entry.data);
}

function rate(now, before, pick, seconds) {
  return Math.max(0, (pick(now) - pick(before)) / seconds);
}

let previous = null;

function onSnapshot(snapshot) {
  const s = snapshot.stats;
  document.getElementById("version").textContent =
    snapshot.pymcd_version + " (memcached " + s.version + ")";
  document.getElementById("status").textContent =
    "live, uptime " + s.uptime + " s, " + s.curr_items + " items";
  if (previous !== null && s.time > previous.time) {
    const seconds = s.time - previous.time;
    const t = s.time;
    push(charts.requests, t, Object.values(FAMILIES).map(f => rate(s, previous, f, seconds)));
    const gets = s.cmd_get - previous.cmd_get;
    const hits = s.get_hits - previous.get_hits;
    push(charts.hits, t, [gets > 0 ? 100 * hits / gets : null]);
    push(charts.lru, t, Object.values(LRU_EVENTS).map(f => rate(s, previous, f, seconds)));
    push(charts.connections, t, [s.curr_connections,
                                 rate(s, previous, x => x.total_connections, seconds)]);
  }
  if (previous === null || s.time > previous.time) previous = s;
  document.getElementById("connection-totals").textContent =
    "current " + s.curr_connections + ", total " + s.total_connections + ", rejected " +
    s.rejected_connections + ", max " + s.max_connections;
  drawMemory(s, snapshot.slabs);
  drawProxy(snapshot.proxy);
}

const SVG = "http://www.w3.org/2000/svg";

function svgElement(name, attributes, text) {
  const el = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) el.setAttribute(key, value);
  if (text !== undefined) el.textContent = text;
  return el;
}

function mib(bytes) { return (bytes / 1048576).toFixed(1) + " MiB"; }

// Horizontal stacked bars: one row per slab class, segments as given, scaled to the largest.
function drawBars(svg, rows, segments, label) {
  const rowHeight = 16, labelWidth = 150, width = svg.clientWidth || 800;
  const largest = Math.max(1, ...rows.map(row => segments.reduce((sum, seg) => sum + seg.value(row), 0)));
  svg.replaceChildren();
  svg.setAttribute("height", Math.max(rowHeight, rows.length * rowHeight));
  rows.forEach((row, i) => {
    const y = i * rowHeight;
    svg.appendChild(svgElement("text", {x: 0, y: y + 12}, label(row)));
    let x = labelWidth;
    for (const seg of segments) {
      const w = (width - labelWidth - 10) * seg.value(row) / largest;
      if (w > 0) {
        const rect = svgElement("rect", {x, y: y + 2, width: w, height: rowHeight - 4,
                                         fill: seg.color, "data-value": seg.value(row)});
        rect.appendChild(svgElement("title", {}, seg.name + ": " + seg.value(row)));
        svg.appendChild(rect);
      }
      x += w;
    }
  });
}

function drawMemory(s, slabs) {
  const total = document.getElementById("memory-total");
  const width = total.clientWidth || 400;
  const used = slabs.totals.total_malloced || 0;
  total.replaceChildren(
    svgElement("rect", {x: 0, y: 4, width, height: 20, fill: "#c9d7ea"}),
    svgElement("rect", {x: 0, y: 4, width: width * Math.min(1, used / s.limit_maxbytes),
                        height: 20, fill: "#3b7dd8"}));
  document.getElementById("memory-text").textContent =
    "pages given to slab classes " + mib(used) + " of " + mib(s.limit_maxbytes) +
    " (-m); item bytes " + mib(s.bytes) + "; evictions " + s.evictions;
  const classes = slabs.classes;
  drawBars(document.getElementById("slab-bars"), classes, [
    {name: "used", color: "#3b7dd8", value: c => c.used_chunks * c.chunk_size},
    {name: "free", color: "#c9d7ea", value: c => c.free_chunks * c.chunk_size},
  ], c => "class " + c.class + " (" + c.chunk_size + " B, " + c.total_pages + " p)");
  drawBars(document.getElementById("lru-bars"), classes, [
    {name: "HOT", color: "#e4572e", value: c => c.number_hot},
    {name: "WARM", color: "#f3a712", value: c => c.number_warm},
    {name: "COLD", color: "#3b7dd8", value: c => c.number_cold},
    {name: "TEMP", color: "#8a8f98", value: c => c.number_temp},
  ], c => "class " + c.class + " (" + c.number + " items)");
}

function drawProxy(backends) {
  const section = document.getElementById("proxy-section");
  section.hidden = backends.length === 0;
  const body = document.querySelector("#proxy-table tbody");
  body.replaceChildren(...backends.map(b => {
    const tr = document.createElement("tr");
    [b.name, b.up ? "up" : "down", b.requests, b.errors, b.timeouts, b.marked_down]
      .forEach((value, i) => {
        const td = document.createElement("td");
        td.textContent = value;
        if (i === 1 && !b.up) td.className = "down";
        tr.appendChild(td);
      });
    return tr;
  }));
}

const events = new EventSource("api/events");
events.addEventListener("snapshot", e => onSnapshot(JSON.parse(e.data)));
events.addEventListener("missed", e => {
  document.getElementById("status").textContent = "missed " + e.data + " snapshots";
});
events.onerror = () => { document.getElementById("status").textContent = "reconnecting…"; };

// The watch tail: an EventSource on api/watch while started; bounded to TAIL_LINES lines.
let watch = null;
const tail = document.getElementById("tail");

function tailLine(text, cls) {
  const li = document.createElement("li");
  li.textContent = text;
  if (cls) li.className = cls;
  tail.appendChild(li);
  while (tail.children.length > TAIL_LINES) tail.firstChild.remove();
  tail.scrollTop = tail.scrollHeight;
}

function stopWatch() {
  if (watch !== null) watch.close();
  watch = null;
  document.getElementById("watch-toggle").textContent = "Start";
  document.getElementById("watch-status").textContent = "off";
}

document.getElementById("watch-form").addEventListener("submit", e => {
  e.preventDefault();
  if (watch !== null) { stopWatch(); return; }
  const form = e.target;
  const kinds = [...form.querySelectorAll("input[name=kind]:checked")].map(i => i.value);
  const params = new URLSearchParams({kinds: kinds.join(",")});
  if (form.key.value) params.set("key", form.key.value);
  watch = new EventSource("api/watch?" + params);
  watch.onmessage = m => tailLine(m.data);
  watch.addEventListener("skipped", m => tailLine("skipped " + m.data + " lines", "skipped"));
  watch.onerror = () => { document.getElementById("watch-status").textContent = "reconnecting…"; };
  document.getElementById("watch-toggle").textContent = "Stop";
  document.getElementById("watch-status").textContent = "watching " + kinds.join(", ");
});

// For scripts and tests: how much each chart holds.
window.pymcdDashboard = {
  points: () => Object.fromEntries(Object.entries(charts).map(
    ([name, entry]) => [name, entry.data[0].length])),
  charts,
};
