// The Express template's SocketService (topics, broadcast, presence, the sweep, bounded fan-out) over each store:
// the same list of behaviours runs on MemoryConnectionStore and, with REDIS_URL, on RedisConnectionStore with
// RedisReplayBuffer against a real redis-server, including two service instances sharing it.
//   SUBJECT=templates/express REDIS_URL=redis://127.0.0.1:PORT NODE_PATH=... node --test socket-service.test.mjs
// Run by tests/it/templates.rs. @connections is played by `answer` below (what each post gets), so that every
// outcome (410, 429, 5xx, a post that never answers) can be had on demand; the template against wsdeploy dev's real
// @connections is tested end to end in tests/it/templates.rs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { SocketService, MemoryConnectionStore, RedisConnectionStore, RedisReplayBuffer, MemoryReplayBuffer } = require(
  process.env.SUBJECT,
);
const ENV = { WS_API_ENDPOINT: 'http://127.0.0.1:9/local', WS_API_REGION: 'eu-west-3' };

const stores = [['memory', async () => ({ store: new MemoryConnectionStore(), replay: new MemoryReplayBuffer(), close() {} })]];
if (process.env.REDIS_URL) {
  const Redis = require('ioredis');
  let n = 0;
  stores.push([
    'redis',
    async () => {
      const redis = new Redis(process.env.REDIS_URL);
      const prefix = `t${process.pid}-${n++}:`;
      return {
        store: new RedisConnectionStore(redis, { prefix }),
        replay: new RedisReplayBuffer(redis, { prefix }),
        redis,
        prefix,
        close: () => redis.quit(),
      };
    },
  ]);
}

/**
 * A service whose posts go to `answer(connectionId, body)`: it returns nothing (delivered), an HTTP status to fail
 * with, or a promise (a slow socket). Every post is recorded; `inFlight.max` is the most at once.
 */
function service(backing, opts = {}, answer = () => undefined) {
  const svc = new SocketService(backing.store, ENV, { replay: backing.replay, sweep: false, ...opts });
  const posts = [];
  const inFlight = { now: 0, max: 0 };
  svc.client = {
    send: async (cmd, { abortSignal } = {}) => {
      const { ConnectionId: id } = cmd.input;
      if (cmd.constructor.name === 'GetConnectionCommand') {
        const status = answer(id, null);
        if (status === 410) throw Object.assign(new Error('gone'), { name: 'GoneException', $metadata: { httpStatusCode: 410 } });
        return { Identity: { SourceIp: '127.0.0.1' } };
      }
      inFlight.max = Math.max(inFlight.max, ++inFlight.now);
      try {
        const body = JSON.parse(Buffer.from(cmd.input.Data));
        let outcome = answer(id, body);
        if (outcome instanceof Promise) {
          outcome = await Promise.race([
            outcome,
            new Promise((_, reject) => abortSignal?.addEventListener('abort', () => reject(Object.assign(new Error('timed out'), { name: 'TimeoutError' })))),
          ]);
        }
        if (typeof outcome === 'number') {
          const name = outcome === 410 ? 'GoneException' : outcome === 429 ? 'LimitExceededException' : 'InternalServerError';
          throw Object.assign(new Error(name), { name, $metadata: { httpStatusCode: outcome } });
        }
        posts.push([id, body]);
      } finally {
        inFlight.now--;
      }
    },
  };
  return { svc, posts, inFlight };
}

const to = (posts, id) => posts.filter(([c]) => c === id).map(([, b]) => b);

