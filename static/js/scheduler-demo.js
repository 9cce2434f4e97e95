// The work-stealing scheduler demo (templates/demos/scheduler.html): the visitor picks a
// workload, the server runs it on engines.scheduler and streams its figures about ten times
// a second over /ws/demos/scheduler/ (demos.consumers.SchedulerConsumer). One job per run:
//   start   -> {"kind": "start", "workers", "count", "job_kind", "pattern", "cores",
//               "max_seconds", "bucket_lower_ns": [...]}
//   sample  -> {"kind": "sample", "t", "completed", "count", "jobs_per_s", "searching", "parked",
//               "workers": [{"deque", "mailbox", "executed", "stolen", "steal_attempts", "parks",
//                            "total_executed"}],  (counters: the last interval; depths: now)
//               "steals": [[from, to, count]],   (the last interval)
//               "latency": {"buckets": [[index, hot, parked]], "hot": {p50_ns...}, "parked": {...}}}
//              (the run's own submit-to-start: under a burst, mostly queueing delay)
//   phase   -> {"kind": "phase", "phase": "idle"}, then
//   idle    -> {"kind": "idle", "hot": {count, p50_ns, p99_ns...}, "parked": {...}, "hot_probes",
//               "hot_interval_us", "parked_probes", "parked_interval_us"}  (submit-to-start
//               of single jobs sent to the same workers, idle, after the run: the card's figure)
//   phase   -> {"kind": "phase", "phase": "compare"}
//   summary -> the run's totals, "steals" over the whole run, "idle_latency" (as "idle"), and
//               "compare": {"jobs", "scheduler_jobs_per_s", "threadpool_jobs_per_s", "ratio",
//               "workers"}
// After Run the page scrolls the live picture into view (instantly with reduced motion).
// Everything is drawn as SVG built with DOM calls (no inline script or handler: strict CSP).

// About 800 lines, one page's module: most of it is drawing (workers and steals, throughput,
// the latency histogram, the result) from the messages above; the socket is demo-socket.js's.

import { DemoSocket, disconnectedText } from "./demo-socket.js";
import { el, formatCount, scrollBehavior, svg } from "./dom.js";

const root = document.querySelector("[data-sd]");
const MAX_POINTS = 200; // throughput samples kept (20 s at 10 a second)

// -- helpers --------------------------------------------------------------------------------

function formatRate(perSecond, unit = "/s") {
  if (typeof perSecond !== "number" || !Number.isFinite(perSecond)) return "—";
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)} M${unit}`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(perSecond >= 1e5 ? 0 : 1)} k${unit}`;
  return `${Math.round(perSecond)}${unit}`;
}

