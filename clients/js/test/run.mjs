// The client's tests against a real gmws binary, in Node and in headless
// Chromium. scripts/js-test.sh installs what this needs and runs it:
//
//   node [--experimental-websocket] test/run.mjs --gmws PATH [--chromium PATH] [--only NAME]
//
// Every server is a child process on a free loopback port; every wait is
// bounded; a watchdog ends the run after --deadline seconds (default 240).

import { parseArgs } from "node:util";
import { BrowserHost, freePort, GmwsServer, NodeHost } from "./harness.mjs";
import * as s from "./scenarios.mjs";

const { values: opts } = parseArgs({
  options: {
    gmws: { type: "string" },
    chromium: { type: "string", default: "/usr/bin/chromium" },
    only: { type: "string" },
    deadline: { type: "string", default: "240" },
  },
});
if (!opts.gmws) {
  console.error("usage: run.mjs --gmws PATH [--chromium PATH] [--only NAME]");
  process.exit(2);
}
if (typeof globalThis.WebSocket !== "function") {
  console.error("no global WebSocket in this Node: use Node 22+, or 20.10+ with --experimental-websocket");
  process.exit(2);
}
setTimeout(() => {
  console.error(`js tests: over the ${opts.deadline} s deadline; stopping`);
  process.exit(1);
}, Number(opts.deadline) * 1000).unref();

const servers = new Set();
const ctx = {
  /** Start a gmws on `port` (a free one by default) with extra flags. */
  async server({ port, args = [], tls = null } = {}) {
    const server = new GmwsServer(opts.gmws, port || (await freePort()), args, tls);
    servers.add(server);
    return server.start();
  },
};

/** Run a scenario in a host; whatever happens, its clients and servers end with it. */
const withHost = (fn, makeHost) => async () => {
  const host = await makeHost();
  try {
    return await fn(ctx, host);
  } finally {
    await host.cleanup();
    for (const server of servers) await server.stop("SIGKILL").catch(() => {});
    servers.clear();
  }
};
const cases = [];
const add = (name, run) => {
  if (!opts.only || name.includes(opts.only)) cases.push({ name, run });
};

// The Chromium ones, then the same scenarios in Node.
let browser = null;
const chromium = async () => {
  if (!browser) {
    const { chromium: launcher } = await import("playwright-core");
    browser = await launcher.launch({
      executablePath: opts.chromium,
      headless: true,
      timeout: 30000,
      // What this machine's Chromium needs (no sandbox as root; no calls home
      // on a closed network).
      args: [
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        // The wss case's certificate is self-signed, made for the run.
        "--ignore-certificate-errors",
      ],
    });
  }
  return new BrowserHost(browser);
};
add("declarations: gmws.d.ts matches the class", () => s.declarations());
add("served: GET /gmws.js is this gmws.js", withHost(s.served, async () => new NodeHost()));
for (const [name, fn] of [["basics", s.basics], ["restart", s.restart], ["auth", s.auth], ["dead connection", s.deadConnection]]) {
  add(`chromium: ${name}`, withHost(fn, chromium));
}
add("chromium: demo page", withHost(s.demoPage, chromium));
add("chromium: demo page over wss, compressed", withHost(s.demoPageTls, chromium));
for (const [name, fn] of [["basics", s.basics], ["restart", s.restart], ["auth", s.auth], ["dead connection", s.deadConnection]]) {
  add(`node: ${name}`, withHost(fn, async () => new NodeHost()));
}

let failed = 0;
const started = Date.now();
for (const c of cases) {
  const t0 = Date.now();
  try {
    const note = await c.run();
    console.log(`ok    ${c.name} (${Date.now() - t0} ms)${note ? `: ${note}` : ""}`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL  ${c.name} (${Date.now() - t0} ms)\n${String(e && e.stack ? e.stack : e).replace(/^/gm, "      ")}`);
  }
}
if (browser) await browser.close();
console.log(`${cases.length - failed} of ${cases.length} passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
process.exit(failed ? 1 : 0);
