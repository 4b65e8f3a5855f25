// The test harness: real gmws servers as child processes, and two hosts that
// run the same client-side code, one in Node (this process) and one in a
// page of headless Chromium (playwright-core).

import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHmac, randomBytes } from "node:crypto";
import { createServer } from "node:net";

export const API_KEY = randomBytes(16).toString("hex");
export const SECRET = "js-test-secret-0123456789abcdef0123456789";

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll `probe` until it returns something truthy; fail after `timeoutMs`. */
export async function waitFor(what, probe, timeoutMs = 5000, intervalMs = 50) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await probe();
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await sleep(intervalMs);
  }
}

export function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

export function assertEq(actual, expected, message) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${message}: expected ${e}, got ${a}`);
}

/** A free port on loopback (closed again at once; our servers take it next). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** An HS256 JWT, as the server's auth_secret checks it. */
export function jwt(claims, secret = SECRET) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const signed = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}`;
  return `${signed}.${createHmac("sha256", secret).update(signed).digest("base64url")}`;
}

const children = new Set();
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});
// `timeout` and ^C: end the servers too (through the exit handler).
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(1));

/**
 * A self-signed certificate for 127.0.0.1 (openssl), for servers with TLS:
 * `{ cert, key }` are PEM file paths, `ca` the certificate's PEM text.
 */
export function selfSigned() {
  const dir = mkdtempSync(join(tmpdir(), "gmws-js-tls-"));
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
    "-addext", "subjectAltName=IP:127.0.0.1",
  ], { stdio: "ignore" });
  return { cert, key, ca: readFileSync(cert, "utf8") };
}

/**
 * An HTTP(S) request from Node (`ca` trusted for https): `{ status, text }`.
 * (Node's fetch cannot be given a CA; node:https can.)
 */