function formatNs(ns) {
  if (typeof ns !== "number" || !Number.isFinite(ns)) return "—";
  if (ns >= 1e9) return `${(ns / 1e9).toFixed(ns >= 1e10 ? 0 : 1)} s`;
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(ns >= 1e7 ? 0 : 1)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(ns >= 1e4 ? 0 : 1)} µs`;
  return `${Math.round(ns)} ns`;
}

function logScale(value, peak) {
  if (!(value > 0) || !(peak > 0)) return 0;
  return Math.min(1, Math.log10(1 + value) / Math.log10(1 + peak));
}

// -- the page's parts -----------------------------------------------------------------------

const ui = root && {
  connection: root.querySelector("[data-sd-connection]"),
  connectionText: root.querySelector("[data-sd-connection-text]"),
  form: root.querySelector("[data-sd-form]"),
  workers: root.querySelector("[data-sd-workers-input]"),
  kind: root.querySelector("[data-sd-kind]"),
  kindHelp: root.querySelector("[data-sd-kind-help]"),
  pattern: root.querySelector("[data-sd-pattern]"),
  patternHelp: root.querySelector("[data-sd-pattern-help]"),
  count: root.querySelector("[data-sd-count]"),
  countHelp: root.querySelector("[data-sd-count-help]"),
  actions: root.querySelector(".sd-actions"),
  run: root.querySelector("[data-sd-run]"),
  stop: root.querySelector("[data-sd-stop]"),
  state: root.querySelector("[data-sd-state]"),
  progress: root.querySelector("[data-sd-progress]"),
  progressText: root.querySelector("[data-sd-progress-text]"),
  live: root.querySelector("[data-sd-live]"),
  workersPlot: root.querySelector("[data-sd-workers]"),
  workersFigure: root.querySelector(".sd-figure--workers"),
  now: root.querySelector("[data-sd-now]"),
  throughputPlot: root.querySelector("[data-sd-throughput]"),
  throughputCaption: root.querySelector("[data-sd-throughput-caption]"),
  table: root.querySelector("[data-sd-table-body]"),
  latencyPlot: root.querySelector("[data-sd-latency]"),
  latencyTitle: root.querySelector("[data-sd-latency-title]"),
  latencyWhat: root.querySelector("[data-sd-latency-what]"),
  idle: root.querySelector("[data-sd-idle]"),
  idleValue: root.querySelector("[data-sd-idle-value]"),
  idleDetail: root.querySelector("[data-sd-idle-detail]"),
  preset: root.querySelector("[data-sd-preset]"),
  result: root.querySelector("[data-sd-result]"),
  resultLine: root.querySelector("[data-sd-result-line]"),
  resultCounters: root.querySelector("[data-sd-result-counters]"),
  compare: root.querySelector("[data-sd-compare]"),
  ratio: root.querySelector("[data-sd-ratio]"),
};

// -- the form -------------------------------------------------------------------------------

function maxCount() {
  const option = ui.kind.selectedOptions[0];
  const key = `max-${ui.pattern.value}-${ui.workers.value}`;
  return Number(option?.getAttribute(`data-${key}`)) || 1;
}

function refreshHelp({ resetCount = false } = {}) {
  const kind = ui.kind.selectedOptions[0];
  const pattern = ui.pattern.selectedOptions[0];
  ui.kindHelp.textContent = kind ? kind.dataset.description : "";
  ui.patternHelp.textContent = pattern ? pattern.dataset.description : "";
  const limit = maxCount();
  ui.count.max = String(limit);
  if (resetCount && kind) ui.count.value = String(Math.min(Number(kind.dataset.defaultCount), limit));
  else if (Number(ui.count.value) > limit) ui.count.value = String(limit);
  ui.countHelp.textContent = `1 to ${formatCount(limit)} for this kind, pattern and worker count (about 8 s of work at most).`;
}

function readForm() {
  const count = Number(ui.count.value);
  const limit = maxCount();
  if (!Number.isInteger(count) || count < 1 || count > limit) {
    return { error: `Jobs must be a whole number from 1 to ${formatCount(limit)}.` };
  }
  return {
    params: {
      workers: Number(ui.workers.value),
      count,
      kind: ui.kind.value,
      pattern: ui.pattern.value,
    },
  };
}

/** The preset behind the card's throughput figure: fill the form, then hand over to Run. */
function applyPreset(button) {
  ui.workers.value = button.dataset.workers;
  ui.kind.value = button.dataset.kind;
  ui.pattern.value = button.dataset.pattern;
  refreshHelp();
  ui.count.value = String(Math.min(Number(button.dataset.count), maxCount()));
  setState("Set up: press Run to measure the throughput of empty native jobs.");
  ui.run.focus({ preventScroll: true });
  ui.actions.scrollIntoView({ block: "center", behavior: scrollBehavior() });
}

function kindLabel(name) {
  const option = [...ui.kind.options].find((o) => o.value === name);
  return option ? option.textContent.trim() : `${name} jobs`;
}

// -- bringing results into view -------------------------------------------------------------

/**
 * After Run, scroll so the live picture is on screen, with as much around it as fits. In
 * order of preference: the Run/Stop row down to the end of the live section; the whole live
 * section; the Run/Stop row and the workers' picture (a phone: controls and picture
 * together); the live section's top.
 */
function revealLive() {
  const margin = 12;
  const room = window.innerHeight - 2 * margin;
  const live = ui.live.getBoundingClientRect();
  if (live.top >= 0 && live.bottom <= window.innerHeight) return;
  const actions = ui.actions.getBoundingClientRect();
  const picture = ui.workersFigure.getBoundingClientRect();
  let top = live.top;
  if (live.bottom - actions.top <= room) top = actions.top;
  else if (live.height <= room) top = live.top;
  else if (picture.bottom - actions.top <= room) top = actions.top;
  window.scrollTo({ top: window.scrollY + top - margin, behavior: scrollBehavior() });
}

/** At the end of a run, bring the result card up if it is wholly below the screen, unless
 * the visitor has scrolled on their own meanwhile. */
function revealResult() {
  if (!run || run.visitorScrolled) return;
  if (ui.result.getBoundingClientRect().top < window.innerHeight) return;
  ui.result.scrollIntoView({ block: "nearest", behavior: scrollBehavior() });
}

function noteVisitorScroll(event) {
  if (!run || (event.type === "keydown" && !SCROLL_KEYS.has(event.key))) return;
  run.visitorScrolled = true;
}
const SCROLL_KEYS = new Set(["ArrowUp", "ArrowDown", "PageUp", "PageDown", "Home", "End", " "]);

// -- run state ------------------------------------------------------------------------------

let job = null; // the running job's id
let pending = false; // a start sent, no answer yet
let run = null; // what the server said at "start", plus running totals

function setState(text) {
  ui.state.textContent = text;
}

function refreshButtons() {
  const open = socket.isOpen;
  const busy = pending || job !== null;
  ui.run.disabled = !open || busy;
  ui.stop.disabled = !open || job === null;
  for (const input of [ui.workers, ui.kind, ui.pattern, ui.count, ui.preset]) if (input) input.disabled = busy;
  ui.form.setAttribute("aria-busy", String(busy));
}

function startRun() {
  if (!socket.isOpen || pending || job !== null) return;
  const { params, error } = readForm();
  if (error) {
    setState(error);
    ui.count.focus();
    return;
  }
  pending = true;
  setState("Starting…");
  refreshButtons();
  if (!socket.start(params)) {
    pending = false;
    setState("Not connected to the server.");
    refreshButtons();
  }
}

function stopRun() {
  if (job !== null) {
    socket.stop(job);
    setState("Stopping…");
  }
}

// -- drawing: the workers -------------------------------------------------------------------

const BOX = { w: 124, h: 78 };
const VIEW = { w: 520, h: 340 };

/** Height of the workers' picture: one row of boxes for one or two workers. */
function viewHeight(n) {
  return n <= 2 ? 170 : VIEW.h;
}

function workerPositions(n) {
  const cx = VIEW.w / 2;
  const cy = viewHeight(n) / 2;
  if (n === 1) return [[cx, cy]];
  const rx = n === 2 ? 150 : 160;
  const ry = n === 2 ? 0 : 100;
  const start = n === 2 ? Math.PI : n === 4 ? (-3 * Math.PI) / 4 : -Math.PI / 2;
  return Array.from({ length: n }, (_, i) => {
    const angle = start + (2 * Math.PI * i) / n;
    return [cx + rx * Math.cos(angle) * (n === 4 ? Math.SQRT2 : 1), cy + ry * Math.sin(angle) * (n === 4 ? Math.SQRT2 : 1)];
  });
}

/** The point where a line from a box's centre towards (dx, dy) leaves the box, plus a gap. */
function edgeOffset(dx, dy, gap) {
  const len = Math.hypot(dx, dy) || 1;
  const ux = dx / len;
  const uy = dy / len;
  const t = Math.min(ux ? BOX.w / 2 / Math.abs(ux) : Infinity, uy ? BOX.h / 2 / Math.abs(uy) : Infinity);
  return [ux * (t + gap), uy * (t + gap)];
}

function arrowPath(from, to) {
  const [x1, y1] = from;
  const [x2, y2] = to;
  const dx = x2 - x1;
  const dy = y2 - y1;
  const len = Math.hypot(dx, dy) || 1;
  // Bend to the right of the direction of travel: A->B and B->A curve apart.
  const bend = 34;
  const mx = (x1 + x2) / 2 + (-dy / len) * bend;
  const my = (y1 + y2) / 2 + (dx / len) * bend;
  const [sx, sy] = edgeOffset(mx - x1, my - y1, 4);
  const [ex, ey] = edgeOffset(mx - x2, my - y2, 8);
  return `M ${(x1 + sx).toFixed(1)} ${(y1 + sy).toFixed(1)} Q ${mx.toFixed(1)} ${my.toFixed(1)} ${(x2 + ex).toFixed(1)} ${(y2 + ey).toFixed(1)}`;
}

function buildWorkers(n) {
  const positions = workerPositions(n);
  const titleId = "sd-workers-title";
  const descId = "sd-workers-desc";
  const chart = svg("svg", {
    class: "sd-workers",
    viewBox: `0 0 ${VIEW.w} ${viewHeight(n)}`,
    role: "img",
    "aria-labelledby": `${titleId} ${descId}`,
  });
  chart.append(svg("title", { id: titleId }, `${n} worker${n === 1 ? "" : "s"} and the steals between them`));
  const desc = svg("desc", { id: descId }, "Waiting for the first sample.");
  chart.append(desc);
  const defs = svg("defs");
  const marker = svg("marker", {
    id: "sd-arrowhead",
    viewBox: "0 0 10 10",
    refX: 6,
    refY: 5,
    markerWidth: 4,
    markerHeight: 4,
    orient: "auto-start-reverse",
    markerUnits: "strokeWidth",
  });
  marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "sd-arrowhead" }));
  defs.append(marker);
  chart.append(defs);

  const arrows = svg("g", { class: "sd-arrows" });
  const arrowMap = new Map();
  for (let victim = 0; victim < n; victim += 1) {
    for (let thief = 0; thief < n; thief += 1) {
      if (victim === thief) continue;
      const path = svg("path", {
        class: "sd-arrow",
        d: arrowPath(positions[victim], positions[thief]),
        "marker-end": "url(#sd-arrowhead)",
        "stroke-width": 1,
        opacity: 0,
        "data-from": victim,
        "data-to": thief,
        "data-steals": 0,
        "data-total": 0,
      });
      path.append(svg("title", {}, `worker ${victim} → worker ${thief}: no steals yet`));
      arrows.append(path);
      arrowMap.set(`${victim}-${thief}`, path);
    }
  }
  chart.append(arrows);

  const boxes = positions.map(([cx, cy], i) => {
    const x = cx - BOX.w / 2;
    const y = cy - BOX.h / 2;
    const group = svg("g", { class: "sd-worker", "data-worker": i });
    group.append(svg("rect", { class: "sd-worker__box", x, y, width: BOX.w, height: BOX.h, rx: 8 }));
    group.append(svg("text", { class: "sd-worker__name", x: x + 10, y: y + 18 }, `worker ${i}`));
    const zz = svg("text", { class: "sd-worker__zz", x: x + BOX.w - 10, y: y + 18, "text-anchor": "end" }, "parked");
    group.append(zz);
    const barX = x + 10;
    const barW = BOX.w - 20;
    group.append(svg("rect", { class: "sd-bar__track", x: barX, y: y + 28, width: barW, height: 10, rx: 2 }));
    const deque = svg("rect", { class: "sd-bar sd-bar--deque", x: barX, y: y + 28, width: 0, height: 10, rx: 2 });
    group.append(deque);
    group.append(svg("rect", { class: "sd-bar__track", x: barX, y: y + 42, width: barW, height: 6, rx: 2 }));
    const mailbox = svg("rect", { class: "sd-bar sd-bar--mailbox", x: barX, y: y + 42, width: 0, height: 6, rx: 2 });
    group.append(mailbox);
    const executed = svg("text", { class: "sd-worker__count", x: x + 10, y: y + 68 }, "0 run");
    group.append(executed);
    const title = svg("title", {}, `worker ${i}`);
    group.append(title);
    return { group, deque, mailbox, executed, zz, title, barW };
  });
  for (const box of boxes) chart.append(box.group);
  ui.workersPlot.replaceChildren(chart);
  return { chart, desc, arrows: arrowMap, boxes };
}

function styleArrow(path, count, peak) {
  const f = logScale(count, peak);
  path.setAttribute("stroke-width", (1.5 + 8 * f).toFixed(2));
  path.setAttribute("opacity", count > 0 ? (0.35 + 0.65 * f).toFixed(2) : "0");
}

function drawSample(item) {
  const n = run.workers;
  // Steals: the last interval's, drawn; the run's, remembered.
  const recent = new Map();
  for (const [from, to, count] of item.steals || []) {
    recent.set(`${from}-${to}`, count);
    run.stealTotals.set(`${from}-${to}`, (run.stealTotals.get(`${from}-${to}`) || 0) + count);
  }
  const peakRecent = Math.max(1, ...recent.values());
  for (const [key, path] of run.view.arrows) {
    const count = recent.get(key) || 0;
    const total = run.stealTotals.get(key) || 0;
    path.dataset.steals = String(count);
    path.dataset.total = String(total);
    styleArrow(path, count, Math.max(peakRecent, 16));
    path.querySelector("title").textContent =
      `worker ${path.dataset.from} → worker ${path.dataset.to}: ${formatCount(count)} stolen in the last interval, ${formatCount(total)} in all`;
  }

  const workers = Array.isArray(item.workers) ? item.workers.slice(0, n) : [];
  workers.forEach((w, i) => {
    const box = run.view.boxes[i];
    const totals = run.workerTotals[i];
    totals.executed = w.total_executed;
    totals.stolen += w.stolen;
    totals.parks += w.parks;
    run.peakDepth = Math.max(run.peakDepth, w.deque, w.mailbox, 16);
    box.deque.setAttribute("width", (box.barW * logScale(w.deque, run.peakDepth)).toFixed(1));
    box.mailbox.setAttribute("width", (box.barW * logScale(w.mailbox, run.peakDepth)).toFixed(1));
    box.executed.textContent = `${formatCount(w.total_executed)} run`;
    box.group.classList.toggle("sd-worker--parked", w.parks > 0 && w.executed === 0);
    box.group.classList.toggle("sd-worker--busy", w.executed > 0);
    box.title.textContent =
      `worker ${i}: deque ${formatCount(w.deque)}, mailbox ${formatCount(w.mailbox)}, ` +
      `${formatCount(w.executed)} run and ${formatCount(w.stolen)} stolen in the last interval`;
    const row = ui.table.rows[i];
    if (row) {
      const cells = row.cells;
      cells[1].textContent = formatCount(totals.executed);
      cells[2].textContent = formatCount(totals.stolen);
      cells[3].textContent = formatCount(totals.parks);
      cells[4].textContent = formatCount(w.deque);
      cells[5].textContent = formatCount(w.mailbox);
    }
  });
  const stealsNow = [...recent.values()].reduce((a, b) => a + b, 0);
  run.view.desc.textContent =
    `${formatCount(item.completed)} of ${formatCount(item.count)} jobs done; ` +
    `${formatCount(stealsNow)} jobs stolen in the last interval; ` +
    `${item.parked} worker${item.parked === 1 ? "" : "s"} parked.`;

  ui.now.textContent =
    `Now: ${item.searching} searching for work, ${item.parked} parked; ` +
    `${formatCount(stealsNow)} stolen in the last ${item.t < 0.15 ? "moment" : "tenth of a second"}.`;

  run.throughput.push([item.t, item.jobs_per_s]);
  if (run.throughput.length > MAX_POINTS) run.throughput.shift();
  drawThroughput();
  drawLatency(item.latency);
  ui.progress.max = item.count;
  ui.progress.value = item.completed;
  ui.progressText.textContent = `${formatCount(item.completed)} / ${formatCount(item.count)} jobs · ${item.t.toFixed(1)} s`;
}

function buildTable(n) {
  const rows = [];
  for (let i = 0; i < n; i += 1) {
    const row = el("tr");
    const th = el("th", null, `worker ${i}`);
    th.scope = "row";
    row.append(th);
    for (let c = 0; c < 5; c += 1) row.append(el("td", "sd-num", "0"));
    rows.push(row);
  }
  ui.table.replaceChildren(...rows);
}

// -- drawing: throughput --------------------------------------------------------------------

function drawThroughput() {
  const points = run.throughput;
  const width = 360;
  const height = 120;
  const margin = { top: 14, right: 8, bottom: 18, left: 8 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const peak = Math.max(1, ...points.map(([, v]) => v));
  const t0 = points.length ? points[0][0] : 0;
  const t1 = points.length ? Math.max(points[points.length - 1][0], t0 + 1) : 1;
  const xAt = (t) => margin.left + ((t - t0) / (t1 - t0)) * plotW;
  const yAt = (v) => margin.top + plotH - (v / peak) * plotH;
  const chart = svg("svg", {
    class: "sd-spark",
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": `Throughput: now ${formatRate(points.length ? points[points.length - 1][1] : 0)} jobs, peak ${formatRate(peak)}`,
  });
  chart.append(svg("line", { class: "sd-spark__base", x1: margin.left, x2: width - margin.right, y1: margin.top + plotH, y2: margin.top + plotH }));
  if (points.length) {
    const line = points.map(([t, v]) => `${xAt(t).toFixed(1)},${yAt(v).toFixed(1)}`).join(" ");
    const area = `${xAt(points[0][0]).toFixed(1)},${margin.top + plotH} ${line} ${xAt(points[points.length - 1][0]).toFixed(1)},${margin.top + plotH}`;
    chart.append(svg("polygon", { class: "sd-spark__area", points: area }));
    chart.append(svg("polyline", { class: "sd-spark__line", points: line }));
  }
  chart.append(svg("text", { class: "sd-spark__label", x: margin.left, y: 10 }, `peak ${formatRate(peak)}`));
  chart.append(svg("text", { class: "sd-spark__label", x: width - margin.right, y: height - 4, "text-anchor": "end" }, `${t1.toFixed(1)} s`));
  ui.throughputPlot.replaceChildren(chart);
  const now = points.length ? points[points.length - 1][1] : 0;
  ui.throughputCaption.textContent = `Jobs run per second, every tenth of a second (fork-join subjobs count too): now ${formatRate(now)}, peak ${formatRate(peak)}.`;
}

// -- drawing: the latency histogram ----------------------------------------------------------

function drawLatency(latency) {
  if (!latency || !run) return;
  const lower = run.bucketLower;
  const buckets = Array.isArray(latency.buckets) ? latency.buckets : [];
  const width = 720;
  const height = 260;
  const margin = { top: 24, right: 16, bottom: 38, left: 16 };
  const plotW = width - margin.left - margin.right;
  const half = (height - margin.top - margin.bottom) / 2;
  const mid = margin.top + half;
  let lo = buckets.length ? buckets[0][0] : 0;
  let hi = buckets.length ? buckets[buckets.length - 1][0] : 16;
  while (hi - lo < 16) {
    if (lo > 0) lo -= 1;
    if (hi - lo < 16) hi += 1;
  }
  const slots = hi - lo + 1;
  const slot = plotW / slots;
  const peakHot = Math.max(1, ...buckets.map(([, h]) => h));
  const peakParked = Math.max(1, ...buckets.map(([, , p]) => p));

  const titleId = "sd-latency-title";
  const descId = "sd-latency-desc";
  const chart = svg("svg", {
    class: "sd-hist",
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-labelledby": `${titleId} ${descId}`,
  });
  chart.append(svg("title", { id: titleId }, `${ui.latencyTitle.textContent}, hot and parked starts`));
  const hot = latency.hot || {};
  const parked = latency.parked || {};
  chart.append(
    svg(
      "desc",
      { id: descId },
      `Hot starts: ${formatCount(hot.count)}, p50 ${formatNs(hot.p50_ns)}, p99 ${formatNs(hot.p99_ns)}. ` +
        `Parked starts: ${formatCount(parked.count)}, p50 ${formatNs(parked.p50_ns)}, p99 ${formatNs(parked.p99_ns)}.`,
    ),
  );
  const bars = svg("g", { class: "sd-hist__bars" });
  for (const [index, h, p] of buckets) {
    const x = margin.left + (index - lo) * slot + 1;
    const w = Math.max(1, slot - 2);
    const range = `${formatNs(lower[index])} – ${formatNs(lower[index + 1] ?? lower[index] * 1.25)}`;
    if (h > 0) {
      const barH = Math.max(1, (h / peakHot) * half);
      const bar = svg("rect", { class: "sd-hist__bar sd-hist__bar--hot", x, y: mid - barH, width: w, height: barH });
      bar.append(svg("title", {}, `${range}: ${formatCount(h)} hot starts`));
      bars.append(bar);
    }
    if (p > 0) {
      const barH = Math.max(1, (p / peakParked) * half);
      const bar = svg("rect", { class: "sd-hist__bar sd-hist__bar--parked", x, y: mid, width: w, height: barH });
      bar.append(svg("title", {}, `${range}: ${formatCount(p)} parked starts`));
      bars.append(bar);
    }
  }
  chart.append(bars);
  const axis = svg("g", { class: "sd-hist__axis" });
  axis.append(svg("line", { x1: margin.left, x2: width - margin.right, y1: mid, y2: mid }));
  // Decade labels (10 ns, 100 ns, 1 µs, ...), placed inside the bucket that holds them.
  for (let decade = 10; decade < 1e12; decade *= 10) {
    const i = lower.findIndex((bound, k) => bound <= decade && (lower[k + 1] ?? Infinity) > decade);
    if (i < lo || i > hi) continue;
    const next = lower[i + 1] ?? lower[i] * 1.25;
    const x = margin.left + (i - lo + (decade - lower[i]) / (next - lower[i])) * slot;
    axis.append(svg("line", { class: "sd-hist__tick", x1: x, x2: x, y1: height - margin.bottom, y2: height - margin.bottom + 4 }));
    axis.append(svg("text", { x, y: height - margin.bottom + 16, "text-anchor": "middle" }, formatNs(decade)));
  }
  axis.append(svg("text", { x: margin.left, y: 14, class: "sd-hist__legend sd-hist__legend--hot" }, `hot: ${formatCount(hot.count)} starts, p50 ${formatNs(hot.p50_ns)}, p99 ${formatNs(hot.p99_ns)}`));
  axis.append(svg("text", { x: margin.left, y: height - 4, class: "sd-hist__legend sd-hist__legend--parked" }, `parked: ${formatCount(parked.count)} starts, p50 ${formatNs(parked.p50_ns)}, p99 ${formatNs(parked.p99_ns)}`));
  axis.append(svg("text", { x: width - margin.right, y: height - 4, "text-anchor": "end", class: "sd-hist__unit" }, "submit to start (log scale)"));
  chart.append(axis);
  ui.latencyPlot.replaceChildren(chart);
}

// -- the idle-pool figure -------------------------------------------------------------------

/** "P50 384 ns (hot) / 12 µs (parked)": the card's quantity, hot first as the card has it. */
function idleLine(idle) {
  return `P50 ${formatNs(idle.hot.p50_ns)} (hot) / ${formatNs(idle.parked.p50_ns)} (parked)`;
}

function showIdle(idle) {
  if (!idle || !idle.hot || !idle.parked) return;
  ui.idle.dataset.state = "done";
  ui.idleValue.textContent = idleLine(idle);
  ui.idleDetail.textContent =
    `p99 ${formatNs(idle.hot.p99_ns)} / ${formatNs(idle.parked.p99_ns)}; ` +
    `${formatCount(idle.hot.count)} hot starts of ${formatCount(idle.hot_probes)} jobs ${idle.hot_interval_us} µs apart, ` +
    `${formatCount(idle.parked.count)} parked of ${formatCount(idle.parked_probes)} ${idle.parked_interval_us / 1000} ms apart.`;
}

function resetIdle() {
  ui.idle.dataset.state = "waiting";
  ui.idleValue.textContent = "Measured once this run is over.";
  ui.idleDetail.textContent = "";
}

// -- the result -----------------------------------------------------------------------------

function showSummary(item) {
  // Arrows now stand for the whole run's steals.
  const totals = new Map(item.steals.map(([from, to, count]) => [`${from}-${to}`, count]));
  const peak = Math.max(1, ...totals.values());
  for (const [key, path] of run.view.arrows) {
    const total = totals.get(key) || 0;
    path.dataset.total = String(total);
    path.dataset.steals = "0";
    styleArrow(path, total, peak);
    path.querySelector("title").textContent =
      `worker ${path.dataset.from} → worker ${path.dataset.to}: ${formatCount(total)} stolen over the run`;
  }
  run.view.chart.classList.add("sd-workers--summary");
  ui.now.textContent = `Over the whole run: ${formatCount(item.totals.stolen)} jobs stolen, ${formatCount(item.totals.parks)} parks. Arrows show all the run's steals.`;
  run.view.desc.textContent =
    `Run finished: ${formatCount(item.totals.stolen)} jobs stolen in all; arrows show the whole run's steals.`;
  item.per_worker.forEach((w, i) => {
    const row = ui.table.rows[i];
    if (!row) return;
    row.cells[1].textContent = formatCount(w.executed);
    row.cells[2].textContent = formatCount(w.stolen);
    row.cells[3].textContent = formatCount(w.parks);
  });
  drawLatency(item.latency);

  const ran = formatCount(item.ran);
  const throughput = formatRate(item.jobs_per_s, " jobs/s");
  const verified =
    item.missing === null || item.missing === undefined
      ? ""
      : item.missing === 0 && item.duplicates === 0
        ? " Every job ran exactly once (checked)."
        : ` ${item.missing} jobs missing, ${item.duplicates} run twice!`;
  ui.resultLine.textContent =
    `${ran} ${kindLabel(item.job_kind)} (${item.pattern}) on ${item.workers} worker${item.workers === 1 ? "" : "s"} ` +
    `in ${item.elapsed_s.toFixed(3)} s: throughput ${throughput}` +
    (item.capped ? `, cancelled at the time cap with ${formatCount(item.cancelled)} not run.` : ".") +
    verified;
  const delay = ui.latencyTitle.textContent;
  const counters = [
    [`Throughput, ${kindLabel(item.job_kind)}`, throughput],
    ["Jobs run (with subjobs)", formatCount(item.totals.executed)],
    ["Stolen", formatCount(item.totals.stolen)],
    ["Steal attempts", formatCount(item.totals.steal_attempts)],
    ["Mailbox pushes", formatCount(item.totals.mailbox_pushes)],
    ["Parks", formatCount(item.totals.parks)],
    [`${delay}, hot p50 / p99`, `${formatNs(item.latency.hot.p50_ns)} / ${formatNs(item.latency.hot.p99_ns)}`],
    [`${delay}, parked p50 / p99`, `${formatNs(item.latency.parked.p50_ns)} / ${formatNs(item.latency.parked.p99_ns)}`],
  ];
  if (item.idle_latency) counters.splice(1, 0, ["Submit-to-start, idle pool", idleLine(item.idle_latency)]);
  ui.resultCounters.replaceChildren(
    ...counters.map(([name, value]) => {
      const box = el("div", "sd-counter");
      box.append(el("dt", null, name), el("dd", null, value));
      return box;
    }),
  );
  drawCompare(item.compare);
  showIdle(item.idle_latency);
  ui.result.hidden = false;
  revealResult();
}

