// Pushes data to users' open sockets through API Gateway's @connections API (or `wsdeploy dev`'s, which speaks the
// same protocol): to one user, to a topic's subscribers, to everyone online. Endpoint, region and keys come from the
// env file wsdeploy writes.
//
// Each message goes out as {"type": "push", "id": <the user's next id>, "topic": <the topic, if any>, "data": ...}
// and is kept a while in the user's replay buffer: a page that reconnects (API Gateway ends every socket within
// 2 hours) resumes after the last id it saw, and the snippet hands your onMessage each `data` once, in order. Topic
// messages take the same per-user sequence, so one publish costs one replay write per subscriber (and one post per
// open socket), and a page resumes every topic at once with the one id it remembers.
//
// Presence: {"type": "presence", "topic", "userId", "online"} goes to a topic's other subscribers when a subscriber's
// first socket authenticates (or an online user subscribes) and when its last one goes: its $disconnect, a 410
// found while sending, or the sweep. $disconnect is best-effort on AWS, so the sweep asks @connections about every
// connection not heard from for `idleMs` and forgets the gone ones: presence() is right within idleMs + intervalMs
// (3 minutes by default). Presence events are not replayed: a page that reconnects asks presence() through your API.
// A join tells every online subscriber, so n users joining one topic cost n²/2 posts: topics of thousands (a live
// event's audience) should have presence off (opts.presence below; Pusher caps its presence channels at 100 members
// for the same reason).
'use strict';

const http = require('node:http');
const https = require('node:https');
const {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GetConnectionCommand,
  PostToConnectionCommand,
} = require('@aws-sdk/client-apigatewaymanagementapi');
const { MemoryReplayBuffer } = require('./replay-buffer');

const TOPIC = /^[^\u0000-\u001f\u007f]{1,256}$/;

class SocketService {
  /**
   * @param {object} store  where connections and topics live (the interface is in memory-store.js)
   * @param {object} [env]  defaults to process.env
   * @param {object} [opts]
   * @param {object} [opts.replay]  where sent messages are kept for reconnecting pages: { append, since }, both
   *   may be async; a MemoryReplayBuffer (one process) unless given
   * @param {number} [opts.concurrency=128]  posts in flight at most, on as many kept-alive connections (measured
   *   by scripts/bench: against a 30 ms round trip, 128 delivers to 10,000 sockets 1.5x faster than 32; on
   *   loopback the two are even)
   * @param {number} [opts.deadlineMs=10000]  a post gives up retrying this long after its first attempt (its own
   *   clock: a post that waited its turn in a big publish still gets the whole of it)
   * @param {number} [opts.postTimeoutMs=3000]  one post's own limit, so that a slow socket holds up only itself
   * @param {object|false} [opts.sweep]  { intervalMs = 60000, idleMs = 120000 }, or false for no timer (call
   *   sweep() yourself)
   * @param {boolean|function} [opts.presence=true]  which topics get presence events: true, false, or
   *   (topic) => boolean (e.g. `(t) => !t.startsWith('live:')`); presence() answers for every topic either way
   * @param {object|false} [opts.fanout]  with `fanout: true` in wsdeploy.yaml (WS_FANOUT_FUNCTION in the env file;
   *   `npm install @aws-sdk/client-lambda`): { threshold = 500, chunkIds = 5000, invokes = 8 }. A publish or
   *   broadcast to at least `threshold` sockets is handed to the bundled fan-out function, which posts from inside
   *   the region: chunks of at most `chunkIds` ids (and 5 MB), `invokes` at once. A chunk whose invoke fails is
   *   posted directly instead. false: always post directly.
   */
  constructor(
    store,
    env = process.env,
    {
      replay = new MemoryReplayBuffer(),
      concurrency = 128,
      deadlineMs = 10_000,
      postTimeoutMs = 3_000,
      sweep = {},
      presence = true,
      fanout = {},
    } = {},
  ) {
    for (const key of ['WS_API_ENDPOINT', 'WS_API_REGION']) {
      if (!env[key]) throw new Error(`${key} is not set: run \`wsdeploy dev\` or \`wsdeploy up\` to write it into your env file`);
    }
    if (!(concurrency >= 1)) throw new Error('concurrency must be at least 1');
    Object.assign(this, { store, replay, concurrency, deadlineMs, postTimeoutMs });
    this.announces = typeof presence === 'function' ? presence : () => presence;
    // Without WS_API_ACCESS_KEY_ID (credentials: policy), the SDK's own chain applies: your backend's IAM role.
    const credentials = env.WS_API_ACCESS_KEY_ID
      ? { accessKeyId: env.WS_API_ACCESS_KEY_ID, secretAccessKey: env.WS_API_SECRET_ACCESS_KEY }
      : undefined;
    const agent = { keepAlive: true, maxSockets: concurrency };
    this.client = new ApiGatewayManagementApiClient({
      endpoint: env.WS_API_ENDPOINT,
      region: env.WS_API_REGION,
      credentials,
      // Retries are this service's (429 and 5xx, full jitter, within the deadline), not the SDK's.
      maxAttempts: 1,
      requestHandler: { httpAgent: new http.Agent(agent), httpsAgent: new https.Agent(agent) },
    });
    this.fanout = fanout !== false && env.WS_FANOUT_FUNCTION ? fanoutClient(env, credentials, fanout) : null;
    if (sweep !== false) {
      const { intervalMs = 60_000, idleMs = 120_000 } = sweep;
      this.sweeper = setInterval(() => {
        this.sweep({ idleMs }).catch((err) => console.error('wsdeploy: sweep failed', err));
        // Sockets whose timers a restarted process lost.
        this.closeUnauthenticated().catch((err) => console.error('wsdeploy: closing unauthenticated sockets failed', err));
      }, intervalMs);
      this.sweeper.unref?.();
    }
  }

