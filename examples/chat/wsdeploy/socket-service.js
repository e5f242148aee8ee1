// Pushes data to a user's open sockets through API Gateway's @connections API (or `wsdeploy dev`'s, which
// speaks the same protocol). Endpoint, region and keys come from the env file wsdeploy writes.
//
// Each message goes out as {"type": "push", "id": <the user's next id>, "data": <your data>} and is kept a while
// in the replay buffer: a page that reconnects (API Gateway ends every socket within 2 hours) resumes after the
// last id it saw, and the snippet hands your onMessage each `data` once, in order.
'use strict';

const {
  ApiGatewayManagementApiClient,
  GetConnectionCommand,
  PostToConnectionCommand,
} = require('@aws-sdk/client-apigatewaymanagementapi');
const { MemoryReplayBuffer } = require('./replay-buffer');

class SocketService {
  /**
   * @param {object} store  where connections live: { forUser(userId), remove(connectionId) }, both may be async
   * @param {object} [env]  defaults to process.env
   * @param {object} [opts]
   * @param {object} [opts.replay]  where sent messages are kept for reconnecting pages: { append, since }, both
   *   may be async; a MemoryReplayBuffer (one process) unless given
   */
  constructor(store, env = process.env, { replay = new MemoryReplayBuffer() } = {}) {
    for (const key of ['WS_API_ENDPOINT', 'WS_API_REGION']) {
      if (!env[key]) throw new Error(`${key} is not set: run \`wsdeploy dev\` or \`wsdeploy up\` to write it into your env file`);
    }
    this.store = store;
    this.replay = replay;
    // Without WS_API_ACCESS_KEY_ID (credentials: policy), the SDK's own chain applies: your backend's IAM role.
    const credentials = env.WS_API_ACCESS_KEY_ID
      ? { accessKeyId: env.WS_API_ACCESS_KEY_ID, secretAccessKey: env.WS_API_SECRET_ACCESS_KEY }
      : undefined;
    this.client = new ApiGatewayManagementApiClient({
      endpoint: env.WS_API_ENDPOINT,
      region: env.WS_API_REGION,
      credentials,
    });
  }

  /**
   * Sends `data` (JSON-encoded) to every open socket of `userId`, and keeps it for the user's sockets to come. A
   * socket that closed without its $disconnect reaching us answers 410 GoneException: it is forgotten. Returns how
   * many sockets got the message.
   */
  async sendMessage(userId, data) {
    // Kept before the connections are read: a socket registered meanwhile gets it by replay() or by this send.
    const { body } = await this.replay.append(userId, (id) => Buffer.from(JSON.stringify({ type: 'push', id, data })));
    const connections = await this.store.forUser(userId);
    const results = await Promise.allSettled(
      connections.map((connectionId) => this.post(connectionId, body)),
    );
    const failed = results.filter((r) => r.status === 'rejected');
    if (failed.length > 0 && failed.length === results.length) throw failed[0].reason;
    return results.filter((r) => r.status === 'fulfilled' && r.value).length;
  }

  /**
   * Sends a new connection of `userId` what the user was sent after `afterId` (the last id its page saw), oldest
   * first. Called by socketConnections() once the connection is registered. Returns how many were sent.
   */
  async replayTo(userId, connectionId, afterId) {
    const missed = await this.replay.since(userId, afterId);
    for (const [i, entry] of missed.entries()) {
      if (!(await this.post(connectionId, entry.body))) return i;
    }
    return missed.length;
  }

  /**
   * The connection as API Gateway sees it now, `{ sourceIp, connectedAt }`, or null when it is closed (410).
   * socketConnections() asks before it binds a connection to a user and before it forgets one, so that a caller
   * holding the signing secret alone can neither bind someone else's open socket to their own user nor make the
   * backend forget a socket that is still open.
   */
  async describe(connectionId) {
    try {
      const r = await this.client.send(new GetConnectionCommand({ ConnectionId: connectionId }));
      return { sourceIp: r.Identity?.SourceIp, connectedAt: r.ConnectedAt };
    } catch (err) {
      if (isGone(err)) return null;
      throw err;
    }
  }

  /** True when delivered, false when the connection was gone (and is now forgotten). */
  async post(connectionId, body) {
    try {
      await this.client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: body }));
      return true;
    } catch (err) {
      if (isGone(err)) {
        await this.store.remove(connectionId);
        return false;
      }
      throw err;
    }
  }
}

function isGone(err) {
  return err.name === 'GoneException' || err.$metadata?.httpStatusCode === 410;
}

module.exports = { SocketService };