function drawCompare(compare) {
  const rows = [
    ["Scheduler.map", compare.scheduler_jobs_per_s, "sd-compare__bar--ours"],
    ["ThreadPoolExecutor.map", compare.threadpool_jobs_per_s, "sd-compare__bar--theirs"],
  ];
  const width = 720;
  const rowH = 34;
  const labelW = 190;
  const height = rows.length * rowH + 8;
  const peak = Math.max(...rows.map(([, rate]) => rate), 1);
  const chart = svg("svg", {
    class: "sd-compare",
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label":
      `${formatCount(compare.jobs)} Python jobs on ${compare.workers} threads: Scheduler.map ${formatRate(compare.scheduler_jobs_per_s)}, ` +
      `ThreadPoolExecutor.map ${formatRate(compare.threadpool_jobs_per_s)}`,
  });
  rows.forEach(([name, rate, cls], i) => {
    const y = 4 + i * rowH;
    const w = Math.max(2, ((width - labelW - 110) * rate) / peak);
    chart.append(svg("text", { class: "sd-compare__name", x: 0, y: y + 20 }, name));
    chart.append(svg("rect", { class: `sd-compare__bar ${cls}`, x: labelW, y: y + 4, width: w, height: rowH - 12, rx: 3 }));
    chart.append(svg("text", { class: "sd-compare__value", x: labelW + w + 8, y: y + 20 }, formatRate(rate)));
  });
  ui.compare.replaceChildren(chart);
  const ratio = compare.ratio;
  ui.ratio.textContent =
    `${formatCount(compare.jobs)} Python jobs, ${compare.workers} thread${compare.workers === 1 ? "" : "s"} each: ` +
    (ratio >= 1 ? `the scheduler was ${ratio.toFixed(1)}× as fast.` : `the scheduler reached ${ratio.toFixed(2)}× ThreadPoolExecutor's rate.`);
}

