'use strict';
exports.connect = async () => ({ statusCode: 200 });
exports.auth = async (event) => ({
  statusCode: 200,
  body: JSON.stringify({ type: 'auth', ok: true, connectionId: event.requestContext.connectionId }),
});
exports.disconnect = async () => ({ statusCode: 200 });
