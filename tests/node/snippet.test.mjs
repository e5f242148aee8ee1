// The frontend snippet's own logic (templates/frontend/wsdeploy-socket.js), driven through a socket this file plays
// the gateway side of: authentication, the heartbeat, make-before-break renewal, backoff with jitter, resume and
// in-order delivery. Real sockets and a real browser are tests/node/chat.mjs's part.
//   SUBJECT=/path/to/wsdeploy-socket.mjs node --test snippet.test.mjs
// Run by tests/it/templates.rs, which copies the snippet to a .mjs file first (Node 20 loads .js as CommonJS).
import { test } from 'node:test';
import assert from 'node:assert/strict';

const { connectSocket } = await import(process.env.SUBJECT);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tick = () => sleep(1);
// Waits for what a timer of the snippet's should bring about: at most 5 s, so that a loaded machine is no failure.
async function until(what, condition) {
  for (const deadline = Date.now() + 5000; !condition(); await sleep(2)) {
    if (Date.now() > deadline) throw new Error(`waited 5 s in vain for: ${what}`);
  }
}

class FakeSocket {
  static all = [];
  constructor(url) {
    Object.assign(this, { url, sent: [], readyState: 0, closedWith: null });
    FakeSocket.all.push(this);
  }
  send(text) {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.sent.push(JSON.parse(text));
  }
  close(code) {
    if (this.readyState >= 2) return;
    this.readyState = 3;
    this.closedWith = code ?? 1005;
    this.onclose?.({ code });
  }
  // The gateway's side.
  async accept() {
    this.readyState = 1;
    this.onopen?.();
    await tick();
  }
  receive(message) {
    if (this.readyState === 1) this.onmessage?.({ data: typeof message === 'string' ? message : JSON.stringify(message) });
  }
  drop() {
    this.readyState = 3;
    this.onclose?.({ code: 1001 });
  }
  auths() {
    return this.sent.filter((m) => m.action === 'auth');
  }
  pings() {
    return this.sent.filter((m) => m.action === 'ping').length;
  }
}

const OK = { type: 'auth', ok: true };
const push = (id, data = `m${id}`) => ({ type: 'push', id, data });

function start(options = {}) {
  FakeSocket.all = [];
  const seen = { statuses: [], details: [], got: [], gaps: [] };
  const socket = connectSocket({
    url: 'ws://127.0.0.1:3001/local',
    getToken: async () => 'tok',
    onMessage: (data) => seen.got.push(data),
    onStatus: (status, detail) => {
      seen.statuses.push(status);
      seen.details.push(detail);
    },
    onGap: (gap) => seen.gaps.push(gap),
    WebSocket: FakeSocket,
    ...options,
  });
  return { socket, seen, sockets: FakeSocket.all };
}

async function connected(options) {
  const s = start(options);
  await s.sockets[0].accept();
  s.sockets[0].receive(OK);
  return s;
}

test('authenticates, then hands each numbered push over once and in order', async (t) => {
  const { socket, seen, sockets } = start();
  t.after(() => socket.close());
  const [ws] = sockets;
  await ws.accept();
  assert.deepEqual(ws.auths(), [{ action: 'auth', token: 'tok' }], 'a first socket has nothing to resume');
  ws.receive(OK);
  assert.deepEqual(seen.statuses, ['connecting', 'authenticating', 'connected']);
  for (const m of [push(5), push(6), push(6), push(8), push(7), { action: 'pong' }, { n: 1 }, 'plain text', push(4)]) {
    ws.receive(m);
  }
  assert.deepEqual(seen.got, ['m5', 'm6', 'm7', 'm8', { n: 1 }, 'plain text']);
  assert.equal(socket.lastId, 8);
});

test('topic messages share the one sequence and say their topic; presence events go to onPresence, unnumbered', async (t) => {
  const got = [];
  const presence = [];
  const { socket, sockets } = await connected({
    onMessage: (data, meta) => got.push([data, meta]),
    onPresence: (event) => presence.push(event),
  });
  t.after(() => socket.close());
  const [ws] = sockets;
  ws.receive({ type: 'push', id: 10, topic: 'room-1', data: 'a' });
  ws.receive({ type: 'presence', topic: 'room-1', userId: 'bob', online: true });
  ws.receive({ type: 'push', id: 12, data: 'c' });
  ws.receive({ type: 'push', id: 11, topic: 'room-2', data: 'b' });
  assert.deepEqual(got, [
    ['a', { id: 10, topic: 'room-1' }],
    ['b', { id: 11, topic: 'room-2' }],
    ['c', { id: 12 }],
  ]);
  assert.deepEqual(presence, [{ topic: 'room-1', userId: 'bob', online: true }]);
  assert.equal(socket.lastId, 12, 'one id to resume every topic with');
});

test('pings the open socket at its interval and stops with it', async () => {
  const { socket, sockets } = await connected({ heartbeatMs: 10 });
  await until('3 pings', () => sockets[0].pings() >= 3);
  const pings = sockets[0].pings();
  socket.close();
  await sleep(30);
  assert.equal(sockets[0].pings(), pings, 'no ping after close');
  assert.equal(sockets[0].closedWith, 1000);
});

