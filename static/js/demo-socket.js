// A small client for the demos' websocket protocol (see demos/jobs.py).
//
//   client -> server  {"type": "start", "params": {...}}      start a job
//                     {"type": "stop", "job": <id>}           stop one
//   server -> client  {"type": "started", "job": id}
//                     {"type": "output", "job": id, "seq": n, "items": [...]}   batched, seq increasing
//                     {"type": "done", "job": id, "status": "finished"|"stopped"|"timeout"|"limit"|"failed", "message": "..."}
//                     {"type": "error", "code": "...", "message": "..."}
//
// The socket reconnects by itself with exponential backoff (1 s doubling to 30 s) whenever
// it closes. Jobs do not survive a reconnect: start them again in onOpen. A socket the server
// refuses (too many open from the visitor's address: an error "too_many_connections", then
// close code 4429) passes the server's words to onClose as `reason`; disconnectedText()
// turns the close into the line a page shows.
//
//   const socket = new DemoSocket("/ws/demos/status/", {
//     onOpen: () => socket.start({}),
//     onOutput: (items, msg) => render(items),
//   });
//   socket.connect();

export const MIN_DELAY_MS = 1000;
export const MAX_DELAY_MS = 30000;

export const CLOSE_TOO_MANY_CONNECTIONS = 4429;

/** What a page says while disconnected: the server's reason if it gave one, and the retry. */
export function disconnectedText({ retryInMs, reason = null }) {
  const what = reason || "disconnected";
  return retryInMs === null ? what : `${what} — retrying in ${Math.ceil(retryInMs / 1000)} s`;
}

export function socketUrl(path) {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${window.location.host}${path}`;
}

export class DemoSocket {
  /**
   * @param {string} path  the websocket path, e.g. "/ws/demos/status/"
   * @param {object} handlers  any of onOpen(), onClose(event, {retryInMs, reason}), onStarted(job, msg),
   *   onOutput(items, msg), onDone(msg), onError(msg), onMessage(msg) — all optional
   * @param {{minDelay?: number, maxDelay?: number}} options  reconnect backoff bounds in ms
   */
  constructor(path, handlers = {}, { minDelay = MIN_DELAY_MS, maxDelay = MAX_DELAY_MS } = {}) {
    this.path = path;
    this.handlers = handlers;
    this.minDelay = minDelay;
    this.maxDelay = maxDelay;
    this.ws = null;
    this.attempt = 0; // consecutive failed connections, for the backoff
    this.closed = false; // close() was called: never reconnect
    this.suspended = false; // page is in the back/forward cache
    this.retryTimer = null;
    this.lastSeq = new Map(); // job id -> last seq seen, to drop duplicates and stale batches
    this.jobs = new Set(); // jobs started and not yet done on this connection
    this.refusal = null; // the server's words when it refused this connection

    this._onPageHide = () => {
      this.suspended = true;
      this._teardown();
    };
    this._onPageShow = (event) => {
      if (event.persisted && this.suspended && !this.closed) {
        this.suspended = false;
        this.attempt = 0;
        this.connect();
      }
    };
    window.addEventListener("pagehide", this._onPageHide);
    window.addEventListener("pageshow", this._onPageShow);
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  connect() {
    if (this.closed || this.ws) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;

    let ws;
    try {
      ws = new WebSocket(socketUrl(this.path));
    } catch (error) {
      this._scheduleRetry(null);
      return;
    }
    this.ws = ws;

    ws.addEventListener("open", () => {
      if (this.ws !== ws) return;
      this.attempt = 0;
      this._call("onOpen");
    });
    ws.addEventListener("message", (event) => {
      if (this.ws !== ws) return;
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        console.warn("DemoSocket: ignoring a message that is not JSON", event.data);
        return;
      }
      this._dispatch(msg);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.jobs.clear();
      this.lastSeq.clear();
      this._scheduleRetry(event);
    });
    // An "error" event is always followed by "close", where reconnecting happens.
  }

  /** Send a protocol message; false when the socket is not open (nothing is queued). */
  send(message) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  start(params = {}) {
    return this.send({ type: "start", params });
  }

  stop(job) {
    return this.send({ type: "stop", job });
  }

  /** Stop for good: close the socket and never reconnect. */
  close() {
    this.closed = true;
    window.removeEventListener("pagehide", this._onPageHide);
    window.removeEventListener("pageshow", this._onPageShow);
    this._teardown();
  }

  _teardown() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const ws = this.ws;
    this.ws = null;
    this.jobs.clear();
    this.lastSeq.clear();
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, "page closed");
  }

  _scheduleRetry(event) {
    const reason = event && event.code === CLOSE_TOO_MANY_CONNECTIONS ? this.refusal : null;
    this.refusal = null;
    if (this.closed || this.suspended) {
      this._call("onClose", event, { retryInMs: null, reason });
      return;
    }
    const base = Math.min(this.maxDelay, this.minDelay * 2 ** this.attempt);
    // Up to 20% jitter below the base so that many pages do not reconnect in lockstep
    // after a restart, never going under the minimum.
    const delay = Math.max(this.minDelay, Math.round(base * (0.8 + Math.random() * 0.2)));
    this.attempt += 1;
    this._call("onClose", event, { retryInMs: delay, reason });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delay);
  }

  _dispatch(msg) {
    if (!msg || typeof msg !== "object") return;
    this._call("onMessage", msg);
    switch (msg.type) {
      case "started":
        this.jobs.add(msg.job);
        this._call("onStarted", msg.job, msg);
        break;
      case "output": {
        const last = this.lastSeq.get(msg.job);
        if (last !== undefined && msg.seq <= last) return; // duplicate or out of order
        this.lastSeq.set(msg.job, msg.seq);
        this._call("onOutput", Array.isArray(msg.items) ? msg.items : [], msg);
        break;
      }
      case "done":
        this.jobs.delete(msg.job);
        this.lastSeq.delete(msg.job);
        this._call("onDone", msg);
        break;
      case "error":
        if (msg.code === "too_many_connections") this.refusal = msg.message || null;
        this._call("onError", msg);
        break;
      default:
        console.warn("DemoSocket: unknown message type", msg.type);
    }
  }

  _call(name, ...args) {
    const handler = this.handlers[name];
    if (typeof handler !== "function") return;
    try {
      handler(...args);
    } catch (error) {
      console.error(`DemoSocket: ${name} handler failed`, error);
    }
  }
}
