// Two users chat in headless Chromium through the example app (examples/chat) under
// `wsdeploy dev --idle-timeout 3s --max-connection 10s`, then the backend pushes a numbered message every 200 ms
// for PUSH_SECONDS: each page must show every one exactly once, in order, across the sockets API Gateway's limits
// make it go through. alice renews her socket before the limit (make-before-break, renewMs 7 s); bob does not
// (renewMs 60 s), so the gateway drops him every 10 s and he comes back with backoff and resumes.
//   node chat.mjs <page URL> <screenshot.png>
// Run by tests/it/example.rs, which starts `wsdeploy dev` (and with it the example's backend) first.
// Exits 0 when every step passed, printing a JSON summary last; otherwise prints the step that failed, the pages'
// console and exits 1.
import { launch, watch } from './browser.mjs';

const [url, screenshot] = process.argv.slice(2);
if (!url || !screenshot) {
  console.error('usage: node chat.mjs <page URL> <screenshot.png>');
  process.exit(2);
}
const STEP_MS = 15_000;
const PUSH_SECONDS = Number(process.env.PUSH_SECONDS || 30);
const PUSH_EVERY_MS = 200;
// Inside the gateway's 3 s idle limit, and alice's renewal inside its 10 s connection limit.
const TIMERS = { alice: '&heartbeatMs=1000&renewMs=7000', bob: '&heartbeatMs=1000&renewMs=60000' };
const log = [];

const browser = await launch();

let step = 'start';
let pageA;
let pageB;
try {
  const sockets = { alice: 0, bob: 0 };
  const open = async (name) => {
    const context = await browser.newContext({ viewport: { width: 720, height: 560 } });
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    watch(page, name, log);
    page.on('websocket', () => {
      sockets[name] += 1;
    });
    await page.goto(`${url}?user=${name}${TIMERS[name]}`);
    return page;
  };
  const connected = (page) =>
    page.waitForSelector('#status[data-status="connected"]', { timeout: STEP_MS });
  const send = async (page, text) => {
    await page.fill('#text', text);
    await page.click('#send button');
  };
  const sees = (page, from, text) =>
    page.locator('#messages li', { hasText: text }).filter({ hasText: from }).first().waitFor();

  step = 'both users open the page and authenticate their socket';
  pageA = await open('alice');
  pageB = await open('bob');
  await Promise.all([connected(pageA), connected(pageB)]);

  step = "alice's message (POST /messages) reaches bob's page through @connections";
  await send(pageA, 'hello bob');
  await sees(pageB, 'alice', 'hello bob');
  await sees(pageA, 'alice', 'hello bob');

  step = "bob reloads: a new socket, authenticated again";
  await pageB.reload();
  await connected(pageB);

  step = 'after the reload, bob still receives';
  await send(pageA, 'still there?');
  await sees(pageB, 'alice', 'still there?');

  step = "bob answers; alice's page shows it";
  await send(pageB, 'yes!');
  await sees(pageA, 'bob', 'yes!');

  step = `the backend pushes a numbered message every ${PUSH_EVERY_MS} ms for ${PUSH_SECONDS} s`;
  const before = { ...sockets };
  // Every status each page shows from now on.
  for (const page of [pageA, pageB]) {
    await page.evaluate(() => {
      const el = document.getElementById('status');
      window.statuses = [];
      new MutationObserver(() => window.statuses.push(el.dataset.status)).observe(el, { attributes: true });
    });
  }
  const { token } = await (await fetch(new URL('/login', url), {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'ticker' }),
  })).json();
  const count = Math.round((PUSH_SECONDS * 1000) / PUSH_EVERY_MS);
  const started = Date.now();
  for (let n = 1; n <= count; n++) {
    const res = await fetch(new URL('/messages', url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ text: `tick ${n}` }),
    });
    if (!res.ok) throw new Error(`POST /messages for tick ${n}: HTTP ${res.status} ${await res.text()}`);
    const wait = started + n * PUSH_EVERY_MS - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }

  step = `each page shows tick 1 to ${count} exactly once, in order`;
  const ticks = (page) =>
    page.$$eval('#messages li span', (spans) =>
      spans.map((s) => s.textContent).filter((t) => /^tick \d+$/.test(t)).map((t) => Number(t.slice(5))));
  for (const page of [pageA, pageB]) {
    await page.locator('#messages li span', { hasText: new RegExp(`^tick ${count}$`) }).first().waitFor();
  }
  const expected = Array.from({ length: count }, (_, i) => i + 1);
  const summary = { ticks: count, sockets: {}, gaps: {}, statuses: {} };
  for (const [page, name] of [[pageA, 'alice'], [pageB, 'bob']]) {
    const got = await ticks(page);
    if (JSON.stringify(got) !== JSON.stringify(expected)) {
      const missing = expected.filter((n) => !got.includes(n));
      const twice = got.filter((n, i) => got.indexOf(n) !== i);
      const late = got.filter((n, i) => i > 0 && n < got[i - 1]);
      throw new Error(`${name} got ${got.length} ticks: missing [${missing}], twice [${twice}], out of order [${late}]`);
    }
    summary.sockets[name] = sockets[name] - before[name];
    summary.gaps[name] = await page.locator('#messages li.gap').count();
    summary.statuses[name] = [...new Set(await page.evaluate(() => window.statuses))].sort();
  }

  await pageB.screenshot({ path: screenshot, fullPage: true });
  console.log(`ok: chat between two pages, a reload included; ${count} pushes each arrived once, in order; screenshot ${screenshot}`);
  console.log(JSON.stringify(summary));
} catch (err) {
  console.error(`FAILED at step: ${step}\n${err.message}\n\n-- browser log --\n${log.join('\n')}`);
  for (const [page, name] of [[pageB, 'bob'], [pageA, 'alice']]) {
    if (page) {
      await page.screenshot({ path: screenshot.replace(/\.png$/, `-${name}-failed.png`) }).catch(() => {});
    }
  }
  process.exitCode = 1;
} finally {
  await browser.close();
}
