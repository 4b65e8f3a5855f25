// Compiled (never run) by `npm run typecheck`: the API as an application uses
// it, against gmws.d.ts. A mismatch is a compile error.
import Gmws_, { DEFAULTS, Gmws, GmwsError, type GmwsMessage, type GmwsState, type StateInfo } from "../gmws.js";

const Default: typeof Gmws = Gmws_;
const timeout: number = DEFAULTS.requestTimeout;

async function example(): Promise<void> {
  const c = new Default("ws://127.0.0.1:8080/", {
    clientId: "alice",
    getToken: async ({ clientId, reason }) => `${clientId}:${reason}`,
    groups: ["room1"],
    queueLimit: 10,
    requestTimeout: timeout,
    shouldReconnect: ({ code }) => code !== 4000,
  });
  const off: () => void = c.on("message", (m: GmwsMessage) => {
    const from: string = m.from === "server" ? "server" : m.from.socket_id;
    console.log(from, m.message);
  });
  off();
  c.on("state", (state: GmwsState, info: StateInfo) => console.log(state, info));
  c.on("error", (e: GmwsError) => console.log(e.code, e.message, e.request, e.id, e.fromServer));
  c.on("welcome", (w) => console.log(w.socket_id, w.auth_timeout));
  c.on("envelope", (env) => console.log(env.type, env.id));
  const bound: { socketId: string | null; clientId: string } = await c.bind();
  await c.bind("bob", "token");
  const joined: { group: string } = await c.join("room1");
  await c.leave(joined.group);
  const id: number = await c.sendToGroup("room1", { text: "hi", n: [1, 2, null] });
  await c.sendToAll("x");
  await c.sendToClient(42, true);
  const rtt: number = await c.ping();
  await c.ready();
  const s: GmwsState = c.state;
  const info: [string | null, string | null, boolean, string[], number] = [c.socketId, c.clientId, c.bound, c.groups, c.queued];
  console.log(bound, id, rtt, s, info);
  c.close(1000, "bye");
  c.connect();
  try {
    await c.join("x");
  } catch (e) {
    if (e instanceof GmwsError && e.code === "too_many_groups") console.log(e.request);
  }
  // @ts-expect-error: a message must be JSON
  await c.sendToAll(() => 1);
  // @ts-expect-error: no such event
  c.on("nope", () => {});
}

void example;
