// The Express template's MemoryReplayBuffer (templates/express/replay-buffer.js): what a reconnecting page can be
// sent, and what memory it may take.
//   SUBJECT=/path/to/replay-buffer.js node --test replay-buffer.test.mjs
// Run by tests/it/templates.rs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const { MemoryReplayBuffer } = createRequire(import.meta.url)(process.env.SUBJECT);
const T0 = 1_800_000_000_000; // a fixed "now", in ms
const text = (id) => `#${id}`;

test("each user has one sequence of consecutive ids, starting at 1000 x the time in ms", (t) => {
  const buffer = new MemoryReplayBuffer();
  t.after(() => buffer.close());
  const a = [1, 2, 3].map(() => buffer.append('alice', text, T0).id);
  const b = buffer.append('bob', text, T0 + 5).id;
  assert.deepEqual(a, [T0 * 1000, T0 * 1000 + 1, T0 * 1000 + 2]);
  assert.equal(b, (T0 + 5) * 1000);
  assert.ok(Number.isSafeInteger(a[2]), 'ids survive JSON and JavaScript numbers');
  assert.deepEqual(buffer.since('alice', a[0], T0).map((e) => e.body), [text(a[1]), text(a[2])]);
  assert.deepEqual(buffer.since('carol', 0, T0), []);
});

test('a sequence begun after a restart starts above every id of the one before', (t) => {
  const before = new MemoryReplayBuffer();
  const after = new MemoryReplayBuffer();
  t.after(() => [before, after].forEach((b) => b.close()));
  let last;
  for (let i = 0; i < 500; i++) last = before.append('alice', text, T0).id;
  assert.ok(after.append('alice', text, T0 + 1).id > last);
});

test('at most maxMessages per user are kept, none older than maxAgeMs', (t) => {
  const buffer = new MemoryReplayBuffer({ maxMessages: 3, maxAgeMs: 1000 });
  t.after(() => buffer.close());
  const ids = [0, 10, 20, 30, 40].map((dt) => buffer.append('alice', text, T0 + dt).id);
  assert.deepEqual(buffer.since('alice', 0, T0 + 40).map((e) => e.id), ids.slice(2));
  assert.deepEqual(buffer.since('alice', 0, T0 + 1025).map((e) => e.id), ids.slice(3), 'older than 1 s: gone');
  // The sequence goes on after the entries expired: a page that saw the last id sees no gap.
  assert.equal(buffer.append('alice', text, T0 + 5000).id, ids[4] + 1);
});

test('a user who was sent nothing for forgetAfterMs is forgotten by the sweep', (t) => {
  const buffer = new MemoryReplayBuffer({ maxAgeMs: 1000, forgetAfterMs: 60_000 });
  t.after(() => buffer.close());
  buffer.append('alice', text, T0);
  buffer.append('bob', text, T0 + 59_000);
  buffer.sweep(T0 + 60_001);
  assert.deepEqual([...buffer.users.keys()], ['bob']);
});