// -- the socket -----------------------------------------------------------------------------

function beginRun(item) {
  run = {
    workers: item.workers,
    count: item.count,
    bucketLower: item.bucket_lower_ns,
    throughput: [],
    stealTotals: new Map(),
    workerTotals: Array.from({ length: item.workers }, () => ({ executed: 0, stolen: 0, parks: 0 })),
    peakDepth: 16,
    view: buildWorkers(item.workers),
    visitorScrolled: false,
  };
  buildTable(item.workers);
  describeLatency(item);
  resetIdle();
  ui.live.dataset.state = "running";
  ui.result.hidden = true;
  ui.progress.max = item.count;
  ui.progress.value = 0;
  ui.progressText.textContent = `0 / ${formatCount(item.count)} jobs`;
  setState(`Running ${formatCount(item.count)} ${item.job_kind} jobs on ${item.workers} worker${item.workers === 1 ? "" : "s"}…`);
  revealLive();
}

/** What the run's own histogram measures: queueing delay under a burst, or, paced, jobs
 * arriving one by one at workers that have parked in between. */
function describeLatency(item) {
  if (item.pattern === "paced") {
    ui.latencyTitle.textContent = "Submit-to-start, paced run";
    ui.latencyWhat.textContent =
      "How long each job of the run waited to start. They arrived one at a time, further apart than the workers spin, so most found every worker parked: close to the idle-pool figure's parked half.";
  } else {
    ui.latencyTitle.textContent = "Queueing delay under this burst";
    ui.latencyWhat.textContent =
      `How long each of the ${formatCount(item.count)} jobs, submitted all at once, waited for a worker. They wait behind each other, so this grows with the burst: it is not the idle-pool figure.`;
  }
}

