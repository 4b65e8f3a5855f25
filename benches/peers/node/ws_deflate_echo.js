#!/usr/bin/env node
// Node's `ws` echo server with permessage-deflate, the peer of
// `scripts/bench-matrix.sh --deflate`.
//
//   node ws_deflate_echo.js 127.0.0.1:9004
//
// Echoes every text and binary message (16 MiB limit, like gmws's echo
// example); ws answers pings and closes itself. Compression is set to make
// the same agreement as gmws's default (no context takeover either way, so
// zlib state is not kept per socket) and to compress every message, as
// `gmws load --deflate` does:
//   PEER_DEFLATE_CONTEXT_TAKEOVER=1  keep context takeover (ws's default)
//   PEER_DEFLATE_THRESHOLD=N         leave messages under N bytes uncompressed
//                                    (default 0; ws's own default is 1024)
'use strict';

const { WebSocketServer } = require('ws');

const LIMIT = 16 << 20;

const listen = process.argv[2] || '127.0.0.1:9004';
const at = listen.lastIndexOf(':');
const host = listen.slice(0, at).replace(/^\[|\]$/g, '');
const port = Number(listen.slice(at + 1));
if (at < 0 || !Number.isInteger(port)) {
  console.error(`ws_deflate_echo: bad listen address ${JSON.stringify(listen)}`);
  process.exit(2);
}
const takeover = process.env.PEER_DEFLATE_CONTEXT_TAKEOVER === '1';
const threshold = Number(process.env.PEER_DEFLATE_THRESHOLD || 0);

const wss = new WebSocketServer({
  host,
  port,
  maxPayload: LIMIT,
  perMessageDeflate: {
    serverNoContextTakeover: !takeover,
    clientNoContextTakeover: !takeover,
    threshold,
  },
});

wss.on('listening', () => {
  console.error(
    `ws_deflate_echo: listening on ${listen} (context takeover ${takeover ? 'on' : 'off'}, threshold ${threshold})`,
  );
});
wss.on('error', (e) => {
  console.error(`ws_deflate_echo: ${e.message}`);
  process.exit(1);
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    ws.send(data, { binary: isBinary });
  });
  ws.on('error', () => ws.terminate());
});
