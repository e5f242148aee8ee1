// Pushes data to a user's open sockets through API Gateway's @connections API (or `wsdeploy dev`'s, which speaks
// the same protocol).
//
// Each message goes out as {"type": "push", "id": <the user's next id>, "data": <your data>} and is kept a while in
// socket_messages: a page that reconnects (API Gateway ends every socket within 2 hours) resumes after the last id
// it saw, and the snippet hands your onMessage each `data` once, in order. The table is shared by every instance of
// your backend, so the ids of a user stay one sequence however many there are.
import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import {
  ApiGatewayManagementApiClient,
  GetConnectionCommand,
  GoneException,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { LessThan, MoreThan, QueryFailedError, Repository } from 'typeorm';
import { SocketConnection } from './socket-connection.entity';
import { SocketMessage } from './socket-message.entity';
import { ResolvedSocketOptions, SOCKET_OPTIONS } from './socket.options';

/** A user sent nothing for this long is forgotten, sequence included (a page resuming after that sees a gap). */
const FORGET_AFTER_MS = 24 * 60 * 60 * 1000;

@Injectable()
export class SocketService implements OnModuleDestroy {
  private readonly logger = new Logger(SocketService.name);
  private readonly client: ApiGatewayManagementApiClient;
  private readonly replay: ResolvedSocketOptions['replay'];
  /** Per user, the last keep() of this process: they run one after the other, so only instances ever collide. */
  private readonly keeping = new Map<number, Promise<unknown>>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    @InjectRepository(SocketConnection) private readonly connections: Repository<SocketConnection>,
    @InjectRepository(SocketMessage) private readonly messages: Repository<SocketMessage>,
    @Inject(SOCKET_OPTIONS) options: ResolvedSocketOptions,
  ) {
    this.replay = options.replay;
    // A user who is sent nothing more keeps their newest row: rows untouched for a day go, sequence and all.
    this.sweeper = setInterval(() => {
      this.messages.delete({ createdAt: LessThan(Date.now() - FORGET_AFTER_MS) }).catch((err: unknown) => {
        this.logger.warn(`pruning socket_messages failed: ${String(err)}`);
      });
    }, this.replay.maxAgeMs);
    this.sweeper.unref();
    this.client = new ApiGatewayManagementApiClient({
      endpoint: options.endpoint,
      region: options.region,
      credentials: options.credentials,
    });
  }

  /**
   * Sends `data` (JSON-encoded) to every open socket of the user, keeps it for the user's sockets to come, and
   * returns how many got it. A socket that closed without its $disconnect reaching us answers 410 GoneException:
   * its row is deleted.
   */
  async sendMessage(userId: number, data: unknown): Promise<number> {
    // Kept before the connections are read: a socket registered meanwhile gets it by replayTo() or by this send.
    const kept = await this.keep(userId, data);
    const rows = await this.connections.find({ where: { userId }, select: { connectionId: true } });
    const payload = new TextEncoder().encode(kept.body);
    const results = await Promise.allSettled(rows.map((r) => this.post(r.connectionId, payload)));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    for (const f of failed) this.logger.error(`postToConnection failed: ${String(f.reason)}`);
    if (failed.length > 0 && failed.length === results.length) throw failed[0].reason;
    return results.filter((r) => r.status === 'fulfilled' && r.value).length;
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
      if (!(await this.post(connectionId, encoder.encode(m.body)))) return i;
    }
    return missed.length;
  }

  /**
   * Stores the message under the user's next id. Two instances may pick the same id at once: the primary key
   * refuses the second insert, which then takes the next one. A user's first id is 1000 x the time in ms, above
   * any id of a sequence that was pruned away, so a page resuming after that sees a gap, not duplicates.
   */
  private keep(userId: number, data: unknown): Promise<SocketMessage> {
    const previous = this.keeping.get(userId) ?? Promise.resolve();
    const kept = previous.catch(() => undefined).then(() => this.insertNext(userId, data));
    this.keeping.set(userId, kept);
    // The map holds a user only while a keep() of theirs is pending.
    const forget = () => this.keeping.get(userId) === kept && this.keeping.delete(userId);
    kept.then(forget, forget);
    return kept;
  }

  private async insertNext(userId: number, data: unknown): Promise<SocketMessage> {
    for (let attempt = 0; ; attempt++) {
      const last = await this.messages.findOne({ where: { userId }, order: { id: 'DESC' }, select: { id: true } });
      const now = Date.now();
      const id = last ? last.id + 1 : now * 1000;
      const row = this.messages.create({ userId, id, createdAt: now, body: JSON.stringify({ type: 'push', id, data }) });
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
  }

  /** true when delivered, false when the connection was gone (and is now deleted). */
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

  private async post(connectionId: string, payload: Uint8Array): Promise<boolean> {
    try {
      await this.client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: payload }));
      return true;
    } catch (err) {
      if (isGone(err)) {
        await this.connections.delete({ connectionId });
        return false;
      }
      throw err;
    }
  }
}

function isGone(err: unknown): boolean {
  return err instanceof GoneException || (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 410;
}
