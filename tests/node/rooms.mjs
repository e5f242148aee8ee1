// Rooms, presence and resume in headless Chromium through the example app (examples/chat) under
// `wsdeploy dev --lose-disconnects 100` with the backend's sweep every second (CHAT_SWEEP_MS=1000):
// - alice and carol are in the lobby and #random, bob in the lobby only: a message reaches exactly its room's
//   members, and each page's online list shows who is in each of its rooms;
// - carol's page closes and dev loses its $disconnect (as AWS may): the sweep finds the socket gone through
//   GET @connections, and carol leaves alice's and bob's online lists;
// - alice's socket is cut (Playwright routes her WebSocket) and kept from coming back while both rooms are written
//   to and bob leaves; once it may, her page reconnects, gets what each room said meanwhile, once, in its room, and
//   asks the online lists again (presence events are not replayed).
//   node rooms.mjs <page URL> <screenshot.png>
// Run by tests/it/example.rs, which starts `wsdeploy dev` (and with it the example's backend) first.
// Exits 0 when every step passed, printing a JSON summary last; otherwise prints the step that failed, the pages'
// console and exits 1.
import { launch, restClient, watch } from './browser.mjs';

const [url, screenshot] = process.argv.slice(2);
if (!url || !screenshot) {
  console.error('usage: node rooms.mjs <page URL> <screenshot.png>');
  process.exit(2);
}
const STEP_MS = 15_000;
const rest = restClient(url);
const log = [];

const browser = await launch();

