// Both templates' SocketService (topics, broadcast, presence, the sweep, bounded fan-out) pass the same list of
// behaviours: the Express one on MemoryConnectionStore and, with REDIS_URL, on RedisConnectionStore with
// RedisReplayBuffer against a real redis-server (two service instances sharing it too); the NestJS one, compiled,
// over TypeORM on a real SQL engine (sql.js).
//   SUBJECT=templates/express NESTJS=<tsc output of templates/nestjs> REDIS_URL=redis://127.0.0.1:PORT \
//   NODE_PATH=examples/chat/node_modules:templates/nestjs/node_modules node --test socket-service.test.mjs
// Run by tests/it/templates.rs. @connections is played by `answer` below (what each post gets), so that every
// outcome (410, 429, 5xx, a post that never answers) can be had on demand; the template against wsdeploy dev's real
// @connections is tested end to end in tests/it/templates.rs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const express = require(process.env.SUBJECT);
const ENV = { WS_API_ENDPOINT: 'http://127.0.0.1:9/local', WS_API_REGION: 'eu-west-3' };
// Every user the behaviours name: NestJS keeps users in its own table, so they are made up front.
const USERS = ['alice', 'bob', 'carol', 'g', 'b', 'x', 's', 'f', 'w', ...Array.from({ length: 40 }, (_, i) => `u${i}`)];

/**
 * A backend under test, in the behaviours' words (user names, not ids): `svc` is the template's SocketService, its
 * posts go to `answer(connectionId, body)` (nothing: delivered; an HTTP status: that error; a promise: a slow
 * socket), every delivered post is in `posts`, and `inFlight.max` is the most posts at once.
 */
