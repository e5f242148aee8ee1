'use strict';
// An Architect route's return value does not reach the client: it replies through @connections, as
// `arc.ws.send` does, on the sandbox's internal port.
const { ports } = JSON.parse(process.env.ARC_SANDBOX || '{}');
exports.handler = async (event) => {
  const id = event.requestContext.connectionId;
  await fetch(`http://127.0.0.1:${ports._arc}/_arc/ws/@connections/${id}`, {
    method: 'POST',
    body: JSON.stringify({ type: 'auth', ok: true, connectionId: id }),
  });
  return { statusCode: 200 };
};