test('renews before the limit: the old socket closes only once the new one is authenticated', async (t) => {
  const { socket, seen, sockets } = await connected({ renewMs: 30 });
  t.after(() => socket.close());
  const [old] = sockets;
  old.receive(push(1));
  await until('a second socket before the limit', () => sockets.length === 2);
  const fresh = sockets[1];
  await fresh.accept();
  assert.deepEqual(fresh.auths(), [{ action: 'auth', token: 'tok', resumeAfter: 1 }]);
  // Until the new socket is authenticated the old one still delivers; the replay and the doubled sends that follow
  // arrive on both and are handed over once.
  old.receive(push(2));
  fresh.receive(push(2));
  assert.equal(old.closedWith, null, 'the old socket is open while the new one authenticates');
  fresh.receive(OK);
  assert.equal(old.closedWith, 1000, 'and closed as soon as it is');
  old.receive(push(3));
  fresh.receive(push(3));
  assert.deepEqual(seen.got, ['m1', 'm2', 'm3']);
  assert.deepEqual(seen.statuses, ['connecting', 'authenticating', 'connected', 'renewing', 'connected']);
  assert.equal(socket.socket, fresh);
});

test('after a drop it reconnects with exponential backoff and full jitter, then resumes', async (t) => {
  const random = Math.random;
  t.after(() => {
    Math.random = random;
  });
  const { socket, seen, sockets } = await connected({ backoff: { initialMs: 4, maxMs: 20 } });
  t.after(() => socket.close());
  sockets[0].receive(push(41));
  Math.random = () => 1; // the top of each jitter range: the backoff's ceiling itself
  sockets[0].drop();
  for (let failed = 1; failed <= 4; failed++) {
    await until(`attempt ${failed}`, () => sockets.length === failed + 1);
    if (failed === 4) Math.random = () => 0.5; // and a draw from inside the range
    sockets[failed].drop(); // refused before it opened
  }
  await until('attempt 5', () => sockets.length === 6);
  const last = sockets.at(-1);
  await last.accept();
  assert.deepEqual(last.auths(), [{ action: 'auth', token: 'tok', resumeAfter: 41 }]);
  last.receive(OK);
  const delays = seen.details.filter(Boolean).map((d) => [d.attempt, d.delayMs]);
  // A dropped socket is replaced at once but for jitter; each failure doubles the range, up to maxMs.
  assert.deepEqual(delays, [[1, 4], [2, 8], [3, 16], [4, 20], [5, 10]]);
  assert.equal(seen.statuses.at(-1), 'connected');
});

test('a missing message is waited for, then reported as a gap and skipped', async (t) => {
  const { socket, seen, sockets } = await connected({ gapMs: 20 });
  t.after(() => socket.close());
  const [ws] = sockets;
  ws.receive(push(1));
  ws.receive(push(4));
  ws.receive(push(5));
  assert.deepEqual(seen.got, ['m1']);
  await until('the gap', () => seen.gaps.length > 0);
  assert.deepEqual(seen.gaps, [{ after: 1, next: 4 }]);
  ws.receive(push(2));
  assert.deepEqual(seen.got, ['m1', 'm4', 'm5'], 'a late message behind the gap is not handed over out of order');
});

test('a retryable refusal retries; a refused token stops for good', async () => {
  const { seen, sockets } = start({ backoff: { initialMs: 1, maxMs: 1 } });
  await sockets[0].accept();
  sockets[0].receive({ type: 'auth', ok: false, error: 'backend unavailable', retry: true });
  await until('a retry: the backend was down', () => sockets.length === 2);
  await sockets[1].accept();
  sockets[1].receive({ type: 'auth', ok: false, error: 'unauthorized' });
  await sleep(20);
  assert.equal(sockets.length, 2, 'the same token would be refused again');
  assert.deepEqual(seen.statuses.slice(-2), ['unauthorized', 'closed']);
  assert.equal(sockets[1].readyState, 3);
});

test('a socket that never authenticates is given up and replaced', async () => {
  const { socket, sockets } = start({ authTimeoutMs: 15, backoff: { initialMs: 1, maxMs: 1 } });
  await sockets[0].accept();
  await until('a new socket after the auth timeout', () => sockets.length >= 2);
  socket.close();
  assert.equal(sockets[0].readyState, 3);
});

test('refuses URLs that would carry the token in cleartext', () => {
  const urls = {
    'wss://abc.execute-api.eu-west-3.amazonaws.com/prod': true,
    'ws://127.0.0.1:3001/local': true,
    'ws://localhost:3001/local': true,
    'ws://[::1]:3001/local': true,
    'ws://api.example.com/prod': false,
    'ws://192.168.1.20:3001/local': false,
    'http://127.0.0.1:3001/local': false,
  };
  for (const [url, allowed] of Object.entries(urls)) {
    const attempt = () => connectSocket({ url, getToken: async () => 't', onMessage: () => {}, WebSocket: FakeSocket }).close();
    if (allowed) attempt();
    else assert.throws(attempt, /cleartext/, url);
  }
});
