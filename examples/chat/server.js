// The chat's backend: logs people in, keeps their sockets (through ./wsdeploy, which `wsdeploy init --backend
// express` wrote), lets them join rooms (everyone is in the lobby) and publishes each message to its room's members
// through @connections; who is online in a room is the template's presence. Run by `wsdeploy dev` (see
// wsdeploy.yaml), which first writes .env and .env.frontend.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const express = require('express');
const { socketConnections, SocketService, MemoryConnectionStore } = require('./wsdeploy');

// The backend's env file: @connections endpoint, region, keys and the Lambdas' signing secret.
process.loadEnvFile(path.join(__dirname, '.env'));

const ROOMS = ['lobby', 'random'];
const store = new MemoryConnectionStore();
// Keeps each user's last messages, so that a page that reconnects gets what it missed (see ./wsdeploy). The sweep
// finds sockets whose $disconnect never came (CHAT_SWEEP_MS shortens it for a test; minutes by default).
const sweepMs = Number(process.env.CHAT_SWEEP_MS) || undefined;
const sockets = new SocketService(store, process.env, { sweep: sweepMs ? { intervalMs: sweepMs, idleMs: sweepMs } : {} });
const tokens = new Map(); // token -> user name; a real app verifies its JWTs or sessions instead
const history = new Map(ROOMS.map((room) => [room, []])); // each room's last messages, for pages that (re)load

const app = express();
app.disable('x-powered-by');

app.use(
  socketConnections({
    express,
    store,
    sockets,
    userFromToken: (token) => tokens.get(token) ?? null,
    signingSecret: process.env.WS_SIGNING_SECRET,
    previousSigningSecret: process.env.WS_SIGNING_SECRET_PREVIOUS,
  }),
);

const bearer = (req) => tokens.get(/^Bearer (.+)$/.exec(req.get('authorization') || '')?.[1]);
const signedIn = (req, res) => bearer(req) ?? void res.status(401).json({ error: 'log in first' });
const roomOf = (req, res) => {
  const room = req.params.room ?? req.body?.room ?? 'lobby';
  return ROOMS.includes(room) ? room : void res.status(404).json({ error: `no room ${room}: ${ROOMS.join(', ')}` });
};

app.post('/login', express.json(), async (req, res, next) => {
  try {
    const name = String(req.body?.name ?? '').trim();
    if (!/^[\p{L}\p{N} _.-]{1,32}$/u.test(name)) {
      return res.status(400).json({ error: 'a name of 1 to 32 letters, digits, spaces, _ . or -' });
    }
    const token = crypto.randomBytes(24).toString('base64url');
    tokens.set(token, name);
    // Everyone who joined is in the lobby: a message is for them, connected at this instant or not.
    await sockets.subscribe(name, 'lobby');
    res.json({ token, name, rooms: ROOMS, history: history.get('lobby') });
  } catch (err) {
    next(err);
  }
});

// Joins a room (idempotent): its history and who is online in it now; from then on its messages and presence.
app.post('/rooms/:room/join', async (req, res, next) => {
  try {
    const name = signedIn(req, res);
    const room = name && roomOf(req, res);
    if (!room) return;
    await sockets.subscribe(name, room);
    res.json({ room, history: history.get(room), online: await sockets.presence(room) });
  } catch (err) {
    next(err);
  }
});

app.get('/rooms/:room/online', async (req, res, next) => {
  try {
    const room = signedIn(req, res) && roomOf(req, res);
    if (room) res.json({ room, online: await sockets.presence(room) });
  } catch (err) {
    next(err);
  }
});

app.post('/messages', express.json(), async (req, res, next) => {
  try {
    const from = signedIn(req, res);
    const room = from && roomOf(req, res);
    if (!room) return;
    if (!(await store.topicsOf(from)).includes(room)) return res.status(403).json({ error: `join ${room} first` });
    const text = String(req.body?.text ?? '').trim().slice(0, 2000);
    if (!text) return res.status(400).json({ error: 'empty message' });
    const message = { type: 'message', room, from, text, at: new Date().toISOString() };
    const kept = history.get(room);
    kept.push(message);
    if (kept.length > 50) kept.shift();
    // The room's members, sender included: every tab of each, a bounded number of posts at a time; a page between
    // two sockets gets it when it resumes.
    const { delivered } = await sockets.publish(room, message);
    res.json({ delivered });
  } catch (err) {
    next(err);
  }
});

// Stands in for a bundler: Vite would inline VITE_WS_URL from .env.frontend at build time.
app.get('/env.js', (_req, res) => {
  const text = fs.readFileSync(path.join(__dirname, '.env.frontend'), 'utf8');
  const url = /^VITE_WS_URL=(.*)$/m.exec(text)?.[1]?.trim().replace(/^"(.*)"$/, '$1');
  res.type('text/javascript').set('cache-control', 'no-store');
  res.send(`export const WS_URL = ${JSON.stringify(url ?? '')};\n`);
});
app.use(express.static(path.join(__dirname, 'public')));

app.use((err, _req, res, _next) => {
  console.error(err);
  res.status(500).json({ error: 'internal error' });
});

const port = Number(process.env.PORT || 3000);
const server = app.listen(port, '127.0.0.1', () => {
  console.log(`chat backend listening on http://127.0.0.1:${port}/`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
