// The NestJS template's replay buffer (SocketService over the socket_messages table), compiled and run on a real
// SQL engine (sql.js: SQLite in WebAssembly, which TypeORM drives like any other database).
//   SUBJECT=<tsc output of templates/nestjs> NODE_PATH=templates/nestjs/node_modules node --test nestjs-replay.test.mjs
// Run by tests/it/templates.rs. What is under test is the table logic: sends are recorded where the SDK client
// would post them (the @connections path itself is the Express template's, tested end to end in Chromium).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
require('reflect-metadata');
const { DataSource } = require('typeorm');
const from = (file) => require(`${process.env.SUBJECT}/${file}`);
const { SocketMessage } = from('socket/socket-message.entity.js');
const { SocketConnection } = from('socket/socket-connection.entity.js');
const { SocketSubscription } = from('socket/socket-subscription.entity.js');
const { SocketPending } = from('socket/socket-pending.entity.js');
const { SocketService } = from('socket/socket.service.js');
const { User } = from('users/user.entity.js');

async function service(replay = { maxMessages: 200, maxAgeMs: 60_000 }) {
  const db = new DataSource({ type: 'sqljs', entities: [User, SocketConnection, SocketMessage, SocketSubscription, SocketPending], synchronize: true });
  await db.initialize();
  const options = {
    endpoint: 'http://127.0.0.1:9/local',
    region: 'eu-west-3',
    replay,
    fanOut: { concurrency: 32, deadlineMs: 10_000, postTimeoutMs: 3_000 },
    sweep: false,
  };
  const svc = new SocketService(
    db.getRepository(SocketConnection),
    db.getRepository(SocketMessage),
    db.getRepository(SocketSubscription),
    db.getRepository(SocketPending),
    options,
  );
  const sent = [];
  svc.client = { send: async (cmd) => void sent.push([cmd.input.ConnectionId, JSON.parse(Buffer.from(cmd.input.Data))]) };
  const users = db.getRepository(User);
  const alice = (await users.save({ email: 'alice@example.com' })).id;
  const close = async () => {
    svc.onModuleDestroy();
    await db.destroy();
  };
  return { svc, db, sent, alice, close };
}

test('a user with no socket still gets ids, consecutive, and the replay sends what came after', async (t) => {
  const { svc, db, sent, alice, close } = await service();
  t.after(close);
  const before = Date.now() * 1000;
  assert.equal(await svc.sendMessage(alice, { n: 1 }), 0);
  await svc.sendMessage(alice, { n: 2 });
  await svc.sendMessage(alice, { n: 3 });
  const rows = await db.getRepository(SocketMessage).find({ order: { id: 'ASC' } });
  const ids = rows.map((r) => r.id);
  assert.ok(ids[0] >= before && Number.isSafeInteger(ids[2]), `${ids}`);
  assert.deepEqual(ids, [ids[0], ids[0] + 1, ids[0] + 2]);
  await db.getRepository(SocketConnection).save({ connectionId: 'Abc=', userId: alice });
  assert.equal(await svc.replayTo(alice, 'Abc=', ids[0]), 2);
  assert.deepEqual(sent, [
    ['Abc=', { type: 'push', id: ids[1], data: { n: 2 } }],
    ['Abc=', { type: 'push', id: ids[2], data: { n: 3 } }],
  ]);
  assert.equal(await svc.sendMessage(alice, { n: 4 }), 1, 'a registered socket is sent to');
});

test('sends at once to one user get distinct consecutive ids, in the order they were made', async (t) => {
  const { svc, db, alice, close } = await service();
  t.after(close);
  await Promise.all(Array.from({ length: 20 }, (_, n) => svc.sendMessage(alice, { n })));
  const rows = await db.getRepository(SocketMessage).find({ order: { id: 'ASC' } });
  assert.deepEqual(rows.map((r) => JSON.parse(r.body).data.n), Array.from({ length: 20 }, (_, n) => n));
  assert.deepEqual(rows.map((r) => r.id - rows[0].id), Array.from({ length: 20 }, (_, n) => n));
});

test('two instances that pick the same next id both keep their message', async (t) => {
  const { svc, db, alice, close } = await service();
  t.after(close);
  const options = {
    endpoint: 'http://127.0.0.1:9/local',
    region: 'eu-west-3',
    replay: { maxMessages: 200, maxAgeMs: 60_000 },
    fanOut: { concurrency: 32, deadlineMs: 10_000, postTimeoutMs: 3_000 },
    sweep: false,
  };
  const other = new SocketService(
    db.getRepository(SocketConnection),
    db.getRepository(SocketMessage),
    db.getRepository(SocketSubscription),
    db.getRepository(SocketPending),
    options,
  );
  t.after(() => other.onModuleDestroy());
  await svc.sendMessage(alice, 'first');
  await Promise.all([svc.sendMessage(alice, 'a'), other.sendMessage(alice, 'b')]);
  const rows = await db.getRepository(SocketMessage).find({ order: { id: 'ASC' } });
  assert.equal(rows.length, 3);
  assert.deepEqual(rows.map((r) => r.id - rows[0].id), [0, 1, 2]);
});

test('at most maxMessages are kept, none older than maxAgeMs but the newest, which carries the sequence on', async (t) => {
  const { svc, db, alice, close } = await service({ maxMessages: 3, maxAgeMs: 50 });
  t.after(close);
  for (let n = 0; n < 5; n++) await svc.sendMessage(alice, n);
  const repo = db.getRepository(SocketMessage);
  assert.deepEqual((await repo.find({ order: { id: 'ASC' } })).map((r) => JSON.parse(r.body).data), [2, 3, 4]);
  const last = (await repo.find({ order: { id: 'DESC' }, take: 1 }))[0].id;
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(await svc.replayTo(alice, 'gone=', 0), 0, 'older than maxAgeMs: not replayed');
  await svc.sendMessage(alice, 5);
  const rows = await repo.find({ order: { id: 'ASC' } });
  assert.deepEqual(rows.map((r) => r.id), [last + 1], 'expired rows went, and the ids went on');
});
