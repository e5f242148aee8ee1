// Pushes data to users' open sockets through API Gateway's @connections API (or `wsdeploy dev`'s, which speaks the
// same protocol): to one user, to a topic's subscribers, to everyone online.
//
// Each message goes out as {"type": "push", "id": <the user's next id>, "topic": <if any>, "data": <your data>} and
// is kept a while in socket_messages: a page that reconnects (API Gateway ends every socket within 2 hours) resumes
// after the last id it saw, and the snippet hands your onMessage each `data` once, in order. The table is shared by
// every instance of your backend, so the ids of a user stay one sequence however many there are. Topic messages
// take the same per-user sequence: one publish costs one row per subscriber and one post per open socket.
//
// Presence: {"type": "presence", "topic", "userId", "online"} goes to a topic's other subscribers when a
// subscriber's first socket authenticates (or an online user subscribes) and when its last one goes: its
// $disconnect, a 410 found while sending, or the sweep, which asks @connections about connections not heard from
// for `idleMs` (so presence() is right within idleMs + intervalMs, 3 minutes by default). Not replayed. A join
// tells every online subscriber (n joins: n²/2 posts), so big topics should have it off (options.presence).
import * as http from 'node:http';
import * as https from 'node:https';
import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GetConnectionCommand,
  GoneException,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { In, LessThan, LessThanOrEqual, MoreThan, QueryFailedError, Repository } from 'typeorm';
import { FanoutFunction } from './fanout-function';
import { SocketConnection } from './socket-connection.entity';
import { SocketMessage } from './socket-message.entity';
import { SocketPending } from './socket-pending.entity';
import { SocketSubscription } from './socket-subscription.entity';
import { ResolvedSocketOptions, SOCKET_OPTIONS } from './socket.options';

/** A user sent nothing for this long is forgotten, sequence included (a page resuming after that sees a gap). */
const FORGET_AFTER_MS = 24 * 60 * 60 * 1000;
const TOPIC = /^[^\u0000-\u001f\u007f]{1,256}$/;

/** What a publish or a broadcast did: posts delivered, sockets found gone (and forgotten), posts that failed. */
export interface Delivery {
  delivered: number;
  gone: number;
  failed: number;
}

type Message = (id: number) => Record<string, unknown>;
type Outcome = { outcome: keyof Delivery; error?: unknown };

@Injectable()
export class SocketService implements OnModuleDestroy {
  private readonly logger = new Logger(SocketService.name);
  private readonly client: ApiGatewayManagementApiClient;
  private readonly replay: ResolvedSocketOptions['replay'];
  /** Per user, the last keep() of this process: they run one after the other, so only instances ever collide. */
  private readonly keeping = new Map<number, Promise<unknown>>();
  private readonly fanOutOptions: ResolvedSocketOptions['fanOut'];
  private readonly announces: ResolvedSocketOptions['presence'];
  private readonly sweeper: NodeJS.Timeout;
  private readonly connectionSweeper?: NodeJS.Timeout;
  private readonly fanoutFunction?: FanoutFunction;

