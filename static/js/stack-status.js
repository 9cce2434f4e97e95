// The stack status panel: one websocket per page, shared by every [data-stack-status]
// panel on it, streaming a snapshot of the site's processes once a second:
//   {"at": "<iso>", "processes": [{"name", "label", "up", "latency_ms", "detail"}, ...]}
// Rows are built from the snapshots, so a new process appears without a template change.
// On the demos page it also updates each process badge ([data-process]) and each demo's
// status ([data-demo-status]; up when every process in the card's data-processes is up).

import { DemoSocket, disconnectedText } from "./demo-socket.js";

const DEFAULT_PATH = "/ws/demos/status/";
const RESTART_ON = new Set(["timeout", "limit"]); // the watch hit its cap: watch again

const panels = [...document.querySelectorAll("[data-stack-status]")];
const hasBadges = document.querySelector("[data-process], [data-demo-status]") !== null;

let latest = new Map(); // process name -> its entry in the last snapshot

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function formatLatency(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "—";
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

function formatTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString();
}

const PLACEHOLDER = {
  live: "waiting for the first snapshot…",
  closed: "no status: not connected to the server",
  error: "no status",
};

function setConnection(state, text) {
  for (const panel of panels) {
    panel.dataset.connection = state;
    const label = panel.querySelector("[data-stack-connection]");
    if (label && label.textContent !== text) label.textContent = text;
    const placeholder = panel.querySelector("[data-stack-placeholder]");
    if (placeholder && PLACEHOLDER[state]) placeholder.textContent = PLACEHOLDER[state];
  }
}

function buildRow(name) {
  const row = el("li", "status-row");
  row.dataset.processRow = name;
  const dot = el("span", "dot");
  dot.setAttribute("aria-hidden", "true");
  row.append(
    dot,
    el("span", "status-row__name", name),
    el("span", "status-row__state"),
    el("span", "status-row__latency"),
    el("span", "status-row__detail"),
  );
  return row;
}

function fillRow(row, proc) {
  const state = proc.up ? "up" : "down";
  row.dataset.state = state;
  row.classList.remove("is-stale");
  row.querySelector(".status-row__name").textContent = proc.label || proc.name;
  row.querySelector(".status-row__state").textContent = state;
  row.querySelector(".status-row__latency").textContent = proc.up ? formatLatency(proc.latency_ms) : "—";
  const detail = row.querySelector(".status-row__detail");
  detail.textContent = proc.detail || "";
  detail.title = proc.detail || "";
  row.title = proc.detail || "";
}

function renderPanels(snap) {
  for (const panel of panels) {
    const list = panel.querySelector("[data-stack-rows]");
    if (!list) continue;
    panel.querySelector("[data-stack-placeholder]")?.remove();

    const existing = new Map(
      [...list.querySelectorAll("[data-process-row]")].map((row) => [row.dataset.processRow, row]),
    );
    for (const proc of snap.processes) {
      const row = existing.get(proc.name) ?? buildRow(proc.name);
      existing.delete(proc.name);
      fillRow(row, proc);
      list.append(row); // keeps the snapshot's order; moving an existing node is cheap
    }
    for (const gone of existing.values()) gone.remove();

    const updated = panel.querySelector("[data-stack-updated]");
    if (updated) {
      let time = updated.querySelector("time");
      if (!time) {
        updated.textContent = "updated ";
        time = el("time");
        updated.append(time);
      }
      time.dateTime = snap.at;
      time.textContent = formatTime(snap.at);
    }
  }
}

function renderBadges() {
  for (const badge of document.querySelectorAll("[data-process]")) {
    const proc = latest.get(badge.dataset.process);
    const state = proc ? (proc.up ? "up" : "down") : "unknown";
    badge.dataset.state = state;
    const text = badge.querySelector(".badge__state");
    if (text) text.textContent = state;
    if (proc && proc.label && !badge.title) badge.title = proc.label;
  }
  for (const card of document.querySelectorAll("[data-demo][data-processes]")) {
    const status = card.querySelector("[data-demo-status]");
    if (!status || status.dataset.demoStatus === "coming") continue;
    const needed = card.dataset.processes.split(/\s+/).filter(Boolean);
    const states = needed.map((name) => latest.get(name));
    let state = "up";
    if (states.some((p) => p && !p.up)) state = "down";
    else if (states.some((p) => !p)) state = "unknown";
    setDemoStatus(status, state);
  }
}

function setDemoStatus(status, state) {
  status.dataset.demoStatus = state;
  const text = status.querySelector("[data-demo-status-text]") ?? status;
  text.textContent = state;
}

/** The connection is gone: what was shown is no longer known to be true. */
function markStale() {
  latest = new Map();
  for (const row of document.querySelectorAll("[data-stack-status] [data-process-row]")) {
    row.dataset.state = "unknown";
    row.classList.add("is-stale");
    row.querySelector(".status-row__state").textContent = "unknown";
    row.querySelector(".status-row__latency").textContent = "—";
  }
  for (const badge of document.querySelectorAll("[data-process]")) {
    badge.dataset.state = "unknown";
    const text = badge.querySelector(".badge__state");
    if (text) text.textContent = "unknown";
  }
  for (const status of document.querySelectorAll("[data-demo-status]")) {
    if (status.dataset.demoStatus !== "coming") setDemoStatus(status, "unknown");
  }
}

function isSnapshot(item) {
  return item && typeof item === "object" && Array.isArray(item.processes);
}

if (panels.length || hasBadges) {
  const path = panels[0]?.dataset.ws || DEFAULT_PATH;
  const socket = new DemoSocket(path, {
    onOpen() {
      setConnection("live", "live");
      socket.start({});
    },
    onOutput(items) {
      const snap = items[items.length - 1];
      if (!isSnapshot(snap)) return;
      latest = new Map(
        snap.processes.filter((p) => p && typeof p.name === "string").map((p) => [p.name, p]),
      );
      renderPanels({ at: snap.at, processes: [...latest.values()] });
      renderBadges();
    },
    onDone(msg) {
      if (RESTART_ON.has(msg.status)) {
        socket.start({});
        return;
      }
      markStale();
      setConnection("error", `stopped: ${msg.message || msg.status}`);
    },
    onError(msg) {
      setConnection("error", `error: ${msg.message || msg.code}`);
    },
    onClose(_event, info) {
      markStale();
      setConnection("closed", disconnectedText(info));
    },
  });
  socket.connect();
}