  /**
   * Sends `data` to every open socket of `userId`, and keeps it for the user's sockets to come. Returns how many
   * sockets got it; throws when every socket failed.
   */
  async sendMessage(userId, data) {
    const r = await this.toUsers([userId], (id) => ({ type: 'push', id, data }));
    if (r.failed > 0 && r.delivered === 0) throw r.lastError;
    return r.delivered;
  }

  /** Sends `data` to every open socket of every subscriber of `topic`: { delivered, gone, failed }. */
  async publish(topic, data) {
    checkTopic(topic);
    const users = await this.store.subscribers(topic);
    return counts(await this.toUsers(users, (id) => ({ type: 'push', id, topic, data })));
  }

  /** Sends `data` to every user with an open socket: { delivered, gone, failed }. */
  async broadcast(data) {
    const users = await this.store.connectedUsers();
    return counts(await this.toUsers(users, (id) => ({ type: 'push', id, data })));
  }

  /** Subscribes `userId` to `topic` (your backend decides who may); idempotent. */
  async subscribe(userId, topic) {
    checkTopic(topic);
    if ((await this.store.subscribe(userId, topic)) && (await this.online(userId))) {
      await this.announce(userId, true, [topic]);
    }
  }

  async unsubscribe(userId, topic) {
    checkTopic(topic);
    if ((await this.store.unsubscribe(userId, topic)) && (await this.online(userId))) {
      await this.announce(userId, false, [topic]);
    }
  }

  /** The subscribers of `topic` with at least one open socket now. */
  async presence(topic) {
    checkTopic(topic);
    const online = new Set(await this.store.connectedUsers());
    return (await this.store.subscribers(topic)).filter((u) => online.has(u));
  }

  /** Whether `userId` has at least one open socket. */
  async online(userId) {
    return (await this.store.forUser(userId)).length > 0;
  }

  /** A connection authenticated (socketConnections() calls it): kept, and the user's topics told if it is the first. */
  async register(connectionId, userId) {
    const { sockets } = await this.store.add(connectionId, userId, Date.now());
    if (sockets === 1) await this.announce(userId, true);
  }

  /** A connection is gone: forgotten, and the user's topics told if it was the last. */
  async forget(connectionId) {
    const left = await this.store.remove(connectionId);
    if (left && left.sockets === 0) await this.announce(left.userId, false);
  }

  /**
   * Asks @connections about every connection not heard from for `idleMs` and forgets those that are gone (their
   * $disconnect never reached the backend): { checked, gone }.
   */
  async sweep({ idleMs = 120_000 } = {}) {
    const idle = await this.store.idleSince(Date.now() - idleMs);
    let gone = 0;
    await pool(idle, this.concurrency, async (connectionId) => {
      if (await this.describe(connectionId)) await this.store.touch(connectionId, Date.now());
      else {
        gone++;
        await this.forget(connectionId);
      }
    });
    return { checked: idle.length, gone };
  }

  /**
   * A socket that has yet to authenticate (socketConnections() calls it when the connect function reports one,
   * under `auth_timeout_s`): closed at `deadline` (ms) unless it authenticates first.
   */
  async expectAuth(connectionId, deadline) {
    await this.store.expectAuth(connectionId, deadline);
    const timer = setTimeout(() => {
      this.closeUnauthenticated().catch((err) => console.error('wsdeploy: closing unauthenticated sockets failed', err));
    }, Math.max(0, deadline - Date.now()) + 5);
    timer.unref?.();
  }