  constructor(
    @InjectRepository(SocketConnection) private readonly connections: Repository<SocketConnection>,
    @InjectRepository(SocketMessage) private readonly messages: Repository<SocketMessage>,
    @InjectRepository(SocketSubscription) private readonly subscriptions: Repository<SocketSubscription>,
    @InjectRepository(SocketPending) private readonly pending: Repository<SocketPending>,
    @Inject(SOCKET_OPTIONS) options: ResolvedSocketOptions,
  ) {
    this.replay = options.replay;
    this.fanOutOptions = options.fanOut;
    this.announces = options.presence;
    const sweep = options.sweep;
    if (sweep) {
      this.connectionSweeper = setInterval(() => {
        this.sweep(sweep.idleMs).catch((err: unknown) => this.logger.warn(`sweep failed: ${String(err)}`));
        // Sockets whose timers a restarted instance lost.
        this.closeUnauthenticated().catch((err: unknown) => this.logger.warn(`closing unauthenticated sockets failed: ${String(err)}`));
      }, sweep.intervalMs);
      this.connectionSweeper.unref();
    }
    // A user who is sent nothing more keeps their newest row: rows untouched for a day go, sequence and all.
    this.sweeper = setInterval(() => {
      this.messages.delete({ createdAt: LessThan(Date.now() - FORGET_AFTER_MS) }).catch((err: unknown) => {
        this.logger.warn(`pruning socket_messages failed: ${String(err)}`);
      });
    }, this.replay.maxAgeMs);
    this.sweeper.unref();
    const f = options.fanoutFunction;
    if (f) {
      const config = { region: options.region, endpoint: f.endpoint, credentials: options.credentials };
      this.fanoutFunction = new FanoutFunction(f.name, f.threshold, f.chunkIds, f.invokes, config);
    }
    const agent = { keepAlive: true, maxSockets: options.fanOut.concurrency };
    this.client = new ApiGatewayManagementApiClient({
      endpoint: options.endpoint,
      region: options.region,
      credentials: options.credentials,
      // Retries are this service's (429 and 5xx, full jitter, within the deadline), not the SDK's.
      maxAttempts: 1,
      requestHandler: { httpAgent: new http.Agent(agent), httpsAgent: new https.Agent(agent) },
    });
  }

  /**
   * Sends `data` (JSON-encoded) to every open socket of the user, keeps it for the user's sockets to come, and
   * returns how many got it; throws when every socket failed. A socket that closed without its $disconnect reaching
   * us answers 410 GoneException: its row is deleted.
   */
  async sendMessage(userId: number, data: unknown): Promise<number> {
    const r = await this.toUsers([userId], (id) => ({ type: 'push', id, data }));
    if (r.failed > 0 && r.delivered === 0) throw r.lastError;
    return r.delivered;
  }

  /** Sends `data` to every open socket of every subscriber of `topic`. */
  async publish(topic: string, data: unknown): Promise<Delivery> {
    checkTopic(topic);
    const rows = await this.subscriptions.find({ where: { topic }, select: { userId: true } });
    return counts(await this.toUsers(rows.map((r) => r.userId), (id) => ({ type: 'push', id, topic, data })));
  }

  /** Sends `data` to every user with an open socket. */
  async broadcast(data: unknown): Promise<Delivery> {
    return counts(await this.toUsers(await this.onlineUsers(), (id) => ({ type: 'push', id, data })));
  }

  /** Subscribes the user to `topic` (your backend decides who may); idempotent. */
  async subscribe(userId: number, topic: string): Promise<void> {
    checkTopic(topic);
    if (await this.subscriptions.exists({ where: { userId, topic } })) return;
    try {
      await this.subscriptions.insert({ userId, topic });
    } catch (err) {
      if (err instanceof QueryFailedError) return; // another instance subscribed them meanwhile
      throw err;
    }
    if (await this.isOnline(userId)) await this.announce(userId, true, [topic]);
  }

  async unsubscribe(userId: number, topic: string): Promise<void> {
    checkTopic(topic);
    if (!(await this.subscriptions.exists({ where: { userId, topic } }))) return;
    await this.subscriptions.delete({ userId, topic });
    if (await this.isOnline(userId)) await this.announce(userId, false, [topic]);
  }

  /** The subscribers of `topic` with at least one open socket now. */
  async presence(topic: string): Promise<number[]> {
    checkTopic(topic);
    const rows = await this.subscriptions.find({ where: { topic }, select: { userId: true } });
    const online = new Set(await this.onlineUsers(rows.map((r) => r.userId)));
    return rows.map((r) => r.userId).filter((u) => online.has(u));
  }

