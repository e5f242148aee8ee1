// What the Chromium scripts (chat.mjs, rooms.mjs, react.mjs) share: Debian's chromium, headless and kept off the
// network (this machine has none beyond loopback), and a JSON client for the example's REST endpoints.
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
