// Connections, topics, presence and the replay buffer in Redis, for a backend that runs as several instances: a
// publish from one instance reaches sockets registered through another, and each user's message ids stay one
// sequence. Pass your own ioredis client (`npm install ioredis`):
//
//   const Redis = require('ioredis');
//   const redis = new Redis(process.env.REDIS_URL);
//   const store = new RedisConnectionStore(redis);
//   const sockets = new SocketService(store, process.env, { replay: new RedisReplayBuffer(redis) });
//
// The methods are MemoryConnectionStore's (memory-store.js lists them); user ids come back as strings. The scripts
// build their keys from the prefix, so use one Redis (or a primary with replicas), not Redis Cluster.
'use strict';

// A connection (re)bound to a user: its old user loses it, and the user's socket count after is returned.
const ADD = `
local p, id, user, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local old = redis.call('HGET', p .. 'c:' .. id, 'u')
if old and old ~= user then
  redis.call('SREM', p .. 'u:' .. old, id)
  if redis.call('SCARD', p .. 'u:' .. old) == 0 then redis.call('SREM', p .. 'online', old) end
end
redis.call('ZREM', p .. 'pending', id)
redis.call('HSET', p .. 'c:' .. id, 'u', user, 's', now)
redis.call('SADD', p .. 'u:' .. user, id)
redis.call('SADD', p .. 'online', user)
redis.call('ZADD', p .. 'seen', now, id)
return redis.call('SCARD', p .. 'u:' .. user)`;

// A connection forgotten: its user and the user's sockets left, or nil when it was not known.
const REMOVE = `
local p, id = ARGV[1], ARGV[2]
redis.call('ZREM', p .. 'pending', id)
local user = redis.call('HGET', p .. 'c:' .. id, 'u')
if not user then return nil end
redis.call('DEL', p .. 'c:' .. id)
redis.call('ZREM', p .. 'seen', id)
redis.call('SREM', p .. 'u:' .. user, id)
local left = redis.call('SCARD', p .. 'u:' .. user)
if left == 0 then redis.call('SREM', p .. 'online', user) end
return {user, left}`;

// A socket yet to authenticate, unless it has already (a pending call that arrived after its auth).
const EXPECT = `
local p, id, deadline = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', p .. 'c:' .. id) == 0 then redis.call('ZADD', p .. 'pending', deadline, id) end`;

// The sockets whose deadline passed unauthenticated, taken out so that one instance closes each.
const OVERDUE = `
local p, now = ARGV[1], ARGV[2]
local due = redis.call('ZRANGEBYSCORE', p .. 'pending', '-inf', now)
for _, id in ipairs(due) do redis.call('ZREM', p .. 'pending', id) end
return due`;

class RedisConnectionStore {
  /**
   * @param {object} redis  an ioredis client
   * @param {object} [opts]
   * @param {string} [opts.prefix='wsdeploy:']  of every key
   */
  constructor(redis, { prefix = 'wsdeploy:' } = {}) {
    this.redis = redis;
    this.p = prefix;
    redis.defineCommand('wsdeployAdd', { numberOfKeys: 0, lua: ADD });
    redis.defineCommand('wsdeployRemove', { numberOfKeys: 0, lua: REMOVE });
    redis.defineCommand('wsdeployExpect', { numberOfKeys: 0, lua: EXPECT });
    redis.defineCommand('wsdeployOverdue', { numberOfKeys: 0, lua: OVERDUE });
  }

  async add(connectionId, userId, now = Date.now()) {
    return { sockets: await this.redis.wsdeployAdd(this.p, connectionId, String(userId), now) };
  }

  async remove(connectionId) {
    const r = await this.redis.wsdeployRemove(this.p, connectionId);
    return r ? { userId: r[0], sockets: Number(r[1]) } : null;
  }

  forUser(userId) {
    return this.redis.smembers(`${this.p}u:${userId}`);
  }

  connectedUsers() {
    return this.redis.smembers(`${this.p}online`);
  }

  async subscribe(userId, topic) {
    const [[, added]] = await this.redis
      .multi()
      .sadd(`${this.p}t:${topic}`, String(userId))
      .sadd(`${this.p}ut:${userId}`, topic)
      .exec();
    return added === 1;
  }

  async unsubscribe(userId, topic) {
    const [[, removed]] = await this.redis
      .multi()
      .srem(`${this.p}t:${topic}`, String(userId))
      .srem(`${this.p}ut:${userId}`, topic)
      .exec();
    return removed === 1;
  }

  subscribers(topic) {
    return this.redis.smembers(`${this.p}t:${topic}`);
  }

  topicsOf(userId) {
    return this.redis.smembers(`${this.p}ut:${userId}`);
  }

  async touch(connectionId, now = Date.now()) {
    // XX: only a connection still known (one forgotten meanwhile stays forgotten).
    await this.redis.zadd(`${this.p}seen`, 'XX', now, connectionId);
  }

  idleSince(before) {
    return this.redis.zrangebyscore(`${this.p}seen`, '-inf', `(${before}`);
  }

  async expectAuth(connectionId, deadline) {
    await this.redis.wsdeployExpect(this.p, connectionId, deadline);
  }

  overdue(now = Date.now()) {
    return this.redis.wsdeployOverdue(this.p, now);
  }
}

class RedisReplayBuffer {
  /**
   * The same bounds as MemoryReplayBuffer: `maxMessages` per user, each kept `maxAgeMs`, a user's sequence
   * forgotten after `forgetAfterMs` without a message. A user's ids start at 1000 x the time of their first
   * message, so that a sequence forgotten and started again starts above the old one.
   */
  constructor(redis, { prefix = 'wsdeploy:', maxMessages = 200, maxAgeMs = 5 * 60 * 1000, forgetAfterMs = 24 * 60 * 60 * 1000 } = {}) {
    if (!(maxMessages >= 1) || !(maxAgeMs >= 1)) throw new Error('maxMessages and maxAgeMs must be positive');
    Object.assign(this, { redis, p: prefix, maxMessages, maxAgeMs, forgetAfterMs: Math.max(forgetAfterMs, maxAgeMs) });
  }

  async append(userId, encode, now = Date.now()) {
    const seq = `${this.p}seq:${userId}`;
    const kept = `${this.p}r:${userId}`;
    const [, [, id]] = await this.redis
      .multi()
      .set(seq, String(now * 1000), 'PX', this.forgetAfterMs, 'NX')
      .incr(seq)
      .pexpire(seq, this.forgetAfterMs)
      .exec();
    const body = encode(id);
    await this.redis
      .multi()
      .zadd(kept, id, `${id}:${now}:${body.toString('base64')}`)
      .zremrangebyrank(kept, 0, -(this.maxMessages + 1))
      .pexpire(kept, this.forgetAfterMs)
      .exec();
    return { id, body };
  }

  async since(userId, afterId, now = Date.now()) {
    const members = await this.redis.zrangebyscore(`${this.p}r:${userId}`, `(${afterId}`, '+inf');
    return members
      .map((m) => {
        const [id, at, body] = m.split(':');
        return { id: Number(id), at: Number(at), body: Buffer.from(body, 'base64') };
      })
      .filter((e) => now - e.at <= this.maxAgeMs);
  }
}

module.exports = { RedisConnectionStore, RedisReplayBuffer };
