// The SQL firewall demo (templates/demos/firewall.html): a console whose statements go
// through the real proxy, a live panel of the proxy's counters, and a load test drawn as
// a latency histogram. One websocket (/ws/demos/firewall/, demos.consumers.FirewallConsumer)
// carries every job; params.action picks it:
//   watch  -> {"kind": "stats", "at", "stats": <the proxy's /stats.json> | null} each second
//   query  -> {"kind": "result", "sql", "ok", ...}  (rows, or the verdict / PostgreSQL error)
//   reset  -> {"kind": "reset", "tables", "dropped", "ms"}
//   load   -> {"kind": "progress", "queued": true} if another load test runs first, then
//             {"kind": "progress", "target": "direct"|"firewall", "done", "total", "seconds", "qps"} ...,
//             {"kind": "load", "seconds", "p50_ms", ..., "histogram": [[bound_ms, n]...],
//              "direct": {the same figures, straight to PostgreSQL}, "added_ms": {"p50", ...}}

// About 750 lines, one page's module: most of it is drawing (result tables, the counters, the
// two-series histogram) from the messages above; the socket protocol is demo-socket.js's.

import { DemoSocket, disconnectedText } from "./demo-socket.js";
import { el, formatCount, scrollBehavior, svg } from "./dom.js";

const root = document.querySelector("[data-fw]");
const RESTART_ON = new Set(["timeout", "limit"]); // the watch hit its cap: watch again
const MAX_HISTORY = 8; // results kept on the page, newest first

// -- small helpers ------------------------------------------------------------------------