  /**
   * Closes (DELETE @connections) every socket whose time to authenticate has passed: { closed }. Its $disconnect
   * follows as for any close. A close that fails for a passing reason (429, 5xx) is tried again a second later.
   */
  async closeUnauthenticated(now = Date.now()) {
    const overdue = await this.store.overdue(now);
    let closed = 0;
    await pool(overdue, this.concurrency, async (connectionId) => {
      try {
        await this.client.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
        closed++;
      } catch (err) {
        if (isGone(err)) return;
        if (retryable(err)) return this.expectAuth(connectionId, Date.now() + 1_000);
        console.error(`wsdeploy: could not close unauthenticated socket ${connectionId}`, err);
      }
    });
    return { closed };
  }

  /**
   * Sends a new connection of `userId` what the user was sent after `afterId` (the last id its page saw), oldest
   * first. Called by socketConnections() once the connection is registered. Returns how many were sent.
   */
  async replayTo(userId, connectionId, afterId) {
    const missed = await this.replay.since(userId, afterId);
    for (const [i, entry] of missed.entries()) {
      if ((await this.deliver(connectionId, entry.body)).outcome !== 'delivered') return i;
    }
    return missed.length;
  }

  /**
   * The connection as API Gateway sees it now, `{ sourceIp, connectedAt, lastActiveAt }`, or null when it is
   * closed (410). socketConnections() asks before it binds a connection to a user and before it forgets one, so
   * that a caller holding the signing secret alone can neither bind someone else's open socket to their own user
   * nor make the backend forget a socket that is still open.
   */
  async describe(connectionId) {
    try {
      const r = await this.client.send(new GetConnectionCommand({ ConnectionId: connectionId }));
      return { sourceIp: r.Identity?.SourceIp, connectedAt: r.ConnectedAt, lastActiveAt: r.LastActiveAt };
    } catch (err) {
      if (isGone(err)) return null;
      throw err;
    }
  }

  /** Stops the sweep timer (and the memory replay buffer's). */
  close() {
    clearInterval(this.sweeper);
    this.replay.close?.();
  }

  // Each user's message takes the user's next id (kept before the connections are read: a socket registered
  // meanwhile gets it by replay or by this send), then every socket of every user gets its post.
  async toUsers(users, message) {
    const targets = [];
    await pool(users, this.concurrency, async (userId) => {
      const { body } = await this.replay.append(userId, (id) => Buffer.from(JSON.stringify(message(id))));
      for (const connectionId of await this.store.forUser(userId)) targets.push({ connectionId, body });
    });
    return this.fanOut(targets);
  }

  async announce(userId, online, topics) {
    const targets = [];
    for (const topic of topics ?? (await this.store.topicsOf(userId))) {
      if (!this.announces(topic)) continue;
      const body = Buffer.from(JSON.stringify({ type: 'presence', topic, userId, online }));
      for (const other of await this.store.subscribers(topic)) {
        if (other === userId) continue;
        for (const connectionId of await this.store.forUser(other)) targets.push({ connectionId, body });
      }
    }
    return this.fanOut(targets);
  }

  // Large audiences through the fan-out function when it is deployed, the rest (and what it fails on) directly.
  async fanOut(targets) {
    if (this.fanout && targets.length >= this.fanout.threshold) return this.throughFunction(targets);
    return this.postEach(targets);
  }

  async throughFunction(targets) {
    const result = { delivered: 0, gone: 0, failed: 0, lastError: undefined };
    await pool(chunks(targets, this.fanout.chunkIds), this.fanout.invokes, async (chunk) => {
      let answer;
      try {
        answer = await this.fanout.invoke(chunk);
      } catch (err) {
        console.error(`wsdeploy: the fan-out function failed (${err.message}): posting to ${chunk.length} sockets directly`);
        const direct = await this.postEach(chunk);
        for (const k of ['delivered', 'gone', 'failed']) result[k] += direct[k];
        result.lastError = direct.lastError ?? result.lastError;
        return;
      }
      result.delivered += answer.delivered;
      result.gone += answer.gone.length;
      result.failed += answer.failed.length;
      if (answer.failed.length > 0) result.lastError = new Error(answer.failed[0].error);
      for (const connectionId of answer.gone) await this.forget(connectionId);
    });
    return result;
  }

  // At most `concurrency` posts in flight; each outcome counted.
  async postEach(targets) {
    const result = { delivered: 0, gone: 0, failed: 0, lastError: undefined };
    await pool(targets, this.concurrency, async ({ connectionId, body }) => {
      const { outcome, error } = await this.deliver(connectionId, body);
      result[outcome]++;
      if (error) result.lastError = error;
    });
    return result;
  }