  /** A connection authenticated (the controller calls it): kept, and the user's topics told if it is the first. */
  async register(connectionId: string, userId: number): Promise<void> {
    // upsert: the Lambda retries, and a user may send the auth message twice on one socket.
    await this.connections.upsert({ connectionId, userId, lastSeenAt: Date.now() }, ['connectionId']);
    await this.pending.delete({ connectionId });
    if ((await this.connections.count({ where: { userId } })) === 1) await this.announce(userId, true);
  }

  /** A connection is gone: forgotten, and the user's topics told if it was the last. */
  async forget(connectionId: string): Promise<void> {
    await this.pending.delete({ connectionId });
    const row = await this.connections.findOne({ where: { connectionId }, select: { userId: true } });
    if (!row) return;
    await this.connections.delete({ connectionId });
    if (!(await this.isOnline(row.userId))) await this.announce(row.userId, false);
  }

  /** Asks @connections about the connections not heard from for `idleMs` and forgets the gone ones. */
  async sweep(idleMs = 120_000): Promise<{ checked: number; gone: number }> {
    const idle = await this.connections.find({
      where: { lastSeenAt: LessThan(Date.now() - idleMs) },
      select: { connectionId: true },
    });
    let gone = 0;
    await pool(idle, this.fanOutOptions.concurrency, async ({ connectionId }) => {
      if (await this.describe(connectionId)) await this.connections.update({ connectionId }, { lastSeenAt: Date.now() });
      else {
        gone++;
        await this.forget(connectionId);
      }
    });
    return { checked: idle.length, gone };
  }

  /**
   * A socket that has yet to authenticate (the controller calls it when the connect function reports one, under
   * `auth_timeout_s`): closed at `deadline` (ms) unless it authenticates first.
   */
  async expectAuth(connectionId: string, deadline: number): Promise<void> {
    if (await this.connections.exists({ where: { connectionId } })) return;
    await this.pending.upsert({ connectionId, deadline }, ['connectionId']);
    const timer = setTimeout(() => {
      this.closeUnauthenticated().catch((err: unknown) => this.logger.warn(`closing unauthenticated sockets failed: ${String(err)}`));
    }, Math.max(0, deadline - Date.now()) + 5);
    timer.unref();
  }

  /**
   * Closes (DELETE @connections) every socket whose time to authenticate has passed. Its $disconnect follows as for
   * any close. A close that fails for a passing reason (429, 5xx) is tried again a second later.
   */
  async closeUnauthenticated(now = Date.now()): Promise<{ closed: number }> {
    const due = await this.pending.find({ where: { deadline: LessThanOrEqual(now) }, select: { connectionId: true } });
    if (due.length === 0) return { closed: 0 };
    // Whoever deletes a row closes its socket, so two instances never both do.
    const mine: string[] = [];
    for (const { connectionId } of due) {
      if ((await this.pending.delete({ connectionId, deadline: LessThanOrEqual(now) })).affected) mine.push(connectionId);
    }
    let closed = 0;
    await pool(mine, this.fanOutOptions.concurrency, async (connectionId) => {
      try {
        await this.client.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
        closed++;
      } catch (err) {
        if (isGone(err)) return;
        if (retryable(err)) return this.expectAuth(connectionId, Date.now() + 1_000);
        this.logger.warn(`could not close unauthenticated socket ${connectionId}: ${String(err)}`);
      }
    });
    return { closed };
  }

  /**
   * Sends a new connection of the user what the user was sent after `afterId` (the last id its page saw) and is
   * still kept, oldest first. The controller calls it when a page resumes. Returns how many were sent.
   */
  async replayTo(userId: number, connectionId: string, afterId: number): Promise<number> {
    const missed = await this.messages.find({
      where: { userId, id: MoreThan(afterId), createdAt: MoreThan(Date.now() - this.replay.maxAgeMs) },
      order: { id: 'ASC' },
    });
    const encoder = new TextEncoder();
    for (const [i, m] of missed.entries()) {
      if ((await this.deliver(connectionId, encoder.encode(m.body))).outcome !== 'delivered') return i;
    }
    return missed.length;
  }

