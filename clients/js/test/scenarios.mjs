// The scenarios: each takes a host (Node or Chromium) and servers it starts
// itself. Functions passed to host.run() run on the client side: in a page
// they see only the page (globalThis.Gmws, GmwsError and T from harness.mjs),
// so they take what they need as their argument.

import { assert, assertEq, freePort, GmwsServer, jwt, SECRET, selfSigned, sleep, waitFor, waitOn } from "./harness.mjs";

/** bind, join, leave, the three sends, ping, and errors matched to requests. */
export async function basics(ctx, host) {
  const server = await ctx.server();
  await host.setup(server);
  const r = await host.run(async ({ url }) => {
    const a = T.track("a", new Gmws(url, { clientId: "alice" }));
    const b = T.track("b", new Gmws(url, { clientId: "bob", groups: ["room1"] }));
    const bound = await a.bind();
    const joined = await a.join("room1");
    await b.ready();
    const sent = await a.sendToGroup("room1", { n: 1 });
    const direct = await a.sendToClient("bob", "hello bob");
    const tooLong = await T.settle(a.join("x".repeat(300)));
    const forbidden = await a.sendToAll("everyone");
    const rtt = await a.ping();
    // join() before the connection exists, and while the restore is under way.
    const e = T.track("early", new Gmws(url, { clientId: "early", groups: ["a"] }));
    const beforeOpen = e.join("b");
    const duringRestore = new Promise((resolve) => {
      // At the first join reply of the restore the others are in flight.
      const off = e.on("envelope", (env) => env.type === "join" && (off(), resolve(e.join("c"))));
    });
    const early = [await beforeOpen, await duringRestore, await e.ready(), e.state, e.groups];
    return {
      early,
      bound, joined, sent, direct, tooLong, forbidden, rtt,
      aGroups: a.groups, bGroups: b.groups, bBound: b.bound, states: [a.state, b.state], socketId: a.socketId,
    };
  }, { url: server.url });
  assertEq(r.bound.clientId, "alice", "bind() resolves with the client id");
  assert(/^\d+$/.test(r.bound.socketId) && r.bound.socketId === r.socketId, `bind() resolves with the socket id (${r.bound.socketId})`);
  assertEq(r.joined, { group: "room1" }, "join() resolves with the group");
  assert(Number.isInteger(r.sent) && Number.isInteger(r.direct), "sends resolve with their request ids");
  assertEq(r.states, ["connected", "connected"], "both connected");
  assert(r.bBound && r.bGroups.includes("room1"), "options.clientId and options.groups bind and join");
  assertEq(r.tooLong.ok, false, "a 300-byte group name is refused");
  assertEq(
    [r.tooLong.error.code, r.tooLong.error.request, r.tooLong.error.fromServer, r.tooLong.error.isGmwsError],
    ["bad_request", "join", true, true],
    "join() rejects with the error envelope's code",
  );
  assert(r.tooLong.error.message.length > 0, "with its message");
  assertEq(r.aGroups, ["room1"], "a refused group is not part of the session");
  assertEq(r.early, [{ group: "b" }, { group: "c" }, null, "connected", ["a", "b", "c"]], "joins before and during the restore");
  for (const g of ["a", "b", "c"]) assertEq((await server.api("GET", `/api/groups/${g}`)).sockets, 1, `early in ${g}`);
  assert(typeof r.rtt === "number" && r.rtt >= 0, "ping() resolves with a round trip");

  const received = await waitOn(host, "bob's two messages and alice's error event", ({ forbidden }) => {
    const b = T.log.b.filter((e) => e.ev === "message").map((e) => e.m);
    const errors = T.log.a.filter((e) => e.ev === "error");
    return b.length >= 2 && errors.some((e) => e.id === forbidden) && { b, errors };
  }, { forbidden: r.forbidden });
  const [toGroup, toClient] = received.b;
  assertEq(toGroup.to, { group: "room1" }, "the group message's target");
  assertEq(toGroup.from.client_id, "alice", "the group message's sender");
  assertEq(toGroup.message, { n: 1 }, "the group message");
  assertEq([toClient.to, toClient.message], [{ client: "bob" }, "hello bob"], "the client message");
  const forbiddenErr = received.errors.find((e) => e.id === r.forbidden);
  assertEq([forbiddenErr.code, forbiddenErr.request], ["forbidden", "send_to_all"], "a refused send is an error event with its id");

  // The server agrees: alice and bob in room1; after leave(), only bob.
  assertEq((await server.api("GET", "/api/groups/room1")).sockets, 2, "room1 members");
  const left = await host.run(() => T.clients.a.leave("room1"));
  assertEq(left, { group: "room1" }, "leave() resolves with the group");
  assertEq((await server.api("GET", "/api/groups/room1")).sockets, 1, "room1 members after leave");
  // The sender is among the recipients of its own group send.
  const own = await host.run(() => T.log.a.filter((e) => e.ev === "message").length);
  assertEq(own, 1, "alice got her own group message");
  await host.teardown();
  await server.stop();
}

