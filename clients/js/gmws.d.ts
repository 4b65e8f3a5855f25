// TypeScript declarations for gmws.js (kept by hand beside it; test/api.test.mjs
// checks that the methods and getters declared here are the ones the class has).

/** Any JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export type GmwsState = "idle" | "connecting" | "connected" | "disconnected" | "closed";

export interface GmwsOptions {
  /** The client id to bind as; with it the client binds on every connection. */
  clientId?: string | number;
  /** A static bind token (HS256 JWT when the server has auth_secret). Refused once: no retry. */
  token?: string;
  /**
   * Asked for a token before every bind (each connection); `reason` is
   * "auth_failed" after a refusal, when a fresh token is wanted. Wins over `token`.
   */
  getToken?: (request: { clientId: string; reason: "connect" | "auth_failed" }) => string | Promise<string>;
  /** Groups of the session: joined after every bind. */
  groups?: Iterable<string>;
  /** Connect from the constructor (default true). */
  autoConnect?: boolean;
  /** First reconnect delay cap in ms (default 500): delay = random(0, min(backoffMax, backoffInitial * 2^attempt)). */
  backoffInitial?: number;
  /** The cap of the reconnect delay in ms (default 30000). */
  backoffMax?: number;
  /** A connection connected this long (ms, default 5000) resets the backoff. */
  stableAfter?: number;
  /** A socket not open after this many ms is dropped (default 10000). */
  connectTimeout?: number;
  /** A request (bind, join, leave, ping) unanswered after this many ms drops the connection (default 10000). */
  requestTimeout?: number;
  /** With nothing received for this many ms, an application-level ping is sent (default 20000; 0: never). */
  pingInterval?: number;
  /** With nothing received this many ms after that ping, the connection is dead (default 10000). */
  pingTimeout?: number;
  /** Sends queued while not connected (default 100; 0: a send while disconnected rejects at once). */
  queueLimit?: number;
  /** Decide whether to reconnect after a close (default: always). */
  shouldReconnect?: (close: { code: number; reason: string }) => boolean;
  /** WebSocket subprotocols to offer. */
  protocols?: string | string[];
  /** A WebSocket constructor, where there is no global one (e.g. the `ws` package). */
  WebSocket?: new (url: string, protocols?: string | string[]) => WebSocket;
}

export declare const DEFAULTS: Readonly<{
  autoConnect: boolean;
  backoffInitial: number;
  backoffMax: number;
  stableAfter: number;
  connectTimeout: number;
  requestTimeout: number;
  pingInterval: number;
  pingTimeout: number;
  queueLimit: number;
}>;

export type ErrorCode =
  | "bad_json"
  | "unknown_type"
  | "not_bound"
  | "auth_failed"
  | "forbidden"
  | "too_many_groups"
  | "bad_request"
  | "unsupported"
  | "rate_limited"
  | "too_large"
  // client-side
  | "disconnected"
  | "timeout"
  | "closed"
  | "queue_full"
  | "cancelled"
  | "no_client_id"
  | "token_error"
  | (string & {});

/** An error envelope of the server, or a client-side failure. */
export declare class GmwsError extends Error {
  constructor(code: string, message: string, extra?: { request?: string; id?: number | string; cause?: unknown });
  readonly name: "GmwsError";
  readonly code: ErrorCode;
  /** The request type the server refused (`data.request` of the error envelope). */
  readonly request?: string;
  /** The id of the request the error belongs to. */
  readonly id?: number | string;
  /** True when it came from an error envelope. */
  readonly fromServer: boolean;
}

/** Where a message came from: a socket (and its client id, when bound) or the HTTP API. */
export type MessageFrom = { socket_id: string; client_id: string | null } | "server";

/** The data of a `message` envelope. */
export interface GmwsMessage<M = Json> {
  from: MessageFrom;
  to: { all: true } | { group: string } | { client: string } | { socket: string };
  message: M;
}

export interface Welcome {
  socket_id: string;
  auth_timeout: number;
}

export type StateInfo =
  | { attempt: number } // connecting
  | { socketId: string | null; clientId: string | null } // connected
  | { code: number; reason: string; delay: number | null; attempt?: number; error?: GmwsError } // disconnected
  | { code: number; reason: string }; // closed

export interface Envelope {
  type: string;
  id?: number | string;
  data?: any;
}

export interface GmwsEvents {
  message: (message: GmwsMessage) => void;
  welcome: (welcome: Welcome) => void;
  error: (error: GmwsError) => void;
  state: (state: GmwsState, info: StateInfo) => void;
  envelope: (envelope: Envelope) => void;
}

export declare class Gmws {
  constructor(url: string | URL, options?: GmwsOptions);

  readonly state: GmwsState;
  /** The socket id of the current connection. */
  readonly socketId: string | null;
  /** The client id of the session. */
  readonly clientId: string | null;
  /** True when the current connection is bound. */
  readonly bound: boolean;
  /** The groups of the session. */
  readonly groups: string[];
  /** Sends waiting for a connection. */
  readonly queued: number;

  on<E extends keyof GmwsEvents>(event: E, listener: GmwsEvents[E]): () => void;
  off<E extends keyof GmwsEvents>(event: E, listener: GmwsEvents[E]): void;

  /** Open a connection now; no-op while connecting or connected. */
  connect(): void;
  /** Close and stop reconnecting; the session is kept for connect(). */
  close(code?: number, reason?: string): void;
  /** Resolves once connected; rejects when closed or stopped. */
  ready(): Promise<void>;

  /** Bind (and keep binding on every connection); a token here replaces token/getToken. */
  bind(clientId?: string | number, token?: string): Promise<{ socketId: string | null; clientId: string }>;
  /** Join a group of the session; resolves on the server's reply. */
  join(group: string): Promise<{ group: string }>;
  /** Leave a group of the session. */
  leave(group: string): Promise<{ group: string }>;
  /** Application-level ping; resolves with the round trip in ms. */
  ping(): Promise<number>;

  /** Resolve with the request id once written (queued while disconnected, up to queueLimit). */
  sendToAll(message: Json): Promise<number>;
  sendToGroup(group: string, message: Json): Promise<number>;
  sendToClient(clientId: string | number, message: Json): Promise<number>;
}

export default Gmws;