  /**
   * Stores the message under the user's next id. Two instances may pick the same id at once: the primary key
   * refuses the second insert, which then takes the next one. A user's first id is 1000 x the time in ms, above
   * any id of a sequence that was pruned away, so a page resuming after that sees a gap, not duplicates.
   */
  private keep(userId: number, message: Message): Promise<SocketMessage> {
    const previous = this.keeping.get(userId) ?? Promise.resolve();
    const kept = previous.catch(() => undefined).then(() => this.insertNext(userId, message));
    this.keeping.set(userId, kept);
    // The map holds a user only while a keep() of theirs is pending.
    const forget = () => this.keeping.get(userId) === kept && this.keeping.delete(userId);
    kept.then(forget, forget);
    return kept;
  }

  private async insertNext(userId: number, message: Message): Promise<SocketMessage> {
    for (let attempt = 0; ; attempt++) {
      const last = await this.messages.findOne({ where: { userId }, order: { id: 'DESC' }, select: { id: true } });
      const now = Date.now();
      const id = last ? last.id + 1 : now * 1000;
      const row = this.messages.create({ userId, id, createdAt: now, body: JSON.stringify(message(id)) });
      try {
        await this.messages.insert(row);
      } catch (err) {
        // Taken meanwhile (each driver words its duplicate-key error its own way); anything else is not ours.
        if (err instanceof QueryFailedError && attempt < 5) continue;
        throw err;
      }
      // The newest row stays whatever its age: it carries the sequence on.
      await this.messages.delete({ userId, id: LessThan(id - this.replay.maxMessages + 1) });
      await this.messages.delete({ userId, id: LessThan(id), createdAt: LessThan(now - this.replay.maxAgeMs) });
      return row;
    }
  }

  onModuleDestroy(): void {
    clearInterval(this.sweeper);
    clearInterval(this.connectionSweeper);
  }

  /**
   * The connection as API Gateway sees it now, or null when it is closed (410). The controller asks before it binds
   * a connection to a user and before it forgets one, so that a caller holding the signing secret alone can neither
   * bind someone else's open socket to their own user nor make the backend forget a socket that is still open.
   */
  async describe(connectionId: string): Promise<{ sourceIp?: string; connectedAt?: Date } | null> {
    try {
      const r = await this.client.send(new GetConnectionCommand({ ConnectionId: connectionId }));
      return { sourceIp: r.Identity?.SourceIp, connectedAt: r.ConnectedAt };
    } catch (err) {
      if (isGone(err)) return null;
      throw err;
    }
  }

  private async isOnline(userId: number): Promise<boolean> {
    return (await this.connections.count({ where: { userId } })) > 0;
  }

  /** The users with an open socket, of `among` when given. */
  private async onlineUsers(among?: number[]): Promise<number[]> {
    const rows = await this.connections.find({
      where: among ? { userId: In(among) } : {},
      select: { userId: true },
    });
    return [...new Set(rows.map((r) => r.userId))];
  }

  // Each user's message takes the user's next id (kept before the connections are read: a socket registered
  // meanwhile gets it by replayTo() or by this send), then every socket of every user gets its post.
  private async toUsers(users: number[], message: Message): Promise<Delivery & { lastError?: unknown }> {
    const bodies = new Map<number, Uint8Array>();
    const encoder = new TextEncoder();
    await pool(users, this.fanOutOptions.concurrency, async (userId) => {
      bodies.set(userId, encoder.encode((await this.keep(userId, message)).body));
    });
    const rows = users.length === 0 ? [] : await this.connections.find({ where: { userId: In(users) } });
    return this.fanOut(rows.map((r) => ({ connectionId: r.connectionId, body: bodies.get(r.userId)! })));
  }

