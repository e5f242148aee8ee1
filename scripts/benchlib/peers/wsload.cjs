// The WebSocket side of scripts/bench: the same client against wsdeploy dev and each peer. One JSON command per line
// on stdin, one JSON answer per line on stdout; it keeps its sockets between commands and stops when stdin ends.
// Node and `ws` rather than Python: a handshake costs the client a fraction of what it costs asyncio, so the gateway,
// not the client, is what a connection rate measures.
'use strict';
const WebSocket = require('ws');
const readline = require('node:readline');

const AUTH = JSON.stringify({ action: 'auth', token: 'bench' });
const idle = [];
let session = null;
let received = 0;
// The fan-out audience: authenticated sockets, each its own user; each counts its pushes, the last one's time kept.
const audience = [];
const pushes = { lastAt: 0 };

function connect(url, timeoutMs) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => {
      ws.terminate();
      reject(new Error(`HTTP ${res.statusCode}`));
    });
  });
}

function next(ws, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.off('message', on);
      reject(new Error(`no message within ${timeoutMs} ms`));
    }, timeoutMs);
    function on(data) {
      clearTimeout(timer);
      resolve(data.toString());
    }
    ws.once('message', on);
  });
}

// The connection's id: from the auth reply where the app puts it there, else from API Gateway's answer to a route
// that does not exist ({"message": "Forbidden", "connectionId": ...}).
async function handshake(url) {
  const ws = await connect(url, 30000);
  ws.send(AUTH);
  const reply = JSON.parse(await next(ws, 30000));
  if (reply.type !== 'auth' || reply.ok !== true) throw new Error(`auth answered ${JSON.stringify(reply)}`);
  let id = reply.connectionId;
  if (!id) {
    ws.send(JSON.stringify({ action: 'bench-no-such-route' }));
    id = JSON.parse(await next(ws, 30000)).connectionId;
  }
  return { ws, id, reply };
}

const commands = {
  async session({ url }) {
    const s = await handshake(url);
    session = s.ws;
    session.on('message', () => { received += 1; });
    return { connectionId: s.id, reply: s.reply };
  },
  // Warm round trips, one at a time: route -> handler -> reply.
  async latency({ n, warm, seconds }) {
    session.removeAllListeners('message');
    // The warm-up takes at most a fifth of the time: a gateway that spawns a process per message gets samples too.
    const warmDeadline = Date.now() + seconds * 200;
    for (let i = 0; i < warm && Date.now() < warmDeadline; i++) {
      session.send(AUTH);
      await next(session, 10000);
    }
    const deadline = Date.now() + seconds * 1000;
    const samples = [];
    while (samples.length < n && Date.now() < deadline) {
      const t = process.hrtime.bigint();
      session.send(AUTH);
      await next(session, 10000);
      samples.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    session.on('message', () => { received += 1; });
    return { samples };
  },
  // Up to n idle sockets, `concurrency` handshakes at a time, until n or the time is up.
  async open({ url, n, concurrency, seconds }) {
    const started = Date.now();
    const deadline = started + seconds * 1000;
    const errors = {};
    let opened = 0;
    let failed = 0;
    let launched = 0;
    async function worker() {
      while (launched < n && Date.now() < deadline) {
        launched += 1;
        try {
          const ws = await connect(url, Math.max(1000, deadline - Date.now()));
          ws.on('error', () => {});
          idle.push(ws);
          opened += 1;
        } catch (e) {
          failed += 1;
          errors[e.message] = (errors[e.message] || 0) + 1;
          if (failed > 100 && failed > opened) break;
        }
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker));
    return { opened, failed, seconds: (Date.now() - started) / 1000, errors, timed_out: opened + failed < n };
  },
  async alive() {
    return { open: idle.filter((ws) => ws.readyState === WebSocket.OPEN).length };
  },
  async count() {
    return { received };
  },
  // A socket that authenticated and then closed: what a push to a departed client meets.
  async gone({ url }) {
    const s = await handshake(url);
    await new Promise((resolve) => { s.ws.once('close', resolve); s.ws.close(); });
    await new Promise((resolve) => setTimeout(resolve, 500));
    return { connectionId: s.id };
  },
  // n sockets that authenticate as users `${prefix}0`, `${prefix}1`... (`concurrency` at a time, within `seconds`).
  async authed({ url, n, concurrency, seconds, prefix }) {
    const started = Date.now();
    const deadline = started + seconds * 1000;
    let launched = 0;
    let failed = 0;
    const errors = {};
    async function worker() {
      while (launched < n && Date.now() < deadline) {
        const i = launched++;
        try {
          const ws = await connect(url, 30000);
          ws.on('error', () => {});
          ws.send(JSON.stringify({ action: 'auth', token: `${prefix}${i}` }));
          const reply = JSON.parse(await next(ws, 30000));
          if (reply.type !== 'auth' || reply.ok !== true) throw new Error(`auth answered ${JSON.stringify(reply)}`);
          ws.got = 0;
          ws.on('message', (data) => {
            if (data.toString().startsWith('{"type":"push"')) {
              ws.got += 1;
              pushes.lastAt = performance.now();
            }
          });
          audience.push(ws);
        } catch (e) {
          failed += 1;
          errors[e.message] = (errors[e.message] || 0) + 1;
          if (failed > 100 && failed > audience.length) break;
        }
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker));
    return { opened: audience.length, failed, seconds: (Date.now() - started) / 1000, errors };
  },
  // POSTs `url` (the backend's publish) and waits until every socket of the audience got the push: the time from
  // the call to the last delivery, measured on this one clock.
  // `got`: sockets that received it; `extra`: pushes beyond one per socket (after a settling half second).
  async publish({ url, seconds }) {
    for (const ws of audience) ws.got = 0;
    const reached = () => audience.filter((ws) => ws.got > 0).length;
    const started = performance.now();
    const reply = await fetch(url, { method: 'POST' }).catch((e) => {
      throw new Error(`${e.message}: ${e.cause?.message ?? e.cause}`);
    });
    const answer = await reply.json();
    const deadline = Date.now() + seconds * 1000;
    while (reached() < audience.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    const toLast = pushes.lastAt - started;
    await new Promise((r) => setTimeout(r, 500));
    const extra = audience.reduce((n, ws) => n + Math.max(0, ws.got - 1), 0);
    return { got: reached(), extra, expected: audience.length, to_last_ms: toLast, backend: answer };
  },
  async close() {
    for (const ws of audience.splice(0)) ws.terminate();
    for (const ws of idle.splice(0)) ws.terminate();
    if (session) session.terminate();
    session = null;
    return {};
  },
};

const rl = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
rl.on('line', (line) => {
  queue = queue.then(async () => {
    let answer;
    try {
      const c = JSON.parse(line);
      answer = await commands[c.cmd](c);
    } catch (e) {
      answer = { error: e.message };
    }
    process.stdout.write(`${JSON.stringify(answer)}\n`);
  });
});
rl.on('close', () => queue.then(() => process.exit(0)));