/**
 * SIGTERM, a new process on the same port: the client comes back bound and
 * in its groups within a few seconds; a send queued while down is delivered;
 * a group message published through the HTTP API after the restart arrives.
 */
export async function restart(ctx, host) {
  const port = await freePort();
  let server = await ctx.server({ port });
  await host.setup(server);
  await host.run(async ({ url }) => {
    const c = T.track("c", new Gmws(url, { clientId: "carol", groups: ["room1", "room2"], stableAfter: 500, backoffMax: 2000 }));
    await c.ready();
  }, { url: server.url });
  assertEq((await server.api("GET", "/api/groups/room2")).sockets, 1, "carol in room2 before");
  await sleep(700); // connected longer than stableAfter: the backoff starts again from its first step

  await server.stop("SIGTERM");
  const down = await waitOn(host, "carol to notice the shutdown", () => {
    const d = T.log.c.find((e) => e.ev === "state" && e.state === "disconnected");
    return d && d.info;
  });
  assertEq(down.code, 1001, "the server's shutdown close code");
  assertEq(down.attempt, 1, "backoff reset after a stable connection");
  assert(down.delay >= 0 && down.delay < 500, `first retry within backoffInitial (full jitter): ${down.delay}`);
  // A send while the server is down is queued (and resolves once written).
  await host.run(() => {
    T.later.queued = T.settle(T.clients.c.sendToGroup("room1", "queued while down"));
  });
  assertEq(await host.run(() => T.clients.c.queued), 1, "one send queued");

  await sleep(300); // a reconnect attempt or two into a closed port
  server = await ctx.server({ port });
  const restartedAt = Date.now();
  // backoffMax 2 s: the next attempt comes within 2 s of the server's start.
  await waitOn(host, "carol connected again", () => T.clients.c.state === "connected" && T.clients.c.bound, undefined, 5000)
    .catch(async (e) => {
      const states = await host.run(() => T.log.c.filter((x) => x.ev === "state").map((x) => [x.state, x.info, x.at]));
      throw new Error(`${e.message}\nstates: ${JSON.stringify(states)}`);
    });
  const back = Date.now() - restartedAt;
  // Every member the server knows of arrived before "connected" was reported.
  assertEq((await server.api("GET", "/api/clients/carol")).online, true, "carol bound on the new server");
  assertEq((await server.api("GET", "/api/groups/room1")).sockets, 1, "carol back in room1");
  assertEq((await server.api("GET", "/api/groups/room2")).sockets, 1, "carol back in room2");
  assertEq((await server.api("POST", "/api/send_to_group", { group: "room2", message: "after restart" })).delivered, 1, "API delivery");
  const got = await waitOn(host, "the messages after the restart", () => {
    const m = T.log.c.filter((e) => e.ev === "message").map((e) => e.m);
    return m.length >= 2 && m;
  });
  assertEq([got[0].message, got[0].from.client_id], ["queued while down", "carol"], "the queued send went out after the restore");
  assertEq([got[1].message, got[1].from, got[1].to], ["after restart", "server", { group: "room2" }], "the API's group message");
  const r = await host.run(async () => ({
    queued: await T.later.queued,
    states: T.log.c.filter((e) => e.ev === "state").map((e) => e.state),
  }));
  assert(r.queued.ok && Number.isInteger(r.queued.value), "the queued send resolved with its id");
  assertEq(r.states.slice(0, 2), ["connecting", "connected"], "first connection");
  assertEq(r.states[r.states.length - 1], "connected", "connected at the end");
  await host.teardown();
  await server.stop();
  return `back ${back} ms after the new server answered`;
}

