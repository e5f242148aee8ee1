// What the Chromium scripts (chat.mjs, rooms.mjs, react.mjs) share: Debian's chromium, headless and kept off the
// network (this machine has none beyond loopback), a page's console and sockets in the log a failure prints, and a
// JSON client for the example's REST endpoints.
import { chromium } from 'playwright-core';

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    timeout: 30_000,
  });
}

/** Writes `page`'s console, errors, sockets and the frames they receive into `log`, each line tagged with `name`. */
export function watch(page, name, log) {
  page.on('console', (m) => log.push(`[${name} console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log.push(`[${name} pageerror] ${e.message}`));
  page.on('websocket', (ws) => {
    log.push(`[${name}] websocket ${ws.url()}`);
    ws.on('framereceived', (f) => log.push(`[${name}] <- ${String(f.payload).slice(0, 200)}`));
    ws.on('close', () => log.push(`[${name}] websocket closed`));
  });
}

/** `rest(method, path, body, token)` against the page's origin `base`: the parsed JSON, or an error with the answer. */
export function restClient(base) {
  return async (method, path, body, token) => {
    const res = await fetch(new URL(path, base), {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${await res.text()}`);
    return res.json();
  };
}
