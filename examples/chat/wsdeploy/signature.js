// Verifies that a request comes from the wsdeploy Lambdas, not from anyone who found your URL.
//
//   X-Wsdeploy-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(WS_SIGNING_SECRET, "<t>.<METHOD>.<path>.<raw body>")>
//
// <path> is the request target exactly as sent (percent-encoded, with ?query if any): Express keeps it in
// req.originalUrl. The HMAC covers the raw body bytes, so capture them before JSON parsing (see rawJson below).
'use strict';

const crypto = require('node:crypto');

const HEADER = 'x-wsdeploy-signature';
// Older (or further in the future) than this, a signature is refused: a replay, or a badly wrong clock.
const TOLERANCE_SECS = 300;

/** Checks one header value; returns null when valid, else the reason (for your logs, not for the caller). */
function verifySignature(secret, header, method, path, rawBody, now = Math.floor(Date.now() / 1000)) {
  if (!secret) return 'no signing secret configured (WS_SIGNING_SECRET)';
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header || '');
  if (!m) return 'missing or malformed X-Wsdeploy-Signature header';
  const t = Number(m[1]);
  if (Math.abs(now - t) > TOLERANCE_SECS) return `signature timestamp is ${now - t} s away from now`;
  const expected = crypto
    .createHmac('sha256', secret)
    .update(`${t}.${method}.${path}.`)
    .update(rawBody || Buffer.alloc(0))
    .digest();
  const given = Buffer.from(m[2], 'hex');
  return crypto.timingSafeEqual(expected, given) ? null : 'signature does not match';
}

/** express.json() that also keeps the raw bytes in req.rawBody, which the signature covers. */
function rawJson(express) {
  return express.json({
    type: () => true,
    verify: (req, _res, buf) => {
      req.rawBody = buf;
    },
  });
}

/** Middleware: 401 unless the request carries a valid signature made with `secret`. */
function requireLambdaSignature(secret) {
  if (!secret) throw new Error('WS_SIGNING_SECRET is not set: run `wsdeploy dev` or `wsdeploy up` to write it into your env file');
  return (req, res, next) => {
    const problem = verifySignature(secret, req.get(HEADER), req.method, req.originalUrl, req.rawBody);
    if (problem) {
      console.warn(`wsdeploy: refused ${req.method} ${req.originalUrl}: ${problem}`);
      return res.status(401).json({ error: 'invalid signature' });
    }
    next();
  };
}

module.exports = { verifySignature, rawJson, requireLambdaSignature, TOLERANCE_SECS };