function playConnections(svc, answer, name) {
  const posts = [];
  const deleted = [];
  const inFlight = { now: 0, max: 0 };
  svc.client = {
    send: async (cmd, { abortSignal } = {}) => {
      const { ConnectionId: id } = cmd.input;
      if (cmd.constructor.name === 'DeleteConnectionCommand') {
        const outcome = answer(id, null);
        if (typeof outcome === 'number') throw Object.assign(new Error('refused'), { name: outcome === 410 ? 'GoneException' : 'Error', $metadata: { httpStatusCode: outcome } });
        deleted.push(id);
        return {};
      }
      if (cmd.constructor.name === 'GetConnectionCommand') {
        if (answer(id, null) === 410) {
          throw Object.assign(new Error('gone'), { name: 'GoneException', $metadata: { httpStatusCode: 410 } });
        }
        return { Identity: { SourceIp: '127.0.0.1' } };
      }
      inFlight.max = Math.max(inFlight.max, ++inFlight.now);
      try {
        const body = JSON.parse(Buffer.from(cmd.input.Data));
        if (body.type === 'presence') body.userId = name(body.userId);
        let outcome = answer(id, body);
        if (outcome instanceof Promise) {
          outcome = await Promise.race([
            outcome,
            new Promise((_, reject) =>
              abortSignal?.addEventListener('abort', () => reject(Object.assign(new Error('timed out'), { name: 'TimeoutError' }))),
            ),
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
  return { posts, inFlight, deleted };
}

/** The Express template's service on a store and replay buffer (memory, or Redis). */
function expressBackend(open) {
  return async (opts = {}, answer = () => undefined) => {
    const { store, replay, close } = await open();
    const svc = new express.SocketService(store, ENV, { replay, sweep: false, ...opts });
    return {
      svc,
      ...playConnections(svc, answer, (u) => u),
      register: (c, u) => svc.register(c, u),
      expectAuth: (c, deadline) => svc.expectAuth(c, deadline),
      closeUnauthenticated: (now) => svc.closeUnauthenticated(now),
      forget: (c) => svc.forget(c),
      subscribe: (u, t) => svc.subscribe(u, t),
      publish: (t, d) => svc.publish(t, d),
      broadcast: (d) => svc.broadcast(d),
      sendMessage: (u, d) => svc.sendMessage(u, d),
      presence: async (t) => (await svc.presence(t)).sort(),
      sweep: (idleMs) => svc.sweep({ idleMs }),
      socketsOf: (u) => store.forUser(u),
      heardOf: (c, u, at) => store.add(c, u, at),
      close: async () => {
        svc.close();
        await close();
      },
    };
  };
}

/** The NestJS template's service (compiled) over TypeORM on a real SQL engine (sql.js). */
function nestBackend(compiled) {
  const from = (file) => require(`${compiled}/${file}`);
  require('reflect-metadata');
  const { DataSource } = require('typeorm');
  const entities = ['users/user.entity.js', 'socket/socket-connection.entity.js', 'socket/socket-message.entity.js', 'socket/socket-subscription.entity.js', 'socket/socket-pending.entity.js'];
  const [{ User }, { SocketConnection }, { SocketMessage }, { SocketSubscription }, { SocketPending }] = entities.map(from);
  const { SocketService } = from('socket/socket.service.js');
  const database = async () => {
    const db = new DataSource({ type: 'sqljs', entities: [User, SocketConnection, SocketMessage, SocketSubscription, SocketPending], synchronize: true });
    await db.initialize();
    for (const u of USERS) await db.getRepository(User).save({ email: `${u}@example.com` });
    return db;
  };
  // `shared`: a database another service uses too (two instances of one backend).
  return async (opts = {}, answer = () => undefined, shared = undefined) => {
    const db = shared ?? (await database());
    const ids = new Map((await db.getRepository(User).find()).map((u) => [u.email.split('@')[0], u.id]));
    const names = new Map([...ids].map(([n, i]) => [i, n]));
    const id = (u) => ids.get(u);
    const { deadlineMs = 10_000, postTimeoutMs = 3_000, concurrency = 128 } = opts;
    const options = { ...ENV, endpoint: ENV.WS_API_ENDPOINT, region: ENV.WS_API_REGION, replay: { maxMessages: 200, maxAgeMs: 300_000 }, fanOut: { concurrency, deadlineMs, postTimeoutMs }, sweep: false, presence: opts.presence ?? (() => true) };
    const connections = db.getRepository(SocketConnection);
    const svc = new SocketService(connections, db.getRepository(SocketMessage), db.getRepository(SocketSubscription), db.getRepository(SocketPending), options);
    return {
      svc,
      ...playConnections(svc, answer, (i) => names.get(i)),
      register: (c, u) => svc.register(c, id(u)),
      expectAuth: (c, deadline) => svc.expectAuth(c, deadline),
      closeUnauthenticated: (now) => svc.closeUnauthenticated(now),
      forget: (c) => svc.forget(c),
      subscribe: (u, t) => svc.subscribe(id(u), t),
      publish: (t, d) => svc.publish(t, d),
      broadcast: (d) => svc.broadcast(d),
      sendMessage: (u, d) => svc.sendMessage(id(u), d),
      presence: async (t) => (await svc.presence(t)).map((i) => names.get(i)).sort(),
      sweep: (idleMs) => svc.sweep(idleMs),
      socketsOf: async (u) => (await connections.find({ where: { userId: id(u) } })).map((r) => r.connectionId),
      heardOf: (c, u, at) => connections.save({ connectionId: c, userId: id(u), lastSeenAt: at }),
      db,
      close: async () => {
        svc.onModuleDestroy();
        if (!shared) await db.destroy();
      },
    };
  };
}

const backends = [
  ['express memory', expressBackend(async () => ({ store: new express.MemoryConnectionStore(), replay: new express.MemoryReplayBuffer(), close() {} }))],
];
if (process.env.REDIS_URL) {
  const Redis = require('ioredis');
  let n = 0;
  backends.push([
    'express redis',
    expressBackend(async () => {
      const redis = new Redis(process.env.REDIS_URL);
      const prefix = `t${process.pid}-${n++}:`;
      return {
        store: new express.RedisConnectionStore(redis, { prefix }),
        replay: new express.RedisReplayBuffer(redis, { prefix }),
        close: () => redis.quit(),
      };
    }),
  ]);
}
if (process.env.NESTJS) backends.push(['nestjs sql', nestBackend(process.env.NESTJS)]);

const to = (posts, id) => posts.filter(([c]) => c === id).map(([, b]) => b);

for (const [kind, start] of backends) {
  test(`${kind}: a publish reaches every socket of every subscriber and no one else, on one sequence per user`, async (t) => {
    const b = await start();
    t.after(() => b.close());
    const { posts } = b;
    await b.register('a1', 'alice');
    await b.register('a2', 'alice');
    await b.register('b1', 'bob');
    await b.register('c1', 'carol');
    await b.subscribe('alice', 'room-1');
    await b.subscribe('bob', 'room-1');
    await b.subscribe('bob', 'room-1'); // idempotent
    await b.subscribe('carol', 'room-2');
    posts.length = 0;
    assert.deepEqual(await b.publish('room-1', { text: 'hi' }), { delivered: 3, gone: 0, failed: 0 });
    assert.deepEqual(posts.map(([c]) => c).sort(), ['a1', 'a2', 'b1']);
    const [first] = to(posts, 'a1');
    assert.deepEqual({ ...first, id: 0 }, { type: 'push', id: 0, topic: 'room-1', data: { text: 'hi' } });
    assert.deepEqual(to(posts, 'a2')[0], first, 'both of her sockets get the same message, same id');
    await b.sendMessage('alice', { direct: true });
    const second = to(posts, 'a1')[1];
    assert.equal(second.id, first.id + 1, 'a direct message takes the next id of the same sequence');
    assert.equal(second.topic, undefined);
    assert.deepEqual((await b.presence('room-1')).sort(), ['alice', 'bob']);
  });

  test(`${kind}: a topic with presence off is told no joins and no leaves, and presence() still answers for it`, async (t) => {
    const b = await start({ presence: (topic) => !topic.startsWith('live:') });
    t.after(() => b.close());
    const { posts } = b;
    for (const u of ['alice', 'bob']) {
      await b.subscribe(u, 'live:keynote');
      await b.subscribe(u, 'room');
    }
    await b.register('b1', 'bob');
    posts.length = 0;
    await b.register('a1', 'alice');
    await b.subscribe('carol', 'live:keynote');
    await b.register('c1', 'carol');
    assert.deepEqual(posts, [['b1', { type: 'presence', topic: 'room', userId: 'alice', online: true }]]);
    assert.deepEqual(await b.presence('live:keynote'), ['alice', 'bob', 'carol']);
    posts.length = 0;
    await b.forget('a1');
    assert.deepEqual(posts, [['b1', { type: 'presence', topic: 'room', userId: 'alice', online: false }]]);
    assert.deepEqual(await b.publish('live:keynote', { slide: 2 }), { delivered: 2, gone: 0, failed: 0 });
  });

  test(`${kind}: broadcast reaches every user online; presence follows first and last sockets, never to oneself`, async (t) => {
    const b = await start();
    t.after(() => b.close());
    const { posts } = b;
    await b.subscribe('alice', 'room');
    await b.subscribe('bob', 'room');
    await b.register('b1', 'bob');
    posts.length = 0;
    await b.register('a1', 'alice');
    assert.deepEqual(posts, [['b1', { type: 'presence', topic: 'room', userId: 'alice', online: true }]]);
    posts.length = 0;
    await b.register('a2', 'alice');
    assert.deepEqual(posts, [], 'a second socket is no news');
    await b.forget('a1');
    assert.deepEqual(posts, [], 'nor is losing one of two');
    await b.forget('a2');
    assert.deepEqual(posts, [['b1', { type: 'presence', topic: 'room', userId: 'alice', online: false }]]);
    assert.deepEqual(await b.presence('room'), ['bob']);
    posts.length = 0;
    await b.register('c1', 'carol');
    assert.deepEqual(await b.broadcast({ n: 1 }), { delivered: 2, gone: 0, failed: 0 });
    assert.deepEqual(posts.map(([c]) => c).sort(), ['b1', 'c1']);
    assert.equal(posts[0][1].topic, undefined);
  });

  test(`${kind}: a 410 forgets the socket (and tells its topics); 429 and 5xx are retried; one slow socket holds up no other`, async (t) => {
    let throttled = 2;
    const b = await start({ deadlineMs: 1_500, postTimeoutMs: 300 }, (id, body) => {
      if (body?.type !== 'push') return undefined; // the presence events of the set-up go through
      if (id === 'gone') return 410;
      if (id === 'busy' && throttled-- > 0) return 429;
      if (id === 'broken') return 500;
      if (id === 'slow') return new Promise(() => {});
      return undefined;
    });
    t.after(() => b.close());
    const { posts } = b;
    for (const [c, u] of [['gone', 'g'], ['busy', 'b'], ['broken', 'x'], ['slow', 's'], ['fine', 'f'], ['watcher', 'w']]) {
      await b.register(c, u);
      await b.subscribe(u, 'room');
    }
    posts.length = 0;
    const started = Date.now();
    const result = await b.publish('room', { n: 1 });
    assert.deepEqual(result, { delivered: 3, gone: 1, failed: 2 });
    assert.ok(Date.now() - started < 2_500, 'within the deadline');
    assert.deepEqual(await b.socketsOf('g'), [], 'the gone socket is forgotten');
    assert.ok(to(posts, 'watcher').some((m) => m.type === 'presence' && m.userId === 'g' && m.online === false));
    const pushes = (id) => to(posts, id).filter((m) => m.type === 'push');
    assert.equal(pushes('busy').length, 1, 'delivered once after its 429s');
    assert.equal(pushes('fine').length, 1);
  });

  test(`${kind}: a post that waits its turn in a long publish is not failed for the wait (the deadline is its own)`, async (t) => {
    // One at a time, 60 ms each: the last of ten starts 540 ms in, past a 200 ms deadline counted from the publish.
    const b = await start({ concurrency: 1, deadlineMs: 200 }, (id, body) =>
      body?.type === 'push' ? new Promise((r) => setTimeout(r, 60)) : undefined);
    t.after(() => b.close());
    for (let i = 0; i < 10; i++) {
      await b.register(`c${i}`, `u${i}`);
      await b.subscribe(`u${i}`, 'long');
    }
    assert.deepEqual(await b.publish('long', { n: 1 }), { delivered: 10, gone: 0, failed: 0 });
  });

  test(`${kind}: at most \`concurrency\` posts are in flight`, async (t) => {
    const b = await start({ concurrency: 4 }, () => new Promise((r) => setTimeout(r, 5)));
    t.after(() => b.close());
    const { inFlight } = b;
    for (let i = 0; i < 40; i++) await b.register(`c${i}`, `u${i}`);
    assert.deepEqual(await b.broadcast({}), { delivered: 40, gone: 0, failed: 0 });
    assert.equal(inFlight.max, 4);
  });

  test(`${kind}: the sweep forgets connections @connections says are gone, and keeps the live ones`, async (t) => {
    const b = await start({}, (id, body) => (body === null && id === 'vanished' ? 410 : undefined));
    t.after(() => b.close());
    const { posts } = b;
    await b.subscribe('alice', 'room');
    await b.subscribe('bob', 'room');
    await b.heardOf('vanished', 'alice', Date.now() - 10 * 60_000);
    await b.heardOf('b1', 'bob', Date.now() - 10 * 60_000);
    await b.heardOf('fresh', 'carol', Date.now());
    assert.deepEqual(await b.sweep(60_000), { checked: 2, gone: 1 });
    assert.deepEqual(await b.presence('room'), ['bob']);
    assert.ok(to(posts, 'b1').some((m) => m.type === 'presence' && m.userId === 'alice' && !m.online));
    assert.deepEqual(await b.sweep(60_000), { checked: 0, gone: 0 }, 'the live one was touched');
  });

  test(`${kind}: a socket that does not authenticate in time is closed once, and only that one`, async (t) => {
    const b = await start();
    t.after(() => b.close());
    const now = Date.now();
    for (const c of ['silent', 'authed', 'left']) await b.expectAuth(c, now + 60_000);
    await b.register('authed', 'alice');
    await b.forget('left');
    await b.register('bound', 'bob');
    await b.expectAuth('bound', now + 1_000); // a pending call after its auth (replayed, or late): not pending
    assert.deepEqual(await b.closeUnauthenticated(now + 30_000), { closed: 0 }, 'not yet');
    assert.deepEqual(await b.closeUnauthenticated(now + 60_001), { closed: 1 });
    assert.deepEqual(b.deleted, ['silent']);
    assert.deepEqual(await b.closeUnauthenticated(now + 120_000), { closed: 0 }, 'each is closed once');
    // Its own timer closes it at the deadline, with nobody calling.
    await b.expectAuth('quick', Date.now() + 50);
    for (let i = 0; i < 100 && !b.deleted.includes('quick'); i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(b.deleted, ['silent', 'quick']);
    assert.deepEqual(await b.socketsOf('alice'), ['authed']);
  });
}

if (process.env.REDIS_URL) {
  test('express redis: two instances share connections, topics and one id sequence per user', async (t) => {
    const Redis = require('ioredis');
    const prefix = `two${process.pid}:`;
    const shared = () => {
      const redis = new Redis(process.env.REDIS_URL);
      return async () => ({
        store: new express.RedisConnectionStore(redis, { prefix }),
        replay: new express.RedisReplayBuffer(redis, { prefix }),
        close: () => redis.quit(),
      });
    };
    const one = await expressBackend(shared())();
    const two = await expressBackend(shared())();
    t.after(() => Promise.all([one.close(), two.close()]));
    await one.register('a1', 'alice');
    await one.subscribe('alice', 'room');
    assert.deepEqual(await two.publish('room', { from: 'two' }), { delivered: 1, gone: 0, failed: 0 });
    assert.deepEqual(await one.publish('room', { from: 'one' }), { delivered: 1, gone: 0, failed: 0 });
    const ids = [...to(two.posts, 'a1'), ...to(one.posts, 'a1')].map((m) => m.id);
    assert.equal(ids[1], ids[0] + 1, `${ids}`);
    const replayed = await one.svc.replay.since('alice', ids[0] - 1);
    assert.deepEqual(replayed.map((e) => JSON.parse(e.body).data.from), ['two', 'one']);
    await two.forget('a1');
    assert.deepEqual(await one.presence('room'), []);
  });
}

if (process.env.NESTJS) {
  test('nestjs sql: two instances on one database share connections, topics and one id sequence per user', async (t) => {
    const start = nestBackend(process.env.NESTJS);
    const one = await start();
    const two = await start({}, undefined, one.db);
    t.after(async () => {
      await two.close();
      await one.close();
    });
    await one.register('a1', 'alice');
    await one.subscribe('alice', 'room');
    assert.deepEqual(await two.publish('room', { from: 'two' }), { delivered: 1, gone: 0, failed: 0 });
    assert.deepEqual(await one.publish('room', { from: 'one' }), { delivered: 1, gone: 0, failed: 0 });
    const ids = [...to(two.posts, 'a1'), ...to(one.posts, 'a1')].map((m) => m.id);
    assert.equal(ids[1], ids[0] + 1, `${ids}`);
    await two.forget('a1');
    assert.deepEqual(await one.presence('room'), []);
  });
}