  private async announce(userId: number, online: boolean, topics?: string[]): Promise<void> {
    const encoder = new TextEncoder();
    const targets: { connectionId: string; body: Uint8Array }[] = [];
    const mine = topics ?? (await this.subscriptions.find({ where: { userId } })).map((r) => r.topic);
    for (const topic of mine.filter((t) => this.announces(t))) {
      const body = encoder.encode(JSON.stringify({ type: 'presence', topic, userId, online }));
      const others = (await this.subscriptions.find({ where: { topic } })).map((r) => r.userId).filter((u) => u !== userId);
      if (others.length === 0) continue;
      for (const r of await this.connections.find({ where: { userId: In(others) } })) {
        targets.push({ connectionId: r.connectionId, body });
      }
    }
    await this.fanOut(targets);
  }

  // Large audiences through the fan-out function when it is deployed, the rest (and what it fails on) directly.
  private async fanOut(targets: { connectionId: string; body: Uint8Array }[]): Promise<Delivery & { lastError?: unknown }> {
    const f = this.fanoutFunction;
    if (!f || targets.length < f.threshold) return this.postEach(targets);
    const result: Delivery & { lastError?: unknown } = { delivered: 0, gone: 0, failed: 0 };
    await pool(f.chunks(targets), f.invokes, async (chunk) => {
      let answer;
      try {
        answer = await f.invoke(chunk);
      } catch (err) {
        this.logger.warn(`the fan-out function failed (${String(err)}): posting to ${chunk.length} sockets directly`);
        const direct = await this.postEach(chunk);
        result.delivered += direct.delivered;
        result.gone += direct.gone;
        result.failed += direct.failed;
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
  private async postEach(targets: { connectionId: string; body: Uint8Array }[]): Promise<Delivery & { lastError?: unknown }> {
    const result: Delivery & { lastError?: unknown } = { delivered: 0, gone: 0, failed: 0 };
    await pool(targets, this.fanOutOptions.concurrency, async ({ connectionId, body }) => {
      const { outcome, error } = await this.deliver(connectionId, body);
      result[outcome]++;
      if (error !== undefined) {
        result.lastError = error;
        this.logger.error(`postToConnection to ${connectionId} failed: ${String(error)}`);
      }
    });
    return result;
  }

  /**
   * One post: delivered, gone (410: the row is deleted) or failed (after retrying 429 and 5xx for deadlineMs, from
   * this post's first attempt: one that waited behind thousands of others in a publish is not failed for waiting).
   */
  private async deliver(connectionId: string, body: Uint8Array): Promise<Outcome> {
    const deadline = Date.now() + this.fanOutOptions.deadlineMs;
    for (let attempt = 0; ; attempt++) {
      // Its own timer rather than AbortSignal.timeout(), whose timer does not keep the process waiting for it.
      const abort = new AbortController();
      const limit = Math.max(1, Math.min(this.fanOutOptions.postTimeoutMs, deadline - Date.now()));
      const timer = setTimeout(() => abort.abort(), limit);
      try {
        await this.client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: body }), {
          abortSignal: abort.signal,
        });
        await this.connections.update({ connectionId }, { lastSeenAt: Date.now() });
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

function counts({ delivered, gone, failed }: Delivery): Delivery {
  return { delivered, gone, failed };
}

function checkTopic(topic: string): void {
  if (typeof topic !== 'string' || !TOPIC.test(topic)) {
    throw new TypeError(`a topic is a string of 1 to 256 characters without control characters, not ${JSON.stringify(topic)}`);
  }
}

/** Runs `fn` over `items` with at most `limit` at once. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

// Throttled (429), failing (5xx), or no answer in time (timeouts, resets): worth another try. A post that timed out
// may have arrived: the snippet drops a push whose id it has seen.
function retryable(err: unknown): boolean {
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return status === undefined || status === 429 || status >= 500;
}

function isGone(err: unknown): boolean {
  return err instanceof GoneException || (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 410;
}
