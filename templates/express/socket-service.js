// Pushes data to a user's open sockets through API Gateway's @connections API (or `wsdeploy dev`'s, which
// speaks the same protocol). Endpoint, region and keys come from the env file wsdeploy writes.
'use strict';

const {
  ApiGatewayManagementApiClient,
  PostToConnectionCommand,
} = require('@aws-sdk/client-apigatewaymanagementapi');

class SocketService {
  /**
   * @param {object} store  where connections live: { forUser(userId), remove(connectionId) }, both may be async
   * @param {object} [env]  defaults to process.env
   */
  constructor(store, env = process.env) {
    for (const key of ['WS_API_ENDPOINT', 'WS_API_REGION']) {
      if (!env[key]) throw new Error(`${key} is not set: run \`wsdeploy dev\` or \`wsdeploy up\` to write it into your env file`);
    }
    this.store = store;
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
   * Sends `data` (JSON-encoded) to every open socket of `userId`. A socket that closed without its $disconnect
   * reaching us answers 410 GoneException: it is forgotten. Returns how many sockets got the message.
   */
  async sendMessage(userId, data) {
    const body = Buffer.from(JSON.stringify(data));
    const connections = await this.store.forUser(userId);
    const results = await Promise.allSettled(
      connections.map((connectionId) => this.post(connectionId, body)),
    );
    const failed = results.filter((r) => r.status === 'rejected');
    if (failed.length > 0 && failed.length === results.length) throw failed[0].reason;
    return results.filter((r) => r.status === 'fulfilled' && r.value).length;
  }

  /** True when delivered, false when the connection was gone (and is now forgotten). */
  async post(connectionId, body) {
    try {
      await this.client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: body }));
      return true;
    } catch (err) {
      if (err.name === 'GoneException' || err.$metadata?.httpStatusCode === 410) {
        await this.store.remove(connectionId);
        return false;
      }
      throw err;
    }
  }
}

module.exports = { SocketService };
