// Two users chat in headless Chromium through the example app (examples/chat) under `wsdeploy dev`.
//   node chat.mjs <page URL> <screenshot.png>
// Run by tests/it/browser.rs, which starts `wsdeploy dev` (and with it the example's backend) first.
// Exits 0 when every step passed; otherwise prints the step that failed, the pages' console and exits 1.
import { chromium } from 'playwright-core';

const [url, screenshot] = process.argv.slice(2);
if (!url || !screenshot) {
  console.error('usage: node chat.mjs <page URL> <screenshot.png>');
  process.exit(2);
}
const STEP_MS = 15_000;
const log = [];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // This machine has no network beyond loopback: keep Chromium from trying to phone home.
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
  timeout: 30_000,
});

let step = 'start';
let pageA;
let pageB;
try {
  const open = async (name) => {
    const context = await browser.newContext({ viewport: { width: 720, height: 560 } });
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    page.on('console', (m) => log.push(`[${name} console.${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => log.push(`[${name} pageerror] ${e.message}`));
    page.on('websocket', (ws) => {
      log.push(`[${name}] websocket ${ws.url()}`);
      ws.on('framereceived', (f) => log.push(`[${name}] <- ${f.payload}`));
      ws.on('close', () => log.push(`[${name}] websocket closed`));
    });
    await page.goto(`${url}?user=${name}`);
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

  await pageB.screenshot({ path: screenshot, fullPage: true });
  console.log(`ok: chat between two pages, a reload included; screenshot ${screenshot}`);
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