  /**
   * One post: 'delivered', 'gone' (410: forgotten) or 'failed' (after retrying 429 and 5xx for deadlineMs). The
   * deadline starts at this post's first attempt: one that waited behind thousands of others in a publish is not
   * failed for having waited.
   */
  async deliver(connectionId, body) {
    const deadline = Date.now() + this.deadlineMs;
    for (let attempt = 0; ; attempt++) {
      // Its own timer rather than AbortSignal.timeout(), whose timer does not keep the process waiting for it.
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), Math.max(1, Math.min(this.postTimeoutMs, deadline - Date.now())));
      try {
        await this.client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: body }), {
          abortSignal: abort.signal,
        });
        await this.store.touch(connectionId, Date.now());
        return { outcome: 'delivered' };
      } catch (err) {
        if (isGone(err)) {
          await this.forget(connectionId);
          return { outcome: 'gone' };
        }
        // Full jitter (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/).
        const wait = Math.random() * Math.min(2_000, 50 * 2 ** attempt);
        if (!retryable(err) || Date.now() + wait >= deadline) return { outcome: 'failed', error: err };
        await new Promise((r) => setTimeout(r, wait));
      } finally {
        clearTimeout(timer);
      }
    }
  }
}

/** The fan-out function's client: `invoke(targets)` posts them through it and answers { delivered, gone, failed }. */
function fanoutClient(env, credentials, { threshold = 500, chunkIds = 5000, invokes = 8 }) {
  const { LambdaClient, InvokeCommand } = require('@aws-sdk/client-lambda');
  const client = new LambdaClient({
    region: env.WS_API_REGION,
    credentials,
    // `wsdeploy dev` runs the function behind its own Lambda API; on AWS the region's.
    endpoint: env.WS_FANOUT_FUNCTION_ENDPOINT || undefined,
    // A failed invoke is posted directly instead; the snippet drops a push it has seen, if both arrived.
    maxAttempts: 1,
  });
  const invoke = async (targets) => {
    // One message per group of sockets with the same body (a user's sockets share their message id).
    const groups = new Map();
    for (const { connectionId, body } of targets) {
      if (!groups.has(body)) groups.set(body, []);
      groups.get(body).push(connectionId);
    }
    const posts = [...groups].map(([body, connectionIds]) => ({ data: body.toString(), connectionIds }));
    const out = await client.send(
      new InvokeCommand({ FunctionName: env.WS_FANOUT_FUNCTION, Payload: Buffer.from(JSON.stringify({ posts })) }),
    );
    const answer = JSON.parse(Buffer.from(out.Payload ?? []).toString() || 'null');
    if (out.FunctionError) throw new Error(answer?.errorMessage ?? out.FunctionError);
    return answer;
  };
  return { threshold, chunkIds, invokes, invoke };
}

// A synchronous invoke carries 6 MB (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html):
// chunks stay under 5 MB of messages, and `maxIds` ids.
const MAX_CHUNK_BYTES = 5 * 1024 * 1024;

function chunks(targets, maxIds) {
  const out = [];
  let [chunk, bytes, seen] = [[], 0, new Set()];
  for (const t of targets) {
    if (chunk.length >= maxIds || (chunk.length > 0 && bytes + cost(t, seen) > MAX_CHUNK_BYTES)) {
      out.push(chunk);
      [chunk, bytes, seen] = [[], 0, new Set()];
    }
    bytes += cost(t, seen);
    chunk.push(t);
    seen.add(t.body);
  }
  if (chunk.length > 0) out.push(chunk);
  return out;
}

// What a target adds to a chunk: its id, and its message the first time the chunk carries it (as the JSON string
// it travels as).
function cost({ connectionId, body }, seen) {
  return connectionId.length + 3 + (seen.has(body) ? 0 : JSON.stringify(body.toString()).length + 32);
}

function counts({ delivered, gone, failed }) {
  return { delivered, gone, failed };
}

function checkTopic(topic) {
  if (typeof topic !== 'string' || !TOPIC.test(topic)) {
    throw new TypeError(`a topic is a string of 1 to 256 characters without control characters, not ${JSON.stringify(topic)}`);
  }
}

/** Runs `fn` over `items` with at most `limit` at once. */
async function pool(items, limit, fn) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function isGone(err) {
  return err.name === 'GoneException' || err.$metadata?.httpStatusCode === 410;
}

// Throttled (429), failing (5xx), or no answer in time (timeouts, resets): worth another try. A post that timed out
// may have arrived: the snippet drops a push whose id it has seen.
function retryable(err) {
  const status = err.$metadata?.httpStatusCode;
  return status === undefined || status === 429 || status >= 500;
}

module.exports = { SocketService };