function setConnection(state, text) {
  ui.connection.dataset.state = state;
  ui.connectionText.textContent = text;
}

function endRun(text) {
  job = null;
  pending = false;
  if (["running", "measuring", "comparing"].includes(ui.live.dataset.state)) ui.live.dataset.state = "done";
  if (run && ui.idle.dataset.state !== "done") {
    ui.idle.dataset.state = "waiting";
    ui.idleValue.textContent = "Not measured: the run did not finish.";
  }
  if (text) setState(text);
  refreshButtons();
}

const socket = root
  ? new DemoSocket(root.dataset.ws, {
      onOpen() {
        setConnection("up", "connected");
        refreshButtons();
      },
      onStarted(id) {
        job = id;
        pending = false;
        refreshButtons();
      },
      onOutput(items) {
        for (const item of items) {
          if (!item || typeof item !== "object") continue;
          if (item.kind === "start") beginRun(item);
          else if (item.kind === "sample" && run) drawSample(item);
          else if (item.kind === "phase" && run && item.phase === "idle") {
            ui.live.dataset.state = "measuring";
            ui.idle.dataset.state = "measuring";
            ui.idleValue.textContent = "Measuring: single jobs to the idle workers…";
            setState("Run done; now submit-to-start with the pool idle…");
          } else if (item.kind === "idle" && run) showIdle(item);
          else if (item.kind === "phase" && run) {
            ui.live.dataset.state = "comparing";
            setState("Now the same Python jobs through Scheduler.map and ThreadPoolExecutor…");
          } else if (item.kind === "summary" && run) {
            showSummary(item);
            ui.live.dataset.state = "done";
            const idle = item.idle_latency ? `; idle-pool submit-to-start P50 ${formatNs(item.idle_latency.hot.p50_ns)} (hot)` : "";
            setState(`Done: ${formatRate(item.jobs_per_s, " jobs/s")}${idle}; Python jobs ${item.compare.ratio.toFixed(1)}× ThreadPoolExecutor's rate.`);
          }
        }
      },
      onDone(msg) {
        if (msg.job !== job) return;
        if (msg.status === "finished") endRun(msg.message ? `${ui.state.textContent} (${msg.message})` : "");
        else endRun(msg.status === "stopped" ? "Stopped." : `Ended: ${msg.message || msg.status}`);
      },
      onError(msg) {
        if (pending) {
          pending = false;
          setState(msg.message || msg.code);
          refreshButtons();
        }
      },
      onClose(_event, info) {
        if (job !== null || pending) endRun("The connection to the server was lost; the run is gone.");
        refreshButtons();
        setConnection("down", disconnectedText(info));
      },
    })
  : null;

if (root) {
  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    startRun();
  });
  ui.stop.addEventListener("click", stopRun);
  ui.kind.addEventListener("change", () => refreshHelp({ resetCount: true }));
  ui.pattern.addEventListener("change", () => refreshHelp());
  ui.workers.addEventListener("change", () => refreshHelp());
  ui.preset?.addEventListener("click", () => applyPreset(ui.preset));
  for (const type of ["wheel", "touchmove", "keydown"]) {
    window.addEventListener(type, noteVisitorScroll, { passive: true });
  }
  refreshHelp();
  refreshButtons();
  socket.connect();
}
