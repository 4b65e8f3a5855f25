/**
 * gmws.js: the client of gmws's JSON protocol, for browsers and Node (22+, or
 * 20.10+ with --experimental-websocket). One ES module, no dependencies.
 *
 * The client keeps a *session*: who it is bound as and which groups it is in.
 * bind(), join() and leave() change it and resolve once the server confirmed;
 * after a lost connection it reconnects (exponential backoff with full
 * jitter), binds again and joins its groups again before it reports
 * "connected". Requests carry an `id` that the server echoes in its reply and
 * in the error envelope of that request (see the README of the repository).
 *
 * @module gmws
 */

/** Defaults of the options that have one (milliseconds where a duration). */
export const DEFAULTS = Object.freeze({
  autoConnect: true,
  backoffInitial: 500,
  backoffMax: 30000,
  stableAfter: 5000,
  connectTimeout: 10000,
  requestTimeout: 10000,
  pingInterval: 20000,
  pingTimeout: 10000,
  queueLimit: 100,
});

/** Error codes that come from the client, not from an error envelope. */
const CLIENT_CODES = new Set(["disconnected", "timeout", "closed", "queue_full", "cancelled", "no_client_id", "token_error"]);

/**
 * An error envelope of the server (`code`, `message`, `request`, `id`), or a
 * client-side failure (`code` one of disconnected, timeout, closed,
 * queue_full, cancelled, no_client_id, token_error).
 */
export class GmwsError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{request?: string, id?: number|string, cause?: unknown}} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = "GmwsError";
    /** @type {string} */
    this.code = code;
    /** @type {string|undefined} the request type the server refused */
    this.request = extra.request;
    /** @type {number|string|undefined} the request id */
    this.id = extra.id;
  }

  /** True when the server refused the request (an error envelope). */
  get fromServer() {
    return !CLIENT_CODES.has(this.code);
  }
}

const now = () => Date.now();

/** Call a listener; an exception in it is reported, never thrown into the client. */
function report(error) {
  if (typeof globalThis.reportError === "function") globalThis.reportError(error);
  else console.error(error);
}

/** A ws: or wss: URL; http(s): and paths relative to the page are accepted. */
function socketUrl(url) {
  const base = globalThis.location && globalThis.location.href;
  const u = new URL(String(url), base);
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  return u.href;
}

/**
 * A gmws client. See the package README for the whole story.
 *
 * ```js
 * const c = new Gmws("ws://127.0.0.1:8080/", { clientId: "alice", groups: ["room1"] });
 * c.on("message", (m) => console.log(m.from, m.message));
 * await c.bind();
 * await c.sendToGroup("room1", { text: "hi" });
 * ```
 */
export class Gmws {
  #url;
  #opts;
  #WebSocket;
  #identity = { clientId: null, token: undefined };
  #getToken = null;
  #groups = new Set();
  #state = "idle";
  #conn = null;
  #nextId = 1;
  #pending = new Map();
  #listeners = new Map();
  #bindWaiters = [];
  #groupWaiters = new Map();
  #readyWaiters = [];
  #queue = [];
  #attempt = 0;
  #retryTimer = null;
  #stableTimer = null;
  #stopped = null;
  #authFailed = false;
  #onOnline = null;

