// The two endpoints the wsdeploy Lambdas call. Mount it at your app's root:
//
//   app.use(socketConnections({
//     express, store, userFromToken,
//     sockets,                                       // your SocketService: replays what a reconnecting page missed
//     signingSecret: process.env.WS_SIGNING_SECRET,
//     previousSigningSecret: process.env.WS_SIGNING_SECRET_PREVIOUS, // set while `wsdeploy up --rotate-signing-secret` rolls
//   }));
//
//   POST   /socket-connections                {"connectionId": "...", "sourceIp": "...", "resumeAfter": 17},
//                                              Authorization: Bearer <the user's token>
//   POST   /socket-connections                {"connectionId": "...", "sourceIp": "...", "pending": true,
//                                              "authTimeoutS": 30}, no Authorization: under `auth_timeout_s`, on
//                                              $connect, a socket that has that long to authenticate
//   DELETE /socket-connections/:connectionId
//
// Both are refused (401) without a valid X-Wsdeploy-Signature. A 2xx to the POST tells the browser
// {"type": "auth", "ok": true}; a 401 or 403 tells it {"type": "auth", "ok": false, "error": "unauthorized"}.
//
// The signature proves the call came from the Lambdas, but whoever learns the signing secret could sign calls too.
// So, with `sockets` given, the connection is looked up on @connections first: a POST binds it only while it is
// open and comes from the signed address (else 403: nobody can bind another person's socket to their own user),
// and a DELETE forgets it only once it is closed (else 409).
'use strict';

const { rawJson, requireLambdaSignature } = require('./signature');

/**
 * @param {object} opts
 * @param {object} opts.express        your express module (so this file adds no dependency of its own)
 * @param {object} opts.store          where connections live (the interface is in memory-store.js)
 * @param {Function} opts.userFromToken  (token, { sourceIp }) -> user id, or null when the token is not valid (may be
 *   async); sourceIp is the client's address as API Gateway saw it, signed with the call, for rate limiting
 * @param {object} [opts.sockets]     your SocketService; with it, a connection is checked on @connections before it
 *   is bound or forgotten (see above), its user's topics hear of it (presence), and a page that reconnects with the
 *   last message id it saw (`resumeAfter`) is sent what it missed as soon as its new connection is registered
 * @param {string} opts.signingSecret  WS_SIGNING_SECRET from the env file wsdeploy writes
 * @param {string} [opts.previousSigningSecret]  WS_SIGNING_SECRET_PREVIOUS, present while a rotation is rolling out
 */
function socketConnections({ express, store, userFromToken, sockets, signingSecret, previousSigningSecret }) {
  const router = express.Router();
  const signed = [rawJson(express), requireLambdaSignature([signingSecret, previousSigningSecret])];

  router.post('/socket-connections', ...signed, async (req, res, next) => {
    try {
      const connectionId = req.body?.connectionId;
      if (typeof connectionId !== 'string' || connectionId === '') {
        return res.status(400).json({ error: 'connectionId is required' });
      }
      if (req.body?.pending === true) return await pending(req, res, connectionId);
      const token = /^Bearer (.+)$/.exec(req.get('authorization') || '')?.[1];
      const sourceIp = typeof req.body?.sourceIp === 'string' ? req.body.sourceIp : undefined;
      if (sockets) {
        const live = await sockets.describe(connectionId);
        if (!live) return res.status(403).json({ error: 'the connection is not open' });
        if (sourceIp !== undefined && live.sourceIp !== sourceIp) {
          return res.status(403).json({ error: 'the connection does not come from the signed address' });
        }
      }
      const userId = token ? await userFromToken(token, { sourceIp }) : null;
      if (userId == null) return res.status(401).json({ error: 'unauthorized' });
      // Through the SocketService, so that the user's topics hear of a first socket (presence).
      if (sockets) await sockets.register(connectionId, userId);
      else await store.add(connectionId, userId, Date.now());
      const resumeAfter = req.body?.resumeAfter;
      if (sockets && Number.isSafeInteger(resumeAfter) && resumeAfter >= 0) {
        // Before the answer, so the missed messages reach the page before its `auth` reply; a failure here loses
        // the replay (the page reports a gap), never the connection.
        await sockets.replayTo(userId, connectionId, resumeAfter).catch((err) => {
          console.error(`wsdeploy: replay to ${connectionId} failed`, err);
        });
      }
      res.status(201).json({ connectionId });
    } catch (err) {
      next(err);
    }
  });

  // The socket is not open yet (its $connect is what is calling), so there is nothing to look up: the record only
  // lets the socket be closed, never bound. Your userFromToken is not asked; refuse here (403) to turn an address
  // away at the handshake.
  async function pending(req, res, connectionId) {
    const timeoutS = req.body.authTimeoutS;
    if (!Number.isSafeInteger(timeoutS) || timeoutS < 1) {
      return res.status(400).json({ error: 'authTimeoutS must be a whole number of seconds' });
    }
    if (!sockets) {
      return res.status(501).json({ error: 'pass `sockets` to socketConnections() to close sockets that never authenticate' });
    }
    await sockets.expectAuth(connectionId, Date.now() + timeoutS * 1000);
    res.status(202).json({ connectionId });
  }

  // API Gateway ids contain '+', '/' and '='; the Lambda percent-encodes them, Express decodes req.params.
  router.delete('/socket-connections/:connectionId', ...signed, async (req, res, next) => {
    try {
      const { connectionId } = req.params;
      if (sockets && (await sockets.describe(connectionId))) {
        return res.status(409).json({ error: 'the connection is still open' });
      }
      if (sockets) await sockets.forget(connectionId);
      else await store.remove(connectionId);
      res.status(204).end();
    } catch (err) {
      next(err);
    }
  });

  return router;
}

module.exports = { socketConnections };
