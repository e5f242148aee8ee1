// Refuses (401) any call to the socket endpoints that the wsdeploy Lambdas did not sign:
//
//   X-Wsdeploy-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(WS_SIGNING_SECRET, "<t>.<METHOD>.<path>.<raw body>")>
//
// The HMAC covers the raw body, so create the app with `NestFactory.create(AppModule, { rawBody: true })`.
import { CanActivate, ExecutionContext, Inject, Injectable, Logger, UnauthorizedException } from '@nestjs/common';
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import { ResolvedSocketOptions, SOCKET_OPTIONS } from './socket.options';

/** Older (or further in the future) than this, a signature is a replay or a badly wrong clock. */
export const SIGNATURE_TOLERANCE_SECS = 300;

/** null when valid, else the reason (for your logs only). */
export function verifySignature(
  secret: string,
  header: string | undefined,
  method: string,
  path: string,
  rawBody: Buffer | undefined,
  now = Math.floor(Date.now() / 1000),
): string | null {
  if (!secret) return 'no signing secret configured (WS_SIGNING_SECRET)';
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!m) return 'missing or malformed X-Wsdeploy-Signature header';
  const t = Number(m[1]);
  if (Math.abs(now - t) > SIGNATURE_TOLERANCE_SECS) return `signature timestamp is ${now - t} s away from now`;
  const expected = createHmac('sha256', secret)
    .update(`${t}.${method}.${path}.`)
    .update(rawBody ?? Buffer.alloc(0))
    .digest();
  return timingSafeEqual(expected, Buffer.from(m[2], 'hex')) ? null : 'signature does not match';
}

@Injectable()
export class LambdaSignatureGuard implements CanActivate {
  private readonly logger = new Logger(LambdaSignatureGuard.name);

  constructor(@Inject(SOCKET_OPTIONS) private readonly options: ResolvedSocketOptions) {}

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<Request & { rawBody?: Buffer }>();
    // The signature first: an unsigned call is a 401 whatever else is wrong, never a 500 an attacker can provoke.
    if (!/^t=\d+,v1=[0-9a-f]{64}$/.test(req.header('x-wsdeploy-signature') ?? '')) {
      this.logger.warn(`refused ${req.method} ${req.originalUrl}: missing or malformed X-Wsdeploy-Signature header`);
      throw new UnauthorizedException('invalid signature');
    }
    if (req.method !== 'DELETE' && req.rawBody === undefined) {
      throw new Error('no raw body to verify: create the app with NestFactory.create(AppModule, { rawBody: true })');
    }
    // originalUrl is the request target as sent (percent-encoded, with ?query): what the Lambda signed.
    const problem = verifySignature(
      this.options.signingSecret,
      req.header('x-wsdeploy-signature'),
      req.method,
      req.originalUrl,
      req.rawBody,
    );
    if (problem) {
      this.logger.warn(`refused ${req.method} ${req.originalUrl}: ${problem}`);
      throw new UnauthorizedException('invalid signature');
    }
    return true;
  }
}
