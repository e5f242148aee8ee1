// Verifies that a request comes from the wsdeploy Lambdas, not from anyone who found your URL.
//
//   X-Wsdeploy-Signature: t=<unix seconds>,v2=<hex HMAC-SHA256(secret, canonical)>[,v2=<another secret's>]
//   canonical = "wsdeploy-v2\n<t>\n<METHOD>\n<target>\n<hex SHA-256(raw body)>\n<hex SHA-256(Authorization)>"
//
// <target> is the request target exactly as sent (percent-encoded, with ?query if any): Express keeps it in
// req.originalUrl. The HMAC covers the raw body bytes, so capture them before JSON parsing (see rawJson below),
// and the Authorization header, so a captured call cannot be replayed with another user's token.
// During a secret rotation the Lambdas sign with the new and the previous secret; pass both you know
// (WS_SIGNING_SECRET and WS_SIGNING_SECRET_PREVIOUS) and either matches.
// v1 signatures (from Lambdas deployed by an older wsdeploy) are accepted until V1_ACCEPTED_UNTIL (2027-06-01).
'use strict';

const crypto = require('node:crypto');

const HEADER = 'x-wsdeploy-signature';
// Older (or further in the future) than this, a signature is refused: a replay, or a badly wrong clock.
const TOLERANCE_SECS = 300;
const V1_ACCEPTED_UNTIL = 1811808000; // 2027-06-01T00:00:00Z
const MAX_SIGNATURES = 4;

const sha256hex = (data) => crypto.createHash('sha256').update(data).digest('hex');
const TAG = /^[0-9a-f]{64}$/;

function parse(header) {
  const out = { t: null, v1: null, v2: [] };
  for (const part of (header || '').split(',')) {
    const trimmed = part.trim();
    const eq = trimmed.indexOf('=');
    if (eq < 0) continue;
    const key = trimmed.slice(0, eq);
    const value = trimmed.slice(eq + 1);
    if (key === 't' && out.t === null && /^\d+$/.test(value)) out.t = BigInt(value);
    else if (key === 'v1' && out.v1 === null && TAG.test(value)) out.v1 = Buffer.from(value, 'hex');
    else if (key === 'v2' && out.v2.length < MAX_SIGNATURES && TAG.test(value)) out.v2.push(Buffer.from(value, 'hex'));
    else if (key === 't' || key === 'v1' || key === 'v2') return null;
  }
  return out.t !== null && (out.v1 !== null || out.v2.length > 0) ? out : null;
}

const refuse = (code, reason) => ({ ok: false, code, reason });

/**
 * Checks one header value against the request it came with.
 * @param {string|string[]} secrets  the current secret and, during a rotation, the previous one
 * @param {{method: string, target: string, body?: Buffer, authorization?: string}} req
 * @returns {{ok: true, scheme: 'v1'|'v2'} | {ok: false, code: string, reason: string}}  the reason is for your logs
 */
function verifySignature(secrets, header, req, now = Math.floor(Date.now() / 1000)) {
  const keys = [secrets].flat().filter((s) => typeof s === 'string' && s !== '');
  if (keys.length === 0) return refuse('no-secret', 'no signing secret configured (WS_SIGNING_SECRET)');
  if (req.method.includes('\n') || req.target.includes('\n')) return refuse('malformed', 'line feed in the request');
  const sig = parse(header);
  if (!sig) return refuse('malformed', 'missing or malformed X-Wsdeploy-Signature header');
  // BigInt: a timestamp of any length is a number to compare, never a float that rounds.
  const age = BigInt(now) - sig.t;
  if (age > BigInt(TOLERANCE_SECS) || -age > BigInt(TOLERANCE_SECS)) {
    return refuse('expired', `signature timestamp is ${age} s away from now`);
  }
  const body = req.body || Buffer.alloc(0);
  const matches = (expected, given) => given.some((g) => crypto.timingSafeEqual(expected, g));
  if (sig.v2.length > 0) {
    const canonical = ['wsdeploy-v2', sig.t, req.method, req.target, sha256hex(body), sha256hex(req.authorization || '')].join('\n');
    const ok = keys.some((k) => matches(crypto.createHmac('sha256', k).update(canonical).digest(), sig.v2));
    return ok ? { ok: true, scheme: 'v2' } : refuse('mismatch', 'signature does not match');
  }
  if (now >= V1_ACCEPTED_UNTIL) {
    return refuse('v1-retired', 'v1 signatures are no longer accepted: run `wsdeploy up` with a current wsdeploy');
  }
  const ok = keys.some((k) =>
    matches(crypto.createHmac('sha256', k).update(`${sig.t}.${req.method}.${req.target}.`).update(body).digest(), [sig.v1]),
  );
  return ok ? { ok: true, scheme: 'v1' } : refuse('mismatch', 'signature does not match');
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

/** Middleware: 401 unless the request carries a valid signature made with one of `secrets`. */
function requireLambdaSignature(secrets) {
  if (![secrets].flat().some(Boolean)) {
    throw new Error('WS_SIGNING_SECRET is not set: run `wsdeploy dev` or `wsdeploy up` to write it into your env file');
  }
  return (req, res, next) => {
    const result = verifySignature(secrets, req.get(HEADER), {
      method: req.method,
      target: req.originalUrl,
      body: req.rawBody,
      authorization: req.get('authorization'),
    });
    if (!result.ok) {
      console.warn(`wsdeploy: refused ${req.method} ${req.originalUrl}: ${result.reason}`);
      return res.status(401).json({ error: 'invalid signature' });
    }
    next();
  };
}

module.exports = { verifySignature, rawJson, requireLambdaSignature, TOLERANCE_SECS, V1_ACCEPTED_UNTIL };