/** auth_secret: a bad static token stops (no retry loop); getToken is asked again for a fresh one. */
export async function auth(ctx, host) {
  const server = await ctx.server({ args: ["--auth-secret", SECRET] });
  await host.setup(server);
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const good = { dave: jwt({ sub: "dave", exp }), erin: jwt({ sub: "erin", exp }) };
  const bad = jwt({ sub: "erin", exp }, "another-secret-0123456789abcdef0123456789");

  // 1. A static bad token: bind() rejects, the client stops, and nothing retries.
  const r = await host.run(async ({ url }) => {
    const d = T.track("d", new Gmws(url, { clientId: "dave", token: "not.a.token", backoffInitial: 50 }));
    return T.settle(d.bind());
  }, { url: server.url });
  assertEq([r.ok, r.error.code, r.error.request], [false, "auth_failed", "bind"], "a bad static token");
  const stopped = await waitOn(host, "dave to stop", () => {
    const s = T.log.d.filter((e) => e.ev === "state").pop();
    return s && s.state === "disconnected" && s.info;
  });
  assertEq([stopped.delay, stopped.error.code], [null, "auth_failed"], "stopped, no retry scheduled");
  const handshakes = await server.metric("gmws_handshakes_total");
  await sleep(2000);
  assertEq(await server.metric("gmws_handshakes_total"), handshakes, "no connection attempt in 2 s after the refusal");
  const after = await host.run(() => ({
    connecting: T.log.d.filter((e) => e.ev === "state" && e.state === "connecting").length,
    state: T.clients.d.state,
    ready: null,
  }));
  assertEq([after.connecting, after.state], [1, "disconnected"], "one connection attempt in all");
  // New credentials from the application: it connects and binds.
  const rebound = await host.run(({ token }) => T.settle(T.clients.d.bind("dave", token)), { token: good.dave });
  assert(rebound.ok && rebound.value.clientId === "dave", `bind() with a good token after the stop: ${JSON.stringify(rebound)}`);

  // 2. getToken: asked before each bind; after a refusal asked again (reason "auth_failed").
  await host.run(async ({ url, tokens }) => {
    T.calls = [];
    const e = T.track("e", new Gmws(url, {
      clientId: "erin",
      backoffInitial: 200,
      getToken: async ({ reason }) => {
        T.calls.push(reason);
        return tokens[Math.min(T.calls.length - 1, tokens.length - 1)];
      },
    }));
    await e.ready();
  }, { url: server.url, tokens: [bad, bad, good.erin] });
  const erin = await host.run(() => ({
    calls: T.calls,
    state: T.clients.e.state,
    bound: T.clients.e.bound,
    errors: T.log.e.filter((x) => x.ev === "error").map((x) => x.code),
    connecting: T.log.e.filter((x) => x.ev === "state" && x.state === "connecting").length,
  }));
  assertEq(erin.calls, ["connect", "auth_failed", "auth_failed"], "getToken asked again after each refusal");
  assertEq([erin.state, erin.bound], ["connected", true], "bound with the fresh token");
  assertEq(erin.connecting, 2, "one refusal retried on the same connection, then one reconnect");
  assert(erin.errors.length >= 2 && erin.errors.every((c) => c === "auth_failed"), `auth_failed error events: ${erin.errors}`);
  assertEq((await server.api("GET", "/api/clients/erin")).online, true, "erin online");

  // 3. getToken that never gives a good token: retries back off (full jitter, capped), no tight loop.
  await host.run(({ url, bad }) => {
    T.badCalls = 0;
    T.track("f", new Gmws(url, { clientId: "erin", backoffInitial: 100, backoffMax: 400, getToken: () => { T.badCalls++; return bad; } }));
  }, { url: server.url, bad });
  await sleep(2500);
  const f = await host.run(() => ({
    calls: T.badCalls,
    delays: T.log.f.filter((e) => e.ev === "state" && e.state === "disconnected").map((e) => [e.info.attempt, e.info.delay]),
  }));
  assert(f.calls >= 4, `getToken asked on every attempt (${f.calls})`);
  assert(f.calls <= 2 * (f.delays.length + 1), `at most two binds per connection (${f.calls} for ${f.delays.length + 1})`);
  for (const [attempt, delay] of f.delays) {
    assert(delay >= 0 && delay < Math.min(400, 100 * 2 ** (attempt - 1)), `delay ${delay} of attempt ${attempt} within its cap`);
  }
  await host.teardown();
  await server.stop();
  return `${f.delays.length + 1} connections in 2.5 s with a token that never works`;
}

/** A half-open connection (the server SIGSTOPped): noticed by the idle ping, then the client reconnects. */
export async function deadConnection(ctx, host) {
  const port = await freePort();
  let server = await ctx.server({ port });
  await host.setup(server);
  await host.run(async ({ url }) => {
    const c = T.track("c", new Gmws(url, {
      clientId: "gus", groups: ["g"], pingInterval: 400, pingTimeout: 400, connectTimeout: 1000, requestTimeout: 2000, backoffMax: 500,
    }));
    await c.ready();
  }, { url: server.url });
  await sleep(1000); // idle pings answered: still connected
  assertEq(await host.run(() => T.clients.c.state), "connected", "idle pings keep the connection");
  server.signal("SIGSTOP");
  const stoppedAt = Date.now();
  const down = await waitOn(host, "the dead connection to be noticed", () => {
    const d = T.log.c.find((e) => e.ev === "state" && e.state === "disconnected");
    return d && d.info;
  }, 3000);
  const noticed = Date.now() - stoppedAt;
  assert(/pong/.test(down.reason), `dropped for the missing pong: ${down.reason}`);
  await server.stop("SIGKILL");
  server = await ctx.server({ port });
  await waitOn(host, "gus connected again", () => T.clients.c.state === "connected" && T.clients.c.bound, undefined, 5000);
  assertEq((await server.api("GET", "/api/groups/g")).sockets, 1, "gus back in g");
  await host.teardown();
  await server.stop();
  return `noticed ${noticed} ms after SIGSTOP`;
}

