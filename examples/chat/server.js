// The chat's backend: logs people in, keeps their sockets (through ./wsdeploy, which `wsdeploy init --backend
// express` wrote) and publishes every message to the lobby, which everyone joins, through @connections. Run by `wsdeploy dev` (see
// wsdeploy.yaml), which first writes .env and .env.frontend.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const express = require('express');
const { socketConnections, SocketService, MemoryConnectionStore } = require('./wsdeploy');

// The backend's env file: @connections endpoint, region, keys and the Lambdas' signing secret.
process.loadEnvFile(path.join(__dirname, '.env'));

const store = new MemoryConnectionStore();
// Keeps each user's last messages, so that a page that reconnects gets what it missed (see ./wsdeploy).
const sockets = new SocketService(store);
const tokens = new Map(); // token -> user name; a real app verifies its JWTs or sessions instead
const history = [];       // the last messages, for pages that (re)load

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
    res.json({ token, name, history });
  } catch (err) {
    next(err);
  }
});

app.post('/messages', express.json(), async (req, res, next) => {
  try {
    const from = bearer(req);
    if (!from) return res.status(401).json({ error: 'log in first' });
    const text = String(req.body?.text ?? '').trim().slice(0, 2000);
    if (!text) return res.status(400).json({ error: 'empty message' });
    const message = { type: 'message', from, text, at: new Date().toISOString() };
    history.push(message);
    if (history.length > 50) history.shift();
    // The lobby, sender included: every tab of every member, a bounded number of posts at a time; a page between
    // two sockets gets it when it resumes.
    const { delivered } = await sockets.publish('lobby', message);
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
