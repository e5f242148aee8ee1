// The React hooks of the frontend template (templates/frontend/wsdeploy-react.js) in headless Chromium, against the
// example app (examples/chat) under `wsdeploy dev`. The page (react/app.jsx, bundled here by esbuild with React's
// development build, so StrictMode mounts twice) is served by the example's backend, from the test's copy of its
// public/ folder (EXAMPLE_PUBLIC):
// - StrictMode's mount, unmount and mount again leaves exactly one socket open, and it authenticates;
// - useTopic routes each message to its topic's component only (rita is in the lobby and #random);
// - usePresence starts from the backend's presence('lobby') (bob) and follows carol's page coming, and both going;
// - unmounting closes the socket.
//   EXAMPLE_PUBLIC=<the example's public/> node react.mjs <page URL> <screenshot.png>
// Run by tests/it/example.rs, which starts `wsdeploy dev` on the example first; prints a JSON summary last, or the step that failed
// with the page's console and exits 1.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { launch, restClient, watch } from './browser.mjs';

const [url, screenshot] = process.argv.slice(2);
if (!url || !screenshot) {
  console.error('usage: node react.mjs <page URL> <screenshot.png>');
  process.exit(2);
}
const here = path.dirname(fileURLToPath(import.meta.url));
const STEP_MS = 15_000;
const rest = restClient(url);
const log = [];

const browser = await launch();

let step = 'bundle the page';
let page;
try {
  const bundle = await build({
    entryPoints: [path.join(here, 'react', 'app.jsx')],
    bundle: true,
    write: false,
    format: 'esm',
    jsx: 'automatic',
    nodePaths: [path.join(here, 'node_modules')],
    define: { 'process.env.NODE_ENV': '"development"' },
    logLevel: 'silent',
  });
  const script = bundle.outputFiles[0].text;

  step = "bob's page (the example's) connects";
  const guest = async (name) => {
    const context = await browser.newContext();
    const guestPage = await context.newPage();
    guestPage.setDefaultTimeout(STEP_MS);
    await guestPage.goto(`${url}?user=${name}`);
    await guestPage.waitForSelector('#status[data-status="connected"]');
    return guestPage;
  };
  const bob = await guest('bob');

  step = 'rita logs in and joins #random; the lobby is asked who is online';
  const wsUrl = /WS_URL = "(.*)"/.exec(await (await fetch(new URL('/env.js', url))).text())[1];
  const { token } = await rest('POST', '/login', { name: 'rita' });
  await rest('POST', '/rooms/random/join', undefined, token);
  const { online: initial } = await rest('GET', '/rooms/lobby/online', undefined, token);

  step = 'the React page mounts in StrictMode: one socket stays open, and authenticates';
  const context = await browser.newContext({ viewport: { width: 640, height: 480 } });
  page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  watch(page, 'rita', log);
  const sockets = { opened: 0, closed: 0 };
  page.on('websocket', (ws) => {
    sockets.opened += 1;
    ws.on('close', () => {
      sockets.closed += 1;
    });
  });
  // Served by the example's backend from the test's copy of it (EXAMPLE_PUBLIC), from the origin dev lets in.
  const pub = process.env.EXAMPLE_PUBLIC;
  await writeFile(path.join(pub, 'react-test.js'), script);
  await writeFile(
    path.join(pub, 'react-test.html'),
    `<!doctype html><meta charset="utf-8"><title>hooks</title><div id="root"></div>
<script>window.TEST = ${JSON.stringify({ url: wsUrl, token, initial })};</script>
<script type="module" src="/react-test.js"></script>`,
  );
  const pageUrl = new URL('/react-test.html', url).href;
  await page.goto(pageUrl);
  await page.waitForSelector('#status:text("connected")');
  await page.waitForTimeout(500);
  if (sockets.opened - sockets.closed !== 1) {
    throw new Error(`${sockets.opened} sockets opened, ${sockets.closed} closed: not exactly one open`);
  }
  const strictOpened = sockets.opened;

  step = "usePresence starts from the backend's list (bob), then carol's page comes online and it adds her";
  if (JSON.stringify(initial) !== '["bob"]') throw new Error(`presence('lobby') answered ${JSON.stringify(initial)}`);
  await page.waitForSelector('#online li:text-is("bob")');
  const carol = await guest('carol');
  await page.waitForSelector('#online li:text-is("carol")');

  step = 'a lobby message and a #random one each reach their own component only';
  await rest('POST', '/messages', { room: 'random', text: 'for random' }, token);
  await bob.fill('#text', 'for the lobby');
  await bob.click('#send button');
  await page.waitForSelector('#lobby li:text-is("for the lobby")');
  await page.waitForSelector('#random li:text-is("for random")');
  const lists = await page.evaluate(() =>
    Object.fromEntries(['lobby', 'random'].map((id) => [id, [...document.querySelectorAll(`#${id} li`)].map((li) => li.textContent)])));
  if (JSON.stringify(lists) !== JSON.stringify({ lobby: ['for the lobby'], random: ['for random'] })) {
    throw new Error(`the components show ${JSON.stringify(lists)}`);
  }

  step = "bob's and carol's pages close: usePresence removes them";
  await bob.context().close();
  await carol.context().close();
  await page.waitForSelector('#online li:text-is("bob")', { state: 'detached' });
  await page.waitForSelector('#online li:text-is("carol")', { state: 'detached' });
  await page.screenshot({ path: screenshot, fullPage: true });

  step = 'unmounting closes the socket';
  await page.evaluate(() => window.unmount());
  await page.waitForSelector('#unmounted');
  const deadline = Date.now() + STEP_MS;
  while (sockets.opened !== sockets.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (sockets.opened !== sockets.closed) throw new Error(`${sockets.opened - sockets.closed} socket(s) still open after unmount`);

  console.log('ok: the hooks keep one socket in StrictMode, route topics, follow presence and close on unmount');
  console.log(JSON.stringify({ strict_mode_sockets_opened: strictOpened, initial, lists }));
} catch (err) {
  console.error(`FAILED at step: ${step}\n${err.message}\n\n-- browser log --\n${log.join('\n')}`);
  await page?.screenshot({ path: screenshot.replace(/\.png$/, '-failed.png') }).catch(() => {});
  process.exitCode = 1;
} finally {
  await browser.close();
}