/** The demo page at / works through gmws.js: state, bind, join, a message in the log, status polling. */
export async function demoPage(ctx, browserHost, { tls = null } = {}) {
  const server = await ctx.server({ tls });
  const context = await browserHost.browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  page.setDefaultTimeout(5000);
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${server.base}/`);
  await page.waitForFunction(() => document.getElementById("state").textContent === "connected");
  await page.fill("#client-id", "hana");
  await page.click("#bind");
  await page.waitForFunction(() => document.getElementById("bind-result").textContent === "bound as hana");
  await page.fill("#group", "room1");
  await page.click("#join");
  await page.waitForFunction(() => [...document.querySelectorAll("#groups li")].some((li) => li.textContent === "room1"));
  await page.waitForFunction(() => document.getElementById("group-result").textContent === "joined room1");
  assertEq((await server.api("POST", "/api/send_to_group", { group: "room1", message: { from: "api" } })).delivered, 1, "API delivery to the page");
  await page.waitForSelector('#log .entry[data-type="message"]');
  await page.waitForFunction(() => document.getElementById("online-sockets").textContent === "1", null, { timeout: 5000 });
  // The page's Send to group reaches the page itself (a member).
  await page.fill("#message", '{"text":"hi"}');
  await page.fill("#target-group", "room1");
  await page.click("#send-group");
  await page.waitForFunction(() => document.querySelectorAll('#log .entry[data-type="message"]').length >= 2);
  // A refused send shows its error: send_to_all is off by default.
  await page.click("#send-all");
  await page.waitForFunction(() => /^forbidden: /.test(document.getElementById("send-result").textContent));
  await page.click("#ping");
  await page.waitForFunction(() => /^pong in \d+ ms$/.test(document.getElementById("pong").textContent));
  // Chromium offers permessage-deflate: a message over compression_min_size
  // (256 B) reaches the page compressed, and the page shows it.
  const long = "compressed for the browser ".repeat(20);
  const before = await server.metric("gmws_messages_compressed_total");
  assertEq((await server.api("POST", "/api/send_to_group", { group: "room1", message: { text: long } })).delivered, 1, "API delivery of a long message");
  await page.waitForFunction((text) => [...document.querySelectorAll('#log .entry[data-type="message"]')].some((e) => e.textContent.includes(text)), long);
  const after = await server.metric("gmws_messages_compressed_total");
  assert(after > before, `the long message went out compressed (gmws_messages_compressed_total ${before} -> ${after})`);
  await context.close();
  await server.stop();
  if (errors.length) throw new Error(`errors in the demo page:\n${errors.join("\n")}`);
}

/** The demo page over wss (TLS on the port, a certificate made for the run), compression negotiated. */
export async function demoPageTls(ctx, browserHost) {
  await demoPage(ctx, browserHost, { tls: selfSigned() });
}

/** The gateway serves the gmws.js of this directory (else the binary is older than the file: rebuild it). */
export async function served(ctx) {
  const { readFile } = await import("node:fs/promises");
  const server = await ctx.server();
  const r = await fetch(`${server.base}/gmws.js`, { signal: AbortSignal.timeout(5000) });
  assertEq([r.status, r.headers.get("content-type")], [200, "text/javascript; charset=utf-8"], "GET /gmws.js");
  const file = await readFile(new URL("../gmws.js", import.meta.url), "utf8");
  assert((await r.text()) === file, "the binary serves another gmws.js than clients/js/gmws.js: rebuild it (cargo build --release -p gmws-cli)");
  await server.stop();
}

/** The .d.ts declares the methods and getters the class has, no more, no fewer. */
export async function declarations() {
  const { readFile } = await import("node:fs/promises");
  const { Gmws } = await import("../gmws.js");
  const dts = await readFile(new URL("../gmws.d.ts", import.meta.url), "utf8");
  const body = dts.slice(dts.indexOf("export declare class Gmws {"));
  const declared = new Set();
  for (const m of body.matchAll(/^ {2}(?:readonly )?(\w+)[<(:]/gm)) declared.add(m[1]);
  declared.delete("constructor");
  const actual = new Set(Object.getOwnPropertyNames(Gmws.prototype).filter((n) => n !== "constructor"));
  const missing = [...actual].filter((n) => !declared.has(n));
  const extra = [...declared].filter((n) => !actual.has(n));
  assertEq([missing, extra], [[], []], "class members not declared / declared but absent");
}

export { waitFor };