export function request(method, url, { headers = {}, body, ca, timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const send = url.startsWith("https:") ? httpsRequest : httpRequest;
    const req = send(url, { method, headers, ca, timeout: timeoutMs }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => { text += chunk; });
      res.on("end", () => resolve({ status: res.statusCode, ok: res.statusCode < 300, text }));
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${url}: no answer in ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** One `gmws serve` process on a fixed port; with `tls` (see selfSigned), wss and https. */
export class GmwsServer {
  constructor(bin, port, args = [], tls = null) {
    this.bin = bin;
    this.port = port;
    this.tls = tls;
    this.args = tls ? [...args, "--tls-cert", tls.cert, "--tls-key", tls.key] : args;
    this.base = `${tls ? "https" : "http"}://127.0.0.1:${port}`;
    this.url = `${tls ? "wss" : "ws"}://127.0.0.1:${port}/`;
    this.output = [];
    this.child = null;
  }

  async start() {
    const child = spawn(this.bin, ["serve", "--listen", `127.0.0.1:${this.port}`, "--log-level", "warn", ...this.args], {
      env: { ...process.env, GMWS_API_KEY: API_KEY },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    children.add(child);
    child.exited = new Promise((resolve) => child.once("exit", (code, signal) => { children.delete(child); resolve({ code, signal }); }));
    const keep = (chunk) => {
      this.output.push(...String(chunk).split("\n").filter(Boolean));
      this.output.splice(0, Math.max(0, this.output.length - 40));
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    let exited = null;
    child.exited.then((e) => { exited = e; });
    await waitFor(`gmws on port ${this.port} to answer /healthz`, async () => {
      if (exited) throw new Error(`gmws exited at start (${JSON.stringify(exited)}):\n${this.output.join("\n")}`);
      try {
        const r = await request("GET", `${this.base}/healthz`, { ca: this.tls?.ca, timeoutMs: 1000 });
        return r.ok;
      } catch {
        return false;
      }
    }, 10000);
    return this;
  }

  /** Send a signal and wait (bounded) for the process to end. */
  async stop(signal = "SIGTERM", timeoutMs = 10000) {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const t = sleep(timeoutMs).then(() => "timeout");
    if ((await Promise.race([child.exited, t])) === "timeout") {
      child.kill("SIGKILL");
      throw new Error(`gmws did not exit within ${timeoutMs} ms of ${signal}`);
    }
  }

  signal(signal) {
    this.child.kill(signal);
  }

  async api(method, path, body) {
    const r = await request(method, `${this.base}${path}`, {
      headers: { Authorization: `Bearer ${API_KEY}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      ca: this.tls?.ca,
    });
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${r.text}`);
    return JSON.parse(r.text);
  }

  async metric(name) {
    const r = await request("GET", `${this.base}/metrics`, {
      headers: { Authorization: `Bearer ${API_KEY}` },
      ca: this.tls?.ca,
    });
    const line = r.text.split("\n").find((l) => l.startsWith(`${name} `));
    return line ? Number(line.split(" ")[1]) : NaN;
  }
}

/**
 * Client-side helpers, installed in each host as `globalThis.T` (this
 * function runs in the page too, so it uses nothing from this module).
 */
function install() {
  const T = (globalThis.T = { clients: {}, log: {} });
  const plainError = (e) => (e ? { code: e.code, message: e.message } : undefined);
  T.track = (name, c) => {
    T.clients[name] = c;
    const log = (T.log[name] = []);
    c.on("state", (state, info) => log.push({ ev: "state", state, info: { ...info, error: plainError(info.error) }, at: Date.now() }));
    c.on("message", (m) => log.push({ ev: "message", m, at: Date.now() }));
    c.on("error", (e) => log.push({ ev: "error", code: e.code, request: e.request, id: e.id, message: e.message, at: Date.now() }));
    c.on("welcome", (w) => log.push({ ev: "welcome", w, at: Date.now() }));
    return c;
  };
  T.err = (e) => ({
    name: e && e.name, code: e && e.code, message: e && e.message, request: e && e.request, id: e && e.id,
    fromServer: e && e.fromServer, isGmwsError: e instanceof globalThis.GmwsError,
  });
  T.settle = (p) => p.then((value) => ({ ok: true, value }), (e) => ({ ok: false, error: T.err(e) }));
  T.later = {};
  T.closeAll = () => {
    for (const c of Object.values(T.clients)) c.close();
  };
}

/** `promise`, or a failure after `ms`: every client-side step is bounded in time. */
function bounded(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`client-side step not done after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const STEP_MS = 15000;
const describe = (fn) => String(fn).replace(/\s+/g, " ").slice(0, 120);

/** Runs client-side functions in this Node process. */
export class NodeHost {
  name = "node";

  async setup() {
    const mod = await import(new URL("../gmws.js", import.meta.url));
    globalThis.Gmws = mod.Gmws;
    globalThis.GmwsError = mod.GmwsError;
    await this.run(install);
  }

  async run(fn, arg) {
    const value = await bounded(Promise.resolve().then(() => fn(arg)), STEP_MS, describe(fn));
    return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
  }

  async teardown() {
    await this.run(() => T.closeAll());
  }

  async cleanup() {
    if (globalThis.T) globalThis.T.closeAll();
  }
}

/** Runs client-side functions in a page of headless Chromium, served by `server`. */
export class BrowserHost {
  name = "chromium";

  constructor(browser) {
    this.browser = browser;
    this.pageErrors = [];
  }

  async setup(server) {
    this.context = await this.browser.newContext();
    this.page = await this.context.newPage();
    this.page.setDefaultTimeout(10000);
    this.page.on("pageerror", (e) => this.pageErrors.push(String(e && e.stack ? e.stack : e)));
    await this.page.goto(`${server.base}/healthz`);
    await this.page.evaluate(async () => {
      const mod = await import("/gmws.js");
      globalThis.Gmws = mod.Gmws;
      globalThis.GmwsError = mod.GmwsError;
    });
    await this.run(install);
  }

  run(fn, arg) {
    return bounded(this.page.evaluate(fn, arg), STEP_MS, describe(fn));
  }

  async teardown() {
    await this.run(() => T.closeAll());
    await this.cleanup();
    if (this.pageErrors.length) throw new Error(`errors in the page:\n${this.pageErrors.join("\n")}`);
  }

  async cleanup() {
    if (this.context) await this.context.close().catch(() => {});
    this.context = null;
  }
}

/** Wait until a client-side probe returns something truthy. */
export function waitOn(host, what, fn, arg, timeoutMs = 5000) {
  return waitFor(`${what} [${host.name}]`, () => host.run(fn, arg), timeoutMs);
}
