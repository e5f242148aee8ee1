// Pushes data to a user's open sockets through API Gateway's @connections API (or `wsdeploy dev`'s, which speaks
// the same protocol).
import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import {
  ApiGatewayManagementApiClient,
  GoneException,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { Repository } from 'typeorm';
import { SocketConnection } from './socket-connection.entity';
import { ResolvedSocketOptions, SOCKET_OPTIONS } from './socket.options';

@Injectable()
export class SocketService {
  private readonly logger = new Logger(SocketService.name);
  private readonly client: ApiGatewayManagementApiClient;

  constructor(
    @InjectRepository(SocketConnection) private readonly connections: Repository<SocketConnection>,
    @Inject(SOCKET_OPTIONS) options: ResolvedSocketOptions,
  ) {
    this.client = new ApiGatewayManagementApiClient({
      endpoint: options.endpoint,
      region: options.region,
      credentials: options.credentials,
    });
  }

  /**
   * Sends `data` (JSON-encoded) to every open socket of the user and returns how many got it. A socket that closed
   * without its $disconnect reaching us answers 410 GoneException: its row is deleted.
   */
  async sendMessage(userId: number, data: unknown): Promise<number> {
    const rows = await this.connections.find({ where: { userId }, select: { connectionId: true } });
    const payload = new TextEncoder().encode(JSON.stringify(data));
    const results = await Promise.allSettled(rows.map((r) => this.post(r.connectionId, payload)));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    for (const f of failed) this.logger.error(`postToConnection failed: ${String(f.reason)}`);
    if (failed.length > 0 && failed.length === results.length) throw failed[0].reason;
    return results.filter((r) => r.status === 'fulfilled' && r.value).length;
  }

  /** true when delivered, false when the connection was gone (and is now deleted). */
  private async post(connectionId: string, payload: Uint8Array): Promise<boolean> {
    try {
      await this.client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: payload }));
      return true;
    } catch (err) {
      if (err instanceof GoneException || (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 410) {
        await this.connections.delete({ connectionId });
        return false;
      }
      throw err;
    }
  }
}