function formatMs(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "—";
  if (ms >= 100) return `${Math.round(ms)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

/** A proxy percentile: a bucket's upper bound in µs, or "+Inf" past the last bucket. */
function formatBound(us) {
  if (us === "+Inf") return "> 1 s";
  if (typeof us !== "number" || !Number.isFinite(us)) return "—";
  if (us >= 1000) return `≤ ${us / 1000 >= 10 ? Math.round(us / 1000) : (us / 1000).toFixed(1)} ms`;
  return `≤ ${us} µs`;
}

function formatSeconds(s) {
  if (typeof s !== "number" || !Number.isFinite(s)) return "—";
  return s >= 10 ? `${s.toFixed(1)} s` : `${s.toFixed(2)} s`;
}

function formatDelta(value, format) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "—";
  return `${value < 0 ? "−" : "+"}${format(Math.abs(value))}`;
}

/** Scroll so that ``node`` is on screen, as little as needed: a result appears where the
 * visitor looks, on a phone too, without a jump when it is already in view. */
function reveal(node) {
  const box = node.getBoundingClientRect();
  const viewport = window.innerHeight || document.documentElement.clientHeight;
  if (box.top >= 0 && box.top < viewport - Math.min(box.height, viewport / 3)) return;
  node.scrollIntoView({ block: "nearest", behavior: scrollBehavior() });
}

function formatChartMs(ms) {
  if (ms >= 100) return `${Math.round(ms)}`;
  if (ms >= 10) return ms.toFixed(0);
  if (ms >= 1) return ms.toFixed(1);
  return ms.toFixed(2);
}

// -- the page's parts ---------------------------------------------------------------------

const ui = root && {
  connection: root.querySelector("[data-fw-connection]"),
  connectionText: root.querySelector("[data-fw-connection-text]"),
  form: root.querySelector("[data-fw-form]"),
  sql: root.querySelector("[data-fw-sql]"),
  run: root.querySelector("[data-fw-run]"),
  reset: root.querySelector("[data-fw-reset]"),
  consoleState: root.querySelector("[data-fw-console-state]"),
  results: root.querySelector("[data-fw-results]"),
  panel: root.querySelector("[data-fw-panel]"),
  statsState: root.querySelector("[data-fw-stats-state]"),
  statsUpdated: root.querySelector("[data-fw-stats-updated]"),
  rules: root.querySelector("[data-fw-rules] tbody"),
  load: root.querySelector("[data-fw-load]"),
  loadState: root.querySelector("[data-fw-load-state]"),
  progress: root.querySelector("[data-fw-progress]"),
  progressText: root.querySelector("[data-fw-progress-text]"),
  chart: root.querySelector("[data-fw-chart]"),
  compare: root.querySelector("[data-fw-compare]"),
  chartPlot: root.querySelector("[data-fw-chart-plot]"),
  chartCaption: root.querySelector("[data-fw-chart-caption]"),
};

function ruleDescription(rule) {
  const row = ui.rules.querySelector(`tr[data-fw-rule="${CSS.escape(rule)}"]`);
  return row ? row.dataset.description : "";
}

// -- jobs ----------------------------------------------------------------------------------
// The server answers a start with "started" (carrying the job id) or with an "error" (no id),
// in order. Starts go out one at a time so that each answer can be matched to its action.

const jobs = new Map(); // job id -> action name
let inflight = null; // {action, params} waiting for "started" or an error
const queue = []; // starts not sent yet
let busy = { query: false, load: false };

function start(action, params = {}) {
  queue.push({ action, params: { action, ...params } });
  pump();
}

function pump() {
  if (inflight || !queue.length || !socket.isOpen) return;
  inflight = queue.shift();
  if (!socket.start(inflight.params)) {
    queue.unshift(inflight);
    inflight = null;
  }
}

function setBusy(kind, value, text = "") {
  busy[kind] = value;
  if (kind === "query") {
    ui.consoleState.textContent = text;
    ui.form.setAttribute("aria-busy", String(value));
  } else {
    ui.loadState.textContent = text;
  }
  refreshButtons();
}

function refreshButtons() {
  const open = socket.isOpen;
  ui.run.disabled = !open || busy.query;
  ui.reset.disabled = !open || busy.query;
  ui.load.disabled = !open || busy.load;
}

// -- the console ---------------------------------------------------------------------------

function runConsole() {
  const sql = ui.sql.value;
  if (!sql.trim()) {
    ui.consoleState.textContent = "Type a statement first.";
    ui.sql.focus();
    return;
  }
  const limitKb = Number(root.dataset.maxSqlKb) || 10;
  const bytes = new TextEncoder().encode(sql).length;
  if (bytes > limitKb * 1024) {
    ui.consoleState.textContent = `The console takes up to ${limitKb} KB of SQL; this is ${formatCount(bytes)} bytes.`;
    return;
  }
  if (busy.query || !socket.isOpen) return;
  setBusy("query", true, "Running…");
  start("query", { sql });
}

function runReset() {
  if (busy.query || !socket.isOpen) return;
  setBusy("query", true, "Restoring the sample data…");
  start("reset");
}

function addResult(entry) {
  root.querySelector("[data-fw-placeholder]")?.remove();
  ui.results.prepend(entry);
  const entries = ui.results.querySelectorAll(".fw-result");
  for (const old of [...entries].slice(MAX_HISTORY)) old.remove();
  reveal(entry);
}

function resultShell(sql, state) {
  const entry = el("article", `fw-result fw-result--${state}`);
  entry.dataset.fwResult = state;
  if (sql !== undefined) {
    const echo = el("pre", "fw-result__sql");
    echo.append(el("code", null, sql));
    entry.append(echo);
  }
  return entry;
}

function renderRows(item) {
  const entry = resultShell(item.sql, "rows");
  const shown = item.rows.length;
  const parts = [item.status || "OK"];
  if (item.columns.length) {
    parts.push(
      item.truncated
        ? `showing ${formatCount(shown)} of ${formatCount(item.row_count)}${item.note ? "+" : ""} rows`
        : `${formatCount(shown)} row${shown === 1 ? "" : "s"}`,
    );
  }
  parts.push(formatMs(item.ms));
  const meta = el("p", "fw-result__meta");
  meta.append(el("span", "fw-ok", "Allowed"), ` · ${parts.join(" · ")}`);
  entry.append(meta);
  if (item.statuses && item.statuses.length > 1) {
    entry.append(el("p", "fw-result__statuses", `Statements: ${item.statuses.filter(Boolean).join(", ")}`));
  }
  if (item.note) entry.append(el("p", "fw-result__note", `Note: ${item.note}.`));
  if (item.columns.length) {
    const wrap = el("div", "fw-table-wrap");
    wrap.tabIndex = 0; // a wide table scrolls with the keyboard
    wrap.setAttribute("role", "region");
    wrap.setAttribute("aria-label", `Result rows of ${item.sql.slice(0, 60)}`);
    const table = el("table", "fw-table");
    const head = table.createTHead().insertRow();
    for (const name of item.columns) {
      const th = el("th", null, name);
      th.scope = "col";
      head.append(th);
    }
    const body = table.createTBody();
    for (const row of item.rows) {
      const tr = body.insertRow();
      for (const value of row) {
        const td = tr.insertCell();
        if (value === null) td.append(el("span", "fw-null", "NULL"));
        else td.textContent = value;
      }
    }
    if (!item.rows.length) {
      const td = body.insertRow().insertCell();
      td.colSpan = item.columns.length;
      td.className = "fw-empty";
      td.textContent = "(no rows)";
    }
    wrap.append(table);
    entry.append(wrap);
  }
  return entry;
}

function renderVerdict(item) {
  const entry = resultShell(item.sql, "blocked");
  entry.setAttribute("aria-label", `Blocked by the firewall, rule ${item.rule}`);
  const head = el("p", "fw-verdict__head");
  head.append(el("strong", null, "Blocked by the firewall"), " · rule ");
  head.append(el("code", "fw-verdict__rule", item.rule));
  entry.append(head);
  const description = ruleDescription(item.rule);
  if (description) entry.append(el("p", "fw-verdict__why", description));
  entry.append(el("p", "fw-verdict__message", item.message));
  const meta = el("p", "fw-result__meta");
  meta.textContent = `SQLSTATE ${item.sqlstate} · ${item.hint || "the statement never reached the database"} · ${formatMs(item.ms)}`;
  entry.append(meta);
  return entry;
}

function renderError(item) {
  const entry = resultShell(item.sql, "error");
  const head = el("p", "fw-error__head");
  const who =
    item.source === "firewall"
      ? "The firewall could not parse this, so it did not pass it on"
      : item.source === "console"
        ? "Stopped by the console"
        : "PostgreSQL answered with an error";
  head.append(el("strong", null, who), ` · SQLSTATE ${item.sqlstate}`);
  entry.append(head);
  entry.append(el("p", "fw-error__message", `ERROR: ${item.message}`));
  if (item.position && item.sql) {
    const line = item.sql.slice(0, item.position - 1).split("\n").length;
    entry.append(el("p", "fw-result__meta", `at character ${item.position} (line ${line})`));
  }
  if (item.detail) entry.append(el("p", "fw-result__meta", `DETAIL: ${item.detail}`));
  if (item.hint) entry.append(el("p", "fw-result__meta", `HINT: ${item.hint}`));
  if (item.statuses && item.statuses.length) {
    entry.append(el("p", "fw-result__statuses", `Ran before the error: ${item.statuses.join(", ")}`));
  }
  return entry;
}

function showResult(item) {
  let entry;
  let summary;
  if (item.ok) {
    entry = renderRows(item);
    summary = item.columns.length
      ? `Allowed: ${item.rows.length} row${item.rows.length === 1 ? "" : "s"}.`
      : `Allowed: ${item.status || "done"}.`;
  } else if (item.blocked) {
    entry = renderVerdict(item);
    summary = `Blocked by rule ${item.rule}.`;
  } else {
    entry = renderError(item);
    summary = `Error ${item.sqlstate}: ${item.message}`;
  }
  addResult(entry);
  setBusy("query", false, summary);
}

function showNotice(text, sql) {
  const entry = resultShell(sql, "notice");
  entry.append(el("p", "fw-result__note", text));
  addResult(entry);
}

// -- the live counters ----------------------------------------------------------------------

function setStat(name, value) {
  const node = ui.panel.querySelector(`[data-fw-stat="${name}"]`);
  if (!node || node.textContent === value) return;
  const changed = node.textContent !== "—";
  node.textContent = value;
  if (changed) {
    node.classList.remove("fw-flash");
    void node.offsetWidth; // restart the animation
    node.classList.add("fw-flash");
  }
}

function showStats(snap) {
  const stats = snap.stats;
  if (!stats || typeof stats !== "object") {
    ui.panel.dataset.state = "down";
    ui.statsState.textContent = "the proxy's metrics do not answer: is the firewall running?";
    return;
  }
  ui.panel.dataset.state = "up";
  ui.statsState.textContent = "live";
  const at = new Date(snap.at);
  ui.statsUpdated.textContent = Number.isNaN(at.getTime()) ? "" : `updated ${at.toLocaleTimeString()}`;

  const pools = Array.isArray(stats.pools) ? stats.pools : [];
  const sum = (key) => pools.reduce((total, pool) => total + (Number(pool[key]) || 0), 0);
  const size = sum("size");
  setStat("active", `${formatCount(sum("active"))}${size ? ` / ${size}` : ""}`);
  setStat("idle", formatCount(sum("idle")));
  setStat("waiting", formatCount(sum("waiting_clients")));
  setStat("clients", formatCount(stats.clients));

  const guard = stats.guard || {};
  const blocked = guard.blocked && typeof guard.blocked === "object" ? guard.blocked : {};
  setStat("checked", formatCount(guard.checked));
  setStat("cache_hits", formatCount(guard.cache_hits));
  setStat("blocked", formatCount(Object.values(blocked).reduce((a, b) => a + (Number(b) || 0), 0)));
  for (const row of ui.rules.querySelectorAll("tr[data-fw-rule]")) {
    const count = Number(blocked[row.dataset.fwRule]) || 0;
    const cell = row.querySelector("[data-fw-rule-count]");
    const text = formatCount(count);
    if (cell.textContent !== text) {
      const wasKnown = cell.textContent !== "—";
      cell.textContent = text;
      row.dataset.hits = count > 0 ? "yes" : "no";
      if (wasKnown) {
        row.classList.remove("fw-flash");
        void row.offsetWidth;
        row.classList.add("fw-flash");
      }
    }
  }
  // Verdicts that are not rules (the guard fails closed on what it cannot parse) get a row.
  for (const [rule, count] of Object.entries(blocked)) {
    if (ui.rules.querySelector(`tr[data-fw-rule="${CSS.escape(rule)}"]`)) continue;
    const row = ui.rules.insertRow();
    row.dataset.fwRule = rule;
    row.dataset.description =
      rule === "parse_error" ? "statements the guard could not parse (fail closed)" : "";
    row.dataset.hits = "yes";
    const th = el("th");
    th.scope = "row";
    th.append(el("code", null, rule));
    if (row.dataset.description) th.append(el("span", "fw-rules__desc", row.dataset.description));
    const td = el("td", "fw-num", formatCount(count));
    td.dataset.fwRuleCount = "";
    row.append(th, td);
  }

  const latency = stats.latency || {};
  setStat("p50", formatBound(latency.p50_us));
  setStat("p95", formatBound(latency.p95_us));
  setStat("p99", formatBound(latency.p99_us));
}

function statsStale(text) {
  ui.panel.dataset.state = "unknown";
  ui.statsState.textContent = text;
}

// -- the load test --------------------------------------------------------------------------

function runLoad() {
  if (busy.load || !socket.isOpen) return;
  setBusy("load", true, "Logging in 20 connections…");
  ui.progress.value = 0;
  ui.progressText.textContent = "starting";
  start("load");
}

const TARGET_LABELS = { direct: "straight to PostgreSQL", firewall: "through the firewall" };

function showProgress(item) {
  if (item.queued) {
    ui.progressText.textContent = "waiting for the load test already running";
    ui.loadState.textContent = "Another load test is running on this server; yours starts when it ends.";
    return;
  }
  ui.progress.max = item.total;
  ui.progress.value = item.done;
  const where = TARGET_LABELS[item.target] || "";
  ui.progressText.textContent = `${formatCount(item.done)} / ${formatCount(item.total)} queries · ${formatCount(item.qps)} per second ${where}`;
  ui.loadState.textContent = `Running ${where}…`;
}

function fillCompare(item) {
  const direct = item.direct || {};
  const added = item.added_ms || {};
  const rows = {
    direct: { seconds: formatSeconds(direct.seconds), qps: formatCount(Math.round(direct.qps)),
      p50: formatMs(direct.p50_ms), p95: formatMs(direct.p95_ms), p99: formatMs(direct.p99_ms) },
    firewall: { seconds: formatSeconds(item.seconds), qps: formatCount(Math.round(item.qps)),
      p50: formatMs(item.p50_ms), p95: formatMs(item.p95_ms), p99: formatMs(item.p99_ms) },
    added: { seconds: formatDelta(item.seconds - direct.seconds, formatSeconds),
      p50: formatDelta(added.p50, formatMs), p95: formatDelta(added.p95, formatMs),
      p99: formatDelta(added.p99, formatMs) },
  };
  for (const [name, values] of Object.entries(rows)) {
    const row = ui.compare.querySelector(`[data-fw-compare-row="${name}"]`);
    for (const [key, text] of Object.entries(values)) {
      const cell = row.querySelector(`[data-k="${key}"]`);
      if (cell) cell.textContent = text;
    }
  }
  ui.compare.hidden = false;
}

function showLoad(item) {
  const total = item.queries + (item.direct ? item.direct.queries : 0);
  ui.progress.max = total;
  ui.progress.value = total;
  ui.progressText.textContent = `${formatCount(item.queries)} queries over ${item.connections} connections: ${formatSeconds(item.seconds)} through the firewall, ${formatSeconds(item.direct?.seconds)} direct`;
  drawChart(item);
  fillCompare(item);
  setBusy(
    "load",
    false,
    `Done: p50 ${formatMs(item.p50_ms)} through the firewall, ${formatMs(item.direct?.p50_ms)} direct.`,
  );
  reveal(ui.chart);
}

/** Where a latency falls on the chart's x axis, in bars: buckets are log-spaced, so
 * interpolate on a log scale inside the bucket that holds it. */
function xOfLatency(ms, bounds) {
  for (let i = 0; i < bounds.length; i += 1) {
    if (ms <= bounds[i]) {
      const hi = bounds[i];
      const lo = i > 0 ? bounds[i - 1] : hi / 1.25;
      const within = hi > lo && ms > lo ? Math.log(ms / lo) / Math.log(hi / lo) : 0;
      return i + Math.min(1, Math.max(0, within));
    }
  }
  return bounds.length;
}

/** Where labels go on a line of width ``right``: each wants to start at its x; pushed right
 * past the one before, and the whole row pulled back left if it runs off the end, so that
 * labels keep the order of their lines and never overlap. */
function placeLabels(wanted, widths, left, right, gap = 6) {
  const xs = [];
  wanted.forEach((x, i) => {
    xs.push(Math.max(x, left, i ? xs[i - 1] + widths[i - 1] + gap : left));
  });
  for (let i = xs.length - 1; i >= 0; i -= 1) {
    const limit = i === xs.length - 1 ? right - widths[i] : xs[i + 1] - gap - widths[i];
    xs[i] = Math.max(left, Math.min(xs[i], limit));
  }
  return xs;
}

function drawChart(item) {
  const histogram = Array.isArray(item.histogram) ? item.histogram : [];
  if (!histogram.length) return;
  const directHist = Array.isArray(item.direct?.histogram) ? item.direct.histogram : [];
  // Both histograms span the same buckets (the server aligns them); read by bound.
  const bounds = histogram.map(([bound]) => bound);
  const directByBound = new Map(directHist.map(([bound, count]) => [bound, count]));
  const series = [
    ["direct", "direct to PostgreSQL", bounds.map((b) => directByBound.get(b) ?? 0)],
    ["firewall", "through the firewall", histogram.map(([, count]) => count)],
  ].filter(([name, , counts]) => name === "firewall" || counts.some(Boolean));
  const peak = Math.max(...series.flatMap(([, , counts]) => counts), 1);

  const width = 720;
  const height = 320;
  const margin = { top: 76, right: 16, bottom: 44, left: 52 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const slot = plotW / histogram.length;
  const xAt = (bars) => margin.left + bars * slot;
  const yAt = (count) => margin.top + plotH - (count / peak) * plotH;

  const titleId = "fw-chart-title";
  const descId = "fw-chart-desc";
  const chart = svg("svg", {
    class: "fw-chart__svg",
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-labelledby": `${titleId} ${descId}`,
    preserveAspectRatio: "xMidYMid meet",
  });
  chart.append(svg("title", { id: titleId }, "Latency of the load test's queries, direct and through the firewall"));
  chart.append(
    svg(
      "desc",
      { id: descId },
      `Histograms of ${item.queries} query latencies each, log-spaced buckets from ${formatMs(bounds[0])} ` +
        `to ${formatMs(bounds[bounds.length - 1])}. Through the firewall: p50 ${formatMs(item.p50_ms)}, ` +
        `p95 ${formatMs(item.p95_ms)}, p99 ${formatMs(item.p99_ms)}.` +
        (item.direct ? ` Direct: p50 ${formatMs(item.direct.p50_ms)}, p95 ${formatMs(item.direct.p95_ms)}, p99 ${formatMs(item.direct.p99_ms)}.` : ""),
    ),
  );

  // Legend, top left.
  const legend = svg("g", { class: "fw-chart__legend" });
  series.forEach(([name, label], i) => {
    const x = margin.left + i * 190;
    legend.append(svg("rect", { x, y: 6, width: 12, height: 12, class: `fw-chart__swatch--${name}` }));
    legend.append(svg("text", { x: x + 18, y: 16 }, label));
  });
  chart.append(legend);

  // Horizontal grid lines with query counts.
  const grid = svg("g", { class: "fw-chart__grid" });
  const step = niceStep(peak / 4);
  for (let value = 0; value <= peak; value += step) {
    const y = yAt(value);
    grid.append(svg("line", { x1: margin.left, x2: width - margin.right, y1: y, y2: y }));
    grid.append(
      svg("text", { x: margin.left - 8, y: y + 4, "text-anchor": "end" }, formatCount(value)),
    );
  }
  chart.append(grid);

  // Side by side in each bucket: direct, then through the firewall.
  const barW = Math.max(1, (slot - 2) / series.length);
  series.forEach(([name, label, counts], s) => {
    const bars = svg("g", { class: `fw-chart__bars fw-chart__bars--${name}` });
    counts.forEach((count, i) => {
      if (!count) return;
      const lo = i > 0 ? bounds[i - 1] : bounds[i] / 1.25;
      const y = yAt(count);
      const bar = svg("rect", {
        x: xAt(i) + 1 + s * barW,
        y,
        width: barW,
        height: margin.top + plotH - y,
      });
      bar.append(svg("title", {}, `${label}, ${formatMs(lo)} – ${formatMs(bounds[i])}: ${formatCount(count)} queries`));
      bars.append(bar);
    });
    chart.append(bars);
  });

  // The x axis: bucket bounds, thinned to fit.
  const axis = svg("g", { class: "fw-chart__axis" });
  axis.append(
    svg("line", {
      x1: margin.left,
      x2: width - margin.right,
      y1: margin.top + plotH,
      y2: margin.top + plotH,
    }),
  );
  const every = Math.max(1, Math.ceil(histogram.length / 10));
  bounds.forEach((bound, i) => {
    if ((i + 1) % every !== 0 && i !== bounds.length - 1) return;
    axis.append(
      svg(
        "text",
        { x: xAt(i + 1), y: margin.top + plotH + 16, "text-anchor": "middle" },
        formatChartMs(bound),
      ),
    );
  });
  axis.append(
    svg(
      "text",
      { x: margin.left + plotW / 2, y: height - 6, "text-anchor": "middle", class: "fw-chart__label" },
      "latency per query, ms (bucket upper bounds, log scale)",
    ),
  );
  axis.append(
    svg(
      "text",
      {
        x: 14,
        y: margin.top + plotH / 2,
        "text-anchor": "middle",
        class: "fw-chart__label",
        transform: `rotate(-90 14 ${margin.top + plotH / 2})`,
      },
      "queries",
    ),
  );
  chart.append(axis);

  // The firewall's percentiles: a line each, labels on one row in the lines' order.
  const markers = [
    ["p50", item.p50_ms],
    ["p95", item.p95_ms],
    ["p99", item.p99_ms],
  ].map(([name, ms]) => ({ name, ms, x: xAt(xOfLatency(ms, bounds)) }));
  markers.sort((a, b) => a.x - b.x);
  const labels = markers.map(({ name, ms }) => `${name} ${formatMs(ms)}`);
  const widths = labels.map((text) => text.length * 7.4); // 12px monospace
  const labelXs = placeLabels(markers.map((m) => m.x + 4), widths, margin.left, width - margin.right);
  const labelY = 44;
  const group = svg("g", { class: "fw-chart__markers" });
  markers.forEach(({ name, x }, i) => {
    const marker = svg("g", { class: `fw-chart__marker fw-chart__marker--${name}` });
    marker.dataset.marker = name;
    marker.append(svg("line", { x1: x, x2: x, y1: labelY + 6, y2: margin.top + plotH }));
    marker.append(svg("text", { x: labelXs[i], y: labelY }, labels[i]));
    group.append(marker);
  });
  chart.append(group);

  ui.chartPlot.replaceChildren(chart);
  const direct = item.direct;
  ui.chartCaption.textContent =
    `${formatCount(item.queries)} queries (${item.query || "SELECT … WHERE id = $1"}) over ` +
    `${item.connections} connections, timed from this server after ` +
    `${item.warmup ?? item.connections} untimed warm-up queries` +
    (direct ? `, first straight to PostgreSQL (p50 ${formatMs(direct.p50_ms)}), then ` : ", ") +
    `through the firewall: p50 ${formatMs(item.p50_ms)}, p95 ${formatMs(item.p95_ms)}, ` +
    `p99 ${formatMs(item.p99_ms)}, max ${formatMs(item.max_ms)}; ` +
    `${formatCount(Math.round(item.qps))} queries per second.`;
  ui.chart.hidden = false;
}

function niceStep(raw) {
  if (raw <= 1) return 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = raw / power;
  const nice = unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10;
  return nice * power;
}

// -- the socket -----------------------------------------------------------------------------

function setConnection(state, text) {
  ui.connection.dataset.state = state;
  ui.connectionText.textContent = text;
}

function failAction(action, message, sql) {
  if (action === "query" || action === "reset") {
    showNotice(message, action === "query" ? sql : undefined);
    setBusy("query", false, message);
  } else if (action === "load") {
    ui.progressText.textContent = "not finished";
    setBusy("load", false, message);
  } else if (action === "watch") {
    statsStale(`no live counters: ${message}`);
  }
}

const socket = root
  ? new DemoSocket(root.dataset.ws, {
      onOpen() {
        setConnection("up", "connected");
        refreshButtons();
        start("watch");
      },
      onStarted(job) {
        if (!inflight) return;
        jobs.set(job, inflight);
        inflight = null;
        pump();
      },
      onOutput(items) {
        for (const item of items) {
          if (!item || typeof item !== "object") continue;
          if (item.kind === "stats") showStats(item);
          else if (item.kind === "result") showResult(item);
          else if (item.kind === "reset") {
            const tables = Object.entries(item.tables || {})
              .map(([name, n]) => `${n} ${name}`)
              .join(", ");
            showNotice(`Sample data restored: ${tables} (in ${formatMs(item.ms)}).`);
            setBusy("query", false, "Sample data restored.");
          } else if (item.kind === "progress") showProgress(item);
          else if (item.kind === "load") showLoad(item);
        }
      },
      onDone(msg) {
        const started = jobs.get(msg.job);
        jobs.delete(msg.job);
        if (!started) return;
        const { action } = started.params;
        if (action === "watch") {
          if (RESTART_ON.has(msg.status)) start("watch");
          else statsStale(`stopped: ${msg.message || msg.status}`);
          return;
        }
        if (msg.status === "finished") {
          // A finished job has already shown its output; make sure the buttons come back.
          if ((action === "query" || action === "reset") && busy.query) setBusy("query", false);
          if (action === "load" && busy.load) setBusy("load", false);
          return;
        }
        failAction(action, msg.message || `the ${action} ended: ${msg.status}`, started.params.sql);
      },
      onError(msg) {
        // Errors answer a start (no job id): match it to the start that was waiting.
        if (inflight && msg.code !== "no_such_job") {
          const { action, sql } = inflight.params;
          inflight = null;
          failAction(action, msg.message || msg.code, sql);
          pump();
        }
      },
      onClose(_event, info) {
        // Jobs do not survive a reconnect: whatever was running is gone.
        for (const [, started] of jobs) {
          if (started.params.action !== "watch") {
            failAction(started.params.action, "the connection to the server was lost", started.params.sql);
          }
        }
        if (inflight && inflight.params.action !== "watch") {
          failAction(inflight.params.action, "the connection to the server was lost", inflight.params.sql);
        }
        jobs.clear();
        inflight = null;
        queue.length = 0;
        busy = { query: false, load: false };
        refreshButtons();
        statsStale("not connected");
        setConnection("down", disconnectedText(info));
      },
    })
  : null;

if (root) {
  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    runConsole();
  });
  ui.sql.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      runConsole();
    }
  });
  ui.reset.addEventListener("click", runReset);
  ui.load.addEventListener("click", runLoad);
  root.addEventListener("click", (event) => {
    const chip = event.target.closest("[data-fw-example]");
    if (!chip || !root.contains(chip)) return;
    ui.sql.value = chip.dataset.fwExample;
    // Not focused: on a phone that would scroll up to the console and open the keyboard;
    // the result is brought into view instead when it arrives.
    runConsole();
  });
  socket.connect();
}