let step = 'start';
const pages = {};
try {
  // alice's socket goes through Playwright, which can cut it and refuse the next ones until told.
  const alice = { socket: null, refuse: false, opened: 0 };
  const open = async (name, rooms) => {
    const context = await browser.newContext({ viewport: { width: 760, height: 560 } });
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    watch(page, name, log);
    if (name === 'alice') {
      await page.routeWebSocket(/.*/, (ws) => {
        if (alice.refuse) {
          log.push('[alice] a new socket refused (cut)');
          ws.close({ code: 1006 });
          return;
        }
        alice.opened += 1;
        alice.socket = { page: ws, server: ws.connectToServer() };
      });
    }
    await page.goto(`${url}?user=${name}&rooms=${rooms.join(',')}`);
    pages[name] = page;
    return page;
  };
  const connected = (page) => page.waitForSelector('#status[data-status="connected"]', { timeout: STEP_MS });
  const send = async (page, room, text) => {
    await page.selectOption('#room', room);
    await page.fill('#text', text);
    await page.click('#send button');
  };
  const message = (page, room, text) => page.locator(`#messages li[data-room="${room}"]`, { hasText: text });
  const sees = (page, room, text) => message(page, room, text).first().waitFor();
  const online = (page, room) =>
    page.$$eval(`#online section[data-room="${room}"] li`, (lis) => lis.map((li) => li.dataset.user));
  const listed = (page, room, names) =>
    page.waitForFunction(
      ([room, names]) =>
        JSON.stringify([...document.querySelectorAll(`#online section[data-room="${room}"] li`)].map((li) => li.dataset.user)) ===
        JSON.stringify(names),
      [room, names],
      { timeout: STEP_MS },
    );

  step = 'alice and carol (lobby, #random) and bob (lobby) open the page and authenticate';
  await open('alice', ['random']);
  await open('bob', []);
  await open('carol', ['random']);
  await Promise.all(Object.values(pages).map(connected));

  step = 'each online list shows who is in the room';
  await listed(pages.alice, 'lobby', ['alice', 'bob', 'carol']);
  await listed(pages.alice, 'random', ['alice', 'carol']);
  await listed(pages.bob, 'lobby', ['alice', 'bob', 'carol']);
  if ((await pages.bob.locator('#online section[data-room="random"]').count()) !== 0) {
    throw new Error('bob, who is not in #random, has its online list');
  }

  step = "a message in #random reaches alice and carol, not bob (who sees the lobby's next one)";
  await send(pages.alice, 'random', 'only for random');
  await sees(pages.carol, 'random', 'only for random');
  await sees(pages.alice, 'random', 'only for random');
  await send(pages.bob, 'lobby', 'hello lobby');
  for (const page of Object.values(pages)) await sees(page, 'lobby', 'hello lobby');
  if ((await pages.bob.locator('#messages li', { hasText: 'only for random' }).count()) !== 0) {
    throw new Error("bob got #random's message");
  }

  step = "carol's page closes and dev loses its $disconnect: the sweep takes her off the online lists";
  const closedAt = Date.now();
  await pages.carol.context().close();
  delete pages.carol;
  await listed(pages.alice, 'random', ['alice']);
  await listed(pages.alice, 'lobby', ['alice', 'bob']);
  await listed(pages.bob, 'lobby', ['alice', 'bob']);
  const sweptMs = Date.now() - closedAt;

  step = "alice's socket is cut and kept from coming back while both rooms are written to";
  alice.refuse = true;
  await alice.socket.server.close();
  await alice.socket.page.close({ code: 1006 });
  await pages.alice.waitForSelector('#status:not([data-status="connected"])', { timeout: STEP_MS });
  const { token: daveToken } = await rest('POST', '/login', { name: 'dave' });
  await rest('POST', '/rooms/random/join', undefined, daveToken);
  await send(pages.bob, 'lobby', 'missed in lobby');
  await sees(pages.bob, 'lobby', 'missed in lobby');
  await rest('POST', '/messages', { room: 'random', text: 'missed in random' }, daveToken);
  await send(pages.bob, 'lobby', 'missed again in lobby');
  await sees(pages.bob, 'lobby', 'missed again in lobby');
  // bob leaves too (his $disconnect lost as well): the presence event for it goes nowhere alice can hear.
  await pages.bob.context().close();
  delete pages.bob;
  const deadline = Date.now() + STEP_MS;
  while ((await rest('GET', '/rooms/lobby/online', undefined, daveToken)).online.includes('bob')) {
    if (Date.now() > deadline) throw new Error('the sweep never took bob off the lobby');
    await new Promise((r) => setTimeout(r, 100));
  }

  step = 'alice may reconnect: her page resumes and shows what each room said, once, in its room';
  alice.refuse = false;
  // The snippet's backoff (full jitter, doubling from 0.5 s) may have its next try several seconds away.
  await pages.alice.waitForSelector('#status[data-status="connected"]', { timeout: 40_000 });
  for (const [room, text] of [['lobby', 'missed in lobby'], ['random', 'missed in random'], ['lobby', 'missed again in lobby']]) {
    await sees(pages.alice, room, text);
  }
  const shown = await pages.alice.$$eval('#messages li', (lis) =>
    lis.map((li) => `${li.dataset.room}: ${li.querySelector('span').textContent}`));
  const missed = shown.filter((m) => m.includes('missed'));
  const expected = ['lobby: missed in lobby', 'random: missed in random', 'lobby: missed again in lobby'];
  if (JSON.stringify(missed) !== JSON.stringify(expected)) {
    throw new Error(`alice shows ${JSON.stringify(missed)}, expected ${JSON.stringify(expected)} (once each, in order)`);
  }
  if ((await pages.alice.locator('#messages li.gap').count()) !== 0) throw new Error('alice was told of a gap');
  step = "after the reconnect alice's online lists are asked again: bob, who left while she was away, is gone";
  await listed(pages.alice, 'lobby', ['alice']);
  await listed(pages.alice, 'random', ['alice']);

  await pages.alice.screenshot({ path: screenshot, fullPage: true });
  const summary = {
    online: { lobby: await online(pages.alice, 'lobby'), random: await online(pages.alice, 'random') },
    swept_ms: sweptMs,
    alice_sockets: alice.opened,
    resumed: missed,
  };
  console.log(`ok: rooms reach their members only; a lost $disconnect swept in ${sweptMs} ms; alice resumed both rooms`);
  console.log(JSON.stringify(summary));
} catch (err) {
  console.error(`FAILED at step: ${step}\n${err.message}\n\n-- browser log --\n${log.join('\n')}`);
  for (const [name, page] of Object.entries(pages)) {
    await page.screenshot({ path: screenshot.replace(/\.png$/, `-${name}-failed.png`) }).catch(() => {});
  }
  process.exitCode = 1;
} finally {
  await browser.close();
}