  /**
   * @param {string} url ws://, wss://, http(s):// or (in a page) a path such as "/"
   * @param {import("./gmws").GmwsOptions} [options]
   */
  constructor(url, options = {}) {
    this.#url = socketUrl(url);
    this.#opts = { ...DEFAULTS, ...options };
    this.#WebSocket = options.WebSocket || globalThis.WebSocket;
    if (typeof this.#WebSocket !== "function") {
      throw new TypeError("gmws: no WebSocket here; Node 20 needs --experimental-websocket (or pass options.WebSocket)");
    }
    if (options.clientId != null) this.#identity.clientId = String(options.clientId);
    if (options.token != null) this.#identity.token = String(options.token);
    if (typeof options.getToken === "function") this.#getToken = options.getToken;
    for (const g of options.groups || []) this.#groups.add(String(g));
    if (this.#opts.autoConnect) queueMicrotask(() => { if (this.#state === "idle") this.connect(); });
  }

  /** "idle" | "connecting" | "connected" | "disconnected" | "closed" */
  get state() { return this.#state; }
  /** The socket id of the current connection (a string), or null. */
  get socketId() { return (this.#conn && this.#conn.socketId) || null; }
  /** The client id the session binds as, or null. */
  get clientId() { return this.#identity.clientId; }
  /** True when the current connection is bound. */
  get bound() { return !!(this.#conn && this.#conn.bound); }
  /** The groups of the session (joined, or to be joined on the next connection). */
  get groups() { return [...this.#groups]; }
  /** Sends waiting for a connection. */
  get queued() { return this.#queue.length; }

  /**
   * Listen to "message" (data of a message envelope: {from, to, message}),
   * "welcome" ({socket_id, auth_timeout}), "error" (a GmwsError no promise
   * took, or a failed automatic re-bind/re-join), "state" (state, info) or
   * "envelope" (every envelope received). Returns a function that removes
   * the listener.
   */
  on(event, fn) {
    if (!this.#listeners.has(event)) this.#listeners.set(event, new Set());
    this.#listeners.get(event).add(fn);
    return () => this.off(event, fn);
  }

  /** Remove a listener added with on(). */
  off(event, fn) {
    const set = this.#listeners.get(event);
    if (set) set.delete(fn);
  }

  #emit(event, ...args) {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try { fn(...args); } catch (e) { report(e); }
    }
  }

  #setState(state, info = {}) {
    if (state === this.#state) return;
    this.#state = state;
    this.#emit("state", state, info);
  }

  /** Open a connection now (cancelling a scheduled retry); no-op while connecting or connected. */
  connect() {
    if (this.#state === "connecting" || this.#state === "connected") return;
    this.#stopped = null;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    if (!this.#onOnline && typeof globalThis.addEventListener === "function") {
      this.#onOnline = () => { if (this.#retryTimer) { clearTimeout(this.#retryTimer); this.#retryTimer = null; this.#open(); } };
      globalThis.addEventListener("online", this.#onOnline);
    }
    this.#open();
  }

  /**
   * Close the connection and stop reconnecting. Pending requests, waiting
   * sends and ready() reject with code "closed". The session (client id,
   * groups) is kept: connect() opens a new connection and restores it.
   */
  close(code = 1000, reason = "") {
    if (this.#state === "closed") return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    if (this.#onOnline) {
      globalThis.removeEventListener("online", this.#onOnline);
      this.#onOnline = null;
    }
    const conn = this.#conn;
    this.#setState("closed", { code, reason });
    if (conn) this.#drop(conn, { code, reason }, true);
    this.#failAll(new GmwsError("closed", "the client was closed"));
  }

  /** Resolves when the state is "connected"; rejects when the client closes or stops. */
  ready() {
    if (this.#state === "connected") return Promise.resolve();
    if (this.#state === "closed") return Promise.reject(new GmwsError("closed", "the client was closed"));
    if (this.#stopped) return Promise.reject(this.#stopped);
    if (this.#state === "idle") this.connect();
    return new Promise((resolve, reject) => this.#readyWaiters.push({ resolve, reject }));
  }

  /**
   * Bind the session to a client id (by default the one of the options) and
   * resolve with {socketId, clientId} once the server confirmed, now or on
   * the next connection. A token given here replaces the options' token and
   * getToken. Rejects with the server's error (code "auth_failed", ...).
   * @param {string|number} [clientId]
   * @param {string} [token]
   */
  bind(clientId, token) {
    if (this.#state === "closed") return Promise.reject(new GmwsError("closed", "the client was closed"));
    let changed = false;
    if (clientId != null && String(clientId) !== this.#identity.clientId) {
      this.#identity.clientId = String(clientId);
      changed = true;
    }
    if (token != null) {
      this.#identity.token = String(token);
      this.#getToken = null;
      changed = true;
    }
    if (this.#identity.clientId == null) {
      return Promise.reject(new GmwsError("no_client_id", "bind needs a client id (options.clientId or bind(clientId))"));
    }
    const conn = this.#conn;
    if (!changed && conn && conn.bound && conn.clientId === this.#identity.clientId) {
      return Promise.resolve({ socketId: conn.socketId, clientId: conn.serverClientId });
    }
    const promise = new Promise((resolve, reject) => this.#bindWaiters.push({ resolve, reject }));
    if (changed) {
      this.#authFailed = false;
      if (conn) conn.bound = false;
    }
    if (conn && conn.open) this.#sync(conn);
    else if (!conn && !this.#retryTimer) this.connect();
    return promise;
  }

  /**
   * Join a group: resolves with {group} once the server confirmed (now, or
   * after the next connection); rejects with the server's refusal
   * (too_many_groups, bad_request, forbidden, not_bound), and then the group
   * is not part of the session.
   */
  join(group) {
    if (this.#state === "closed") return Promise.reject(new GmwsError("closed", "the client was closed"));
    const g = String(group);
    this.#groups.add(g);
    const conn = this.#conn;
    if (conn && conn.ready && conn.joined.has(g)) return Promise.resolve({ group: g });
    const promise = new Promise((resolve, reject) => {
      if (!this.#groupWaiters.has(g)) this.#groupWaiters.set(g, []);
      this.#groupWaiters.get(g).push({ resolve, reject });
    });
    if (conn && conn.ready) this.#joinOn(conn, g).catch(() => {});
    else if (conn && conn.syncing) conn.again = true; // the restore in progress joins it too
    else if (this.#state === "idle") this.connect();
    return promise;
  }

  /**
   * Leave a group: it is no longer part of the session. Resolves with
   * {group} on the server's reply, or at once when not connected (the
   * membership ended with the connection).
   */
  leave(group) {
    if (this.#state === "closed") return Promise.reject(new GmwsError("closed", "the client was closed"));
    const g = String(group);
    this.#groups.delete(g);
    this.#settleGroup(g, null, new GmwsError("cancelled", `left ${g} before the join completed`));
    const conn = this.#conn;
    if (!conn || !conn.open || !conn.bound) {
      if (conn) conn.joined.delete(g);
      return Promise.resolve({ group: g });
    }
    return this.#request(conn, "leave", { group: g }).then(
      () => { conn.joined.delete(g); return { group: g }; },
      (e) => {
        if (e.fromServer) throw e;
        return { group: g };
      },
    );
  }

  /** An application-level ping: resolves with the round trip in ms. */
  ping() {
    const conn = this.#conn;
    if (!conn || !conn.open) return Promise.reject(new GmwsError("disconnected", "not connected"));
    const start = now();
    return this.#request(conn, "ping", undefined).then(() => now() - start);
  }

  /** Send to every socket (needs allow_send_to_all on the server). */
  sendToAll(message) {
    return this.#send("send_to_all", { message: message === undefined ? null : message });
  }

  /** Send to the members of a group (the sender too, when a member). */
  sendToGroup(group, message) {
    return this.#send("send_to_group", { group: String(group), message: message === undefined ? null : message });
  }

  /** Send to every socket bound to a client id. */
  sendToClient(clientId, message) {
    return this.#send("send_to_client", { client_id: String(clientId), message: message === undefined ? null : message });
  }

  /**
   * A send: written at once when connected, else queued (up to queueLimit)
   * until the session is restored. Resolves with the request id once written;
   * a refusal arrives later as an "error" event carrying that id.
   */
  #send(type, data) {
    if (this.#state === "closed") return Promise.reject(new GmwsError("closed", "the client was closed"));
    if (this.#stopped) return Promise.reject(this.#stopped);
    const id = this.#nextId++;
    const text = JSON.stringify({ type, id, data });
    const conn = this.#conn;
    if (conn && conn.ready) {
      try {
        conn.ws.send(text);
        return Promise.resolve(id);
      } catch (e) {
        // Not open after all: queue it like any send while disconnected.
      }
    }
    if (this.#queue.length >= this.#opts.queueLimit) {
      return Promise.reject(new GmwsError("queue_full", `not connected and ${this.#opts.queueLimit} sends are waiting`));
    }
    if (this.#state === "idle") this.connect();
    return new Promise((resolve, reject) => this.#queue.push({ id, text, resolve, reject }));
  }

  // ---- connection ------------------------------------------------------

  #open() {
    const conn = {
      ws: null, open: false, ready: false, bound: false, clientId: null, serverClientId: null,
      socketId: null, joined: new Set(), lastRx: now(), syncing: false, again: false,
      authRetried: false, timers: {},
    };
    this.#conn = conn;
    this.#setState("connecting", { attempt: this.#attempt });
    let ws;
    try {
      ws = new this.#WebSocket(this.#url, this.#opts.protocols);
    } catch (e) {
      queueMicrotask(() => this.#drop(conn, { code: 1006, reason: String((e && e.message) || e) }));
      return;
    }
    conn.ws = ws;
    conn.timers.connect = setTimeout(() => this.#kill(conn, "connect timeout"), this.#opts.connectTimeout);
    ws.onopen = () => {
      if (conn !== this.#conn) return;
      clearTimeout(conn.timers.connect);
      conn.open = true;
      conn.lastRx = now();
      this.#armIdle(conn);
      this.#sync(conn);
    };
    ws.onmessage = (ev) => {
      if (conn !== this.#conn) return;
      conn.lastRx = now();
      this.#receive(conn, ev.data);
    };
    ws.onclose = (ev) => this.#drop(conn, { code: ev.code, reason: ev.reason });
    // Browsers follow an error with a close event (code 1006); Node 20's
    // WebSocket does not after a failed connect (readyState stays 0): an
    // error ends the connection either way.
    ws.onerror = () => this.#drop(conn, { code: 1006, reason: conn.open ? "connection error" : "connection failed" });
  }

  /** The connection is dead (no pong, no reply, no open): drop it without waiting for a close. */
  #kill(conn, reason) {
    this.#drop(conn, { code: 1006, reason });
  }

  /** The end of a connection, however it came; schedules the next one unless stopped. */
  #drop(conn, info, closing = false) {
    if (conn !== this.#conn) return;
    this.#conn = null;
    for (const t of Object.values(conn.timers)) clearTimeout(t);
    clearTimeout(this.#stableTimer);
    const ws = conn.ws;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      ws.onerror = () => {};
      try {
        if (ws.readyState <= 1) ws.close(closing ? info.code : 1000, closing ? info.reason : "");
      } catch (e) {
        try { ws.close(); } catch (e2) { /* already closed */ }
      }
    }
    const gone = new GmwsError("disconnected", `connection lost (${info.code}${info.reason ? " " + info.reason : ""})`);
    for (const [id, p] of this.#pending) {
      if (p.conn !== conn) continue;
      this.#pending.delete(id);
      clearTimeout(p.timer);
      p.reject(gone);
    }
    if (this.#state === "closed") return;
    if (this.#stopped) {
      this.#setState("disconnected", { ...info, delay: null, error: this.#stopped });
      return;
    }
    if (this.#opts.shouldReconnect && !this.#opts.shouldReconnect(info)) {
      this.#stop(new GmwsError("disconnected", `not reconnecting after close ${info.code}`), info);
      return;
    }
    const cap = Math.min(this.#opts.backoffMax, this.#opts.backoffInitial * 2 ** Math.min(this.#attempt, 30));
    const delay = Math.floor(Math.random() * cap); // full jitter
    this.#attempt += 1;
    this.#retryTimer = setTimeout(() => { this.#retryTimer = null; this.#open(); }, delay);
    this.#setState("disconnected", { ...info, delay, attempt: this.#attempt });
  }

  /** Stop for good (until connect() or bind() with new credentials): every waiter fails with `error`. */
  #stop(error, info = { code: 1000, reason: error.message }) {
    this.#stopped = error;
    const conn = this.#conn;
    if (conn) this.#drop(conn, info, true);
    else this.#setState("disconnected", { ...info, delay: null, error });
    this.#failAll(error);
  }

  #failAll(error) {
    const waiters = [...this.#bindWaiters, ...this.#readyWaiters, ...[...this.#groupWaiters.values()].flat(), ...this.#queue];
    this.#bindWaiters = [];
    this.#readyWaiters = [];
    this.#groupWaiters.clear();
    this.#queue = [];
    for (const w of waiters) w.reject(error);
  }

  // ---- heartbeat -------------------------------------------------------

  /** After pingInterval without input, ping; without input pingTimeout after that, the connection is dead. */
  #armIdle(conn) {
    const every = this.#opts.pingInterval;
    if (!(every > 0)) return;
    clearTimeout(conn.timers.idle);
    conn.timers.idle = setTimeout(() => {
      if (conn !== this.#conn) return;
      if (now() - conn.lastRx < every) return this.#armIdle(conn);
      const sentAt = now();
      try {
        conn.ws.send(JSON.stringify({ type: "ping", id: this.#nextId++ }));
      } catch (e) {
        return this.#kill(conn, "send failed");
      }
      conn.timers.dead = setTimeout(() => {
        if (conn !== this.#conn) return;
        if (conn.lastRx >= sentAt) this.#armIdle(conn);
        else this.#kill(conn, "no pong within pingTimeout");
      }, this.#opts.pingTimeout);
    }, Math.max(0, conn.lastRx + every - now()));
  }

  // ---- requests --------------------------------------------------------

  /** Send a request and resolve with the data of its reply; unanswered within requestTimeout, the connection is dropped. */
  #request(conn, type, data) {
    return new Promise((resolve, reject) => {
      if (conn !== this.#conn || !conn.open) return reject(new GmwsError("disconnected", "not connected"));
      const id = this.#nextId++;
      const entry = { type, conn, resolve, reject, timer: null };
      entry.timer = setTimeout(() => {
        if (this.#pending.get(id) !== entry) return;
        this.#pending.delete(id);
        reject(new GmwsError("timeout", `no reply to ${type} within ${this.#opts.requestTimeout} ms`, { request: type, id }));
        this.#kill(conn, `no reply to ${type}`);
      }, this.#opts.requestTimeout);
      this.#pending.set(id, entry);
      const envelope = data === undefined ? { type, id } : { type, id, data };
      try {
        conn.ws.send(JSON.stringify(envelope));
      } catch (e) {
        this.#pending.delete(id);
        clearTimeout(entry.timer);
        reject(new GmwsError("disconnected", "not connected", { cause: e }));
      }
    });
  }

  /** The pending request a reply answers: by its id, else (a server without ids) the oldest of that type. */
  #take(id, type) {
    let key = id;
    if (id === undefined || !this.#pending.has(id)) {
      if (id !== undefined || !type) return null;
      key = undefined;
      for (const [k, p] of this.#pending) {
        if (p.type === type) { key = k; break; }
      }
      if (key === undefined) return null;
    }
    const p = this.#pending.get(key);
    this.#pending.delete(key);
    clearTimeout(p.timer);
    return p;
  }

  #receive(conn, text) {
    if (typeof text !== "string") return; // binary frames are not part of the protocol
    let env;
    try {
      env = JSON.parse(text);
    } catch (e) {
      this.#emit("error", new GmwsError("bad_json", "the server sent text that is not JSON", { cause: e }));
      return;
    }
    if (!env || typeof env !== "object" || typeof env.type !== "string") return;
    this.#emit("envelope", env);
    const data = env.data === undefined ? {} : env.data;
    switch (env.type) {
      case "welcome":
        conn.socketId = data.socket_id == null ? null : String(data.socket_id);
        this.#emit("welcome", data);
        break;
      case "message":
        this.#emit("message", data);
        break;
      case "error": {
        const err = new GmwsError(String(data.code || "error"), String(data.message || ""), { request: data.request, id: env.id });
        const p = this.#take(env.id, data.request);
        if (p) p.reject(err);
        else this.#emit("error", err);
        break;
      }
      case "bind":
      case "join":
      case "leave":
      case "pong": {
        const p = this.#take(env.id, env.type);
        if (p) p.resolve(data);
        break;
      }
      default:
        break; // an application's own types: see the "envelope" event
    }
  }

  // ---- the session -----------------------------------------------------

  /** Bring `conn` to the session: bound as the client id, in every group. Then "connected". */
  #sync(conn) {
    if (conn.syncing) { conn.again = true; return; }
    conn.syncing = true;
    const run = async () => {
      do {
        conn.again = false;
        const clientId = this.#identity.clientId;
        if (clientId != null && !(conn.bound && conn.clientId === clientId)) await this.#bindOn(conn, clientId);
        if (conn.bound) {
          const missing = [...this.#groups].filter((g) => !conn.joined.has(g));
          await Promise.all(missing.map((g) => this.#joinOn(conn, g, true)));
        }
      } while (conn.again && conn === this.#conn);
    };
    run().then(
      () => { conn.syncing = false; if (conn === this.#conn) this.#synced(conn); },
      (e) => { conn.syncing = false; if (conn === this.#conn) this.#syncFailed(conn, e); },
    );
  }

  async #bindOn(conn, clientId) {
    for (;;) {
      let token = this.#identity.token;
      if (this.#getToken) {
        try {
          token = await this.#getToken({ clientId, reason: this.#authFailed ? "auth_failed" : "connect" });
        } catch (e) {
          throw new GmwsError("token_error", `getToken failed: ${(e && e.message) || e}`, { cause: e });
        }
      }
      const data = { client_id: clientId };
      if (token != null) data.token = String(token);
      try {
        const reply = await this.#request(conn, "bind", data);
        conn.bound = true;
        conn.clientId = clientId;
        conn.serverClientId = reply.client_id == null ? clientId : String(reply.client_id);
        if (reply.socket_id != null) conn.socketId = String(reply.socket_id);
        this.#authFailed = false;
        return;
      } catch (e) {
        if (e.code !== "auth_failed") throw e;
        this.#authFailed = true;
        // With getToken, one fresh token on the same connection; then backoff.
        if (!this.#getToken || conn.authRetried || conn !== this.#conn) throw e;
        conn.authRetried = true;
        this.#emit("error", e);
      }
    }
  }

  /** Join on `conn`; settles the group's waiters on the reply. A refusal removes the group from the session. */
  #joinOn(conn, g, automatic = false) {
    return this.#request(conn, "join", { group: g }).then(
      () => {
        conn.joined.add(g);
        this.#settleGroup(g, { group: g });
      },
      (e) => {
        if (!e.fromServer) throw e; // disconnected or timeout: the next connection joins it
        this.#groups.delete(g);
        const waited = this.#settleGroup(g, null, e);
        if (automatic && !waited) this.#emit("error", e);
        if (!automatic) throw e;
      },
    );
  }

  #settleGroup(g, value, error) {
    const waiters = this.#groupWaiters.get(g);
    if (!waiters) return false;
    this.#groupWaiters.delete(g);
    for (const w of waiters) error ? w.reject(error) : w.resolve(value);
    return waiters.length > 0;
  }

  #synced(conn) {
    if (conn.bound) {
      const bound = { socketId: conn.socketId, clientId: conn.serverClientId };
      const waiters = this.#bindWaiters;
      this.#bindWaiters = [];
      for (const w of waiters) w.resolve(bound);
    }
    if (conn.ready) return;
    conn.ready = true;
    const queue = this.#queue;
    this.#queue = [];
    for (const q of queue) {
      try {
        conn.ws.send(q.text);
        q.resolve(q.id);
      } catch (e) {
        q.reject(new GmwsError("disconnected", "not connected", { cause: e }));
      }
    }
    clearTimeout(this.#stableTimer);
    this.#stableTimer = setTimeout(() => { if (conn === this.#conn) this.#attempt = 0; }, this.#opts.stableAfter);
    this.#setState("connected", { socketId: conn.socketId, clientId: conn.bound ? conn.serverClientId : null });
    const ready = this.#readyWaiters;
    this.#readyWaiters = [];
    for (const w of ready) w.resolve();
  }

  #syncFailed(conn, e) {
    if (e.code === "disconnected") return; // the drop already scheduled what comes next
    if (e.code === "timeout") return; // #request dropped the connection
    this.#emit("error", e);
    const retry = (e.code === "auth_failed" || e.code === "token_error") && this.#getToken;
    if (retry) {
      const waiters = this.#bindWaiters;
      this.#bindWaiters = [];
      for (const w of waiters) w.reject(e);
      this.#kill(conn, e.message); // reconnect with backoff; getToken is asked again
      return;
    }
    // A static token refused (or a client id the server will not take): no retry loop.
    this.#stop(e, { code: 1000, reason: `${e.code}: ${e.message}` });
  }
}

export default Gmws;
