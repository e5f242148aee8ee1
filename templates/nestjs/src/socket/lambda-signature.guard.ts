// Refuses (401) any call to the socket endpoints that the wsdeploy Lambdas did not sign:
//
//   X-Wsdeploy-Signature: t=<unix seconds>,v2=<hex HMAC-SHA256(secret, canonical)>[,v2=<another secret's>]
//   canonical = "wsdeploy-v2\n<t>\n<METHOD>\n<target>\n<hex SHA-256(raw body)>\n<hex SHA-256(Authorization)>"
//
// The HMAC covers the raw body, so create the app with `NestFactory.create(AppModule, { rawBody: true })`, and the
// Authorization header, so a captured call cannot be replayed with another user's token. During a secret rotation
// the Lambdas sign with the new and the previous secret; either one this backend knows matches.
// v1 signatures (from Lambdas deployed by an older wsdeploy) are accepted until V1_ACCEPTED_UNTIL (2027-06-01).
import { CanActivate, ExecutionContext, Inject, Injectable, Logger, UnauthorizedException } from '@nestjs/common';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import { ResolvedSocketOptions, SOCKET_OPTIONS } from './socket.options';

/** Older (or further in the future) than this, a signature is a replay or a badly wrong clock. */
export const SIGNATURE_TOLERANCE_SECS = 300;
/** 2027-06-01T00:00:00Z: from then on only v2 signatures verify. */
export const V1_ACCEPTED_UNTIL = 1811808000;
const MAX_SIGNATURES = 4;
const TAG = /^[0-9a-f]{64}$/;

export interface SignedRequest {
  method: string;
  /** The request target as sent: percent-encoded path and ?query (Express's originalUrl). */
  target: string;
  body?: Buffer;
  authorization?: string;
}

export type Verdict = { ok: true; scheme: 'v1' | 'v2' } | { ok: false; code: string; reason: string };

interface Parsed {
  t: bigint;
  v1: Buffer | null;
  v2: Buffer[];
}

function parse(header: string | undefined): Parsed | null {
  let t: bigint | null = null;
  let v1: Buffer | null = null;
  const v2: Buffer[] = [];
  for (const part of (header ?? '').split(',')) {
    const trimmed = part.trim();
    const eq = trimmed.indexOf('=');
    if (eq < 0) continue;
    const [key, value] = [trimmed.slice(0, eq), trimmed.slice(eq + 1)];
    if (key === 't' && t === null && /^\d+$/.test(value)) t = BigInt(value);
    else if (key === 'v1' && v1 === null && TAG.test(value)) v1 = Buffer.from(value, 'hex');
    else if (key === 'v2' && v2.length < MAX_SIGNATURES && TAG.test(value)) v2.push(Buffer.from(value, 'hex'));
    else if (key === 't' || key === 'v1' || key === 'v2') return null;
  }
  return t !== null && (v1 !== null || v2.length > 0) ? { t, v1, v2 } : null;
}

const refuse = (code: string, reason: string): Verdict => ({ ok: false, code, reason });
const sha256hex = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** Checks one header against the request it came with; `secrets` are the current one and, while rotating, the previous. */
export function verifySignature(
  secrets: string | Array<string | undefined>,
  header: string | undefined,
  req: SignedRequest,
  now = Math.floor(Date.now() / 1000),
): Verdict {
  const keys = [secrets].flat().filter((s): s is string => typeof s === 'string' && s !== '');
  if (keys.length === 0) return refuse('no-secret', 'no signing secret configured (WS_SIGNING_SECRET)');
  if (req.method.includes('\n') || req.target.includes('\n')) return refuse('malformed', 'line feed in the request');
  const sig = parse(header);
  if (!sig) return refuse('malformed', 'missing or malformed X-Wsdeploy-Signature header');
  const age = BigInt(now) - sig.t;
  const limit = BigInt(SIGNATURE_TOLERANCE_SECS);
  if (age > limit || -age > limit) return refuse('expired', `signature timestamp is ${age} s away from now`);
  const body = req.body ?? Buffer.alloc(0);
  const matches = (expected: Buffer, given: Buffer[]) => given.some((g) => timingSafeEqual(expected, g));
  if (sig.v2.length > 0) {
    const canonical = ['wsdeploy-v2', sig.t, req.method, req.target, sha256hex(body), sha256hex(req.authorization ?? '')].join('\n');
    const ok = keys.some((k) => matches(createHmac('sha256', k).update(canonical).digest(), sig.v2));
    return ok ? { ok: true, scheme: 'v2' } : refuse('mismatch', 'signature does not match');
  }
  if (now >= V1_ACCEPTED_UNTIL || sig.v1 === null) {
    return refuse('v1-retired', 'v1 signatures are no longer accepted: run `wsdeploy up` with a current wsdeploy');
  }
  const v1 = sig.v1;
  const ok = keys.some((k) =>
    matches(createHmac('sha256', k).update(`${sig.t}.${req.method}.${req.target}.`).update(body).digest(), [v1]),
  );
  return ok ? { ok: true, scheme: 'v1' } : refuse('mismatch', 'signature does not match');
}

@Injectable()
export class LambdaSignatureGuard implements CanActivate {
  private readonly logger = new Logger(LambdaSignatureGuard.name);

  constructor(@Inject(SOCKET_OPTIONS) private readonly options: ResolvedSocketOptions) {}

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<Request & { rawBody?: Buffer }>();
    const header = req.header('x-wsdeploy-signature');
    // The signature first: an unsigned call is a 401 whatever else is wrong, never a 500 an attacker can provoke.
    if (!parse(header)) {
      this.logger.warn(`refused ${req.method} ${req.originalUrl}: missing or malformed X-Wsdeploy-Signature header`);
      throw new UnauthorizedException('invalid signature');
    }
    // A signed call whose raw body Nest did not keep cannot be verified: refused like any unverifiable call (a
    // 500 here would let anyone with a well-formed header make the backend fail), and said loudly, since every such
    // call is refused until the app is created with `{ rawBody: true }`.
    if (req.method !== 'DELETE' && req.rawBody === undefined) {
      this.logger.error(
        `refused ${req.method} ${req.originalUrl}: no raw body to verify the signature over: ` +
          'create the app with NestFactory.create(AppModule, { rawBody: true })',
      );
      throw new UnauthorizedException('invalid signature');
    }
    const verdict = verifySignature(
      [this.options.signingSecret, this.options.previousSigningSecret],
      header,
      { method: req.method, target: req.originalUrl, body: req.rawBody, authorization: req.header('authorization') },
    );
    if (!verdict.ok) {
      this.logger.warn(`refused ${req.method} ${req.originalUrl}: ${verdict.reason}`);
      throw new UnauthorizedException('invalid signature');
    }
    return true;
  }
}