for (const [kind, open] of stores) {
  test(`${kind}: a publish reaches every socket of every subscriber and no one else, on one sequence per user`, async (t) => {
    const backing = await open();
    t.after(() => backing.close());
    const { svc, posts } = service(backing);
    await svc.register('a1', 'alice');
    await svc.register('a2', 'alice');
    await svc.register('b1', 'bob');
    await svc.register('c1', 'carol');
    await svc.subscribe('alice', 'room-1');
    await svc.subscribe('bob', 'room-1');
    await svc.subscribe('bob', 'room-1'); // idempotent
    await svc.subscribe('carol', 'room-2');
    posts.length = 0;
    assert.deepEqual(await svc.publish('room-1', { text: 'hi' }), { delivered: 3, gone: 0, failed: 0 });
    assert.deepEqual(posts.map(([c]) => c).sort(), ['a1', 'a2', 'b1']);
    const [first] = to(posts, 'a1');
    assert.deepEqual({ ...first, id: 0 }, { type: 'push', id: 0, topic: 'room-1', data: { text: 'hi' } });
    assert.deepEqual(to(posts, 'a2')[0], first, 'both of her sockets get the same message, same id');
    await svc.sendMessage('alice', { direct: true });
    const second = to(posts, 'a1')[1];
    assert.equal(second.id, first.id + 1, 'a direct message takes the next id of the same sequence');
    assert.equal(second.topic, undefined);
    assert.deepEqual((await svc.presence('room-1')).sort(), ['alice', 'bob']);
    svc.close();
  });

  test(`${kind}: broadcast reaches every user online; presence follows first and last sockets, never to oneself`, async (t) => {
    const backing = await open();
    t.after(() => backing.close());
    const { svc, posts } = service(backing);
    await svc.subscribe('alice', 'room');
    await svc.subscribe('bob', 'room');
    await svc.register('b1', 'bob');
    posts.length = 0;
    await svc.register('a1', 'alice');
    assert.deepEqual(posts, [['b1', { type: 'presence', topic: 'room', userId: 'alice', online: true }]]);
    posts.length = 0;
    await svc.register('a2', 'alice');
    assert.deepEqual(posts, [], 'a second socket is no news');
    await svc.forget('a1');
    assert.deepEqual(posts, [], 'nor is losing one of two');
    await svc.forget('a2');
    assert.deepEqual(posts, [['b1', { type: 'presence', topic: 'room', userId: 'alice', online: false }]]);
    assert.deepEqual(await svc.presence('room'), ['bob']);
    posts.length = 0;
    await svc.register('c1', 'carol');
    assert.deepEqual(await svc.broadcast({ n: 1 }), { delivered: 2, gone: 0, failed: 0 });
    assert.deepEqual(posts.map(([c]) => c).sort(), ['b1', 'c1']);
    assert.equal(posts[0][1].topic, undefined);
    svc.close();
  });

  test(`${kind}: a 410 forgets the socket (and tells its topics); 429 and 5xx are retried; one slow socket holds up no other`, async (t) => {
    const backing = await open();
    t.after(() => backing.close());
    let throttled = 2;
    const { svc, posts } = service(backing, { deadlineMs: 1_500, postTimeoutMs: 300 }, (id, body) => {
      if (body?.type !== 'push') return undefined; // the presence events of the set-up go through
      if (id === 'gone') return 410;
      if (id === 'busy' && throttled-- > 0) return 429;
      if (id === 'broken') return 500;
      if (id === 'slow') return new Promise(() => {});
      return undefined;
    });
    for (const [c, u] of [['gone', 'g'], ['busy', 'b'], ['broken', 'x'], ['slow', 's'], ['fine', 'f'], ['watcher', 'w']]) {
      await svc.register(c, u);
      await svc.subscribe(u, 'room');
    }
    posts.length = 0;
    const started = Date.now();
    const result = await svc.publish('room', { n: 1 });
    assert.deepEqual(result, { delivered: 3, gone: 1, failed: 2 });
    assert.ok(Date.now() - started < 2_500, 'within the deadline');
    assert.deepEqual(await backing.store.forUser('g'), [], 'the gone socket is forgotten');
    assert.ok(to(posts, 'watcher').some((b) => b.type === 'presence' && b.userId === 'g' && b.online === false));
    const pushes = (id) => to(posts, id).filter((b) => b.type === 'push');
    assert.equal(pushes('busy').length, 1, 'delivered once after its 429s');
    assert.equal(pushes('fine').length, 1);
    svc.close();
  });

  test(`${kind}: at most \`concurrency\` posts are in flight`, async (t) => {
    const backing = await open();
    t.after(() => backing.close());
    const { svc, inFlight } = service(backing, { concurrency: 4 }, () => new Promise((r) => setTimeout(r, 5)));
    for (let i = 0; i < 40; i++) await svc.register(`c${i}`, `u${i}`);
    assert.deepEqual(await svc.broadcast({}), { delivered: 40, gone: 0, failed: 0 });
    assert.equal(inFlight.max, 4);
    svc.close();
  });

  test(`${kind}: the sweep forgets connections @connections says are gone, and keeps the live ones`, async (t) => {
    const backing = await open();
    t.after(() => backing.close());
    const { svc, posts } = service(backing, {}, (id, body) => (body === null && id === 'vanished' ? 410 : undefined));
    await svc.subscribe('alice', 'room');
    await svc.subscribe('bob', 'room');
    await backing.store.add('vanished', 'alice', Date.now() - 10 * 60_000);
    await backing.store.add('b1', 'bob', Date.now() - 10 * 60_000);
    await backing.store.add('fresh', 'carol', Date.now());
    assert.deepEqual(await svc.sweep({ idleMs: 60_000 }), { checked: 2, gone: 1 });
    assert.deepEqual(await svc.presence('room'), ['bob']);
    assert.ok(to(posts, 'b1').some((b) => b.type === 'presence' && b.userId === 'alice' && !b.online));
    assert.deepEqual(await svc.sweep({ idleMs: 60_000 }), { checked: 0, gone: 0 }, 'the live one was touched');
    svc.close();
  });
}

if (process.env.REDIS_URL) {
  test('redis: two instances share connections, topics and one id sequence per user', async (t) => {
    const Redis = require('ioredis');
    const prefix = `two${process.pid}:`;
    const a = new Redis(process.env.REDIS_URL);
    const b = new Redis(process.env.REDIS_URL);
    t.after(() => Promise.all([a.quit(), b.quit()]));
    const one = service({ store: new RedisConnectionStore(a, { prefix }), replay: new RedisReplayBuffer(a, { prefix }) });
    const two = service({ store: new RedisConnectionStore(b, { prefix }), replay: new RedisReplayBuffer(b, { prefix }) });
    await one.svc.register('a1', 'alice');
    await one.svc.subscribe('alice', 'room');
    assert.deepEqual(await two.svc.publish('room', { from: 'two' }), { delivered: 1, gone: 0, failed: 0 });
    assert.deepEqual(await one.svc.publish('room', { from: 'one' }), { delivered: 1, gone: 0, failed: 0 });
    const ids = [...to(two.posts, 'a1'), ...to(one.posts, 'a1')].map((m) => m.id);
    assert.equal(ids[1], ids[0] + 1, `${ids}`);
    const replayed = await one.svc.replay.since('alice', ids[0] - 1);
    assert.deepEqual(replayed.map((e) => JSON.parse(e.body).data.from), ['two', 'one']);
    await two.svc.forget('a1');
    assert.deepEqual(await one.svc.presence('room'), []);
    one.svc.close();
    two.svc.close();
  });
}
