// What the socket module needs from your app. wsdeploy writes the values into your backend's env file.
import { Type } from '@nestjs/common';

/**
 * Turns the token your frontend sends ({"action": "auth", "token": ...}) into a user id, or null when invalid.
 * `sourceIp` is the client's address as API Gateway saw it (signed with the call): rate-limit on it if you like.
 */
export abstract class SocketUserResolver {
  abstract userIdFromToken(token: string, context: { sourceIp?: string }): Promise<number | null>;
}

export interface SocketModuleOptions {
  /** Your implementation of SocketUserResolver (e.g. one that verifies your JWTs). */
  userResolver: Type<SocketUserResolver>;
  /** Modules the resolver needs (e.g. your AuthModule). */
  imports?: any[];
  /** Defaults to process.env.WS_SIGNING_SECRET. */
  signingSecret?: string;
  /** Defaults to process.env.WS_SIGNING_SECRET_PREVIOUS: set while `wsdeploy up --rotate-signing-secret` rolls out. */
  previousSigningSecret?: string;
  /** Default to process.env.WS_API_*; without an access key the SDK's own chain applies (your backend's role). */
  endpoint?: string;
  region?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** How many of a user's messages are kept for pages that reconnect, and for how long (defaults 200, 5 min). */
  replay?: { maxMessages?: number; maxAgeMs?: number };
  /**
   * Posts in flight at most (128), a post's retry deadline (10 s) and one post's own limit (3 s): see SocketService.
   */
  fanOut?: { concurrency?: number; deadlineMs?: number; postTimeoutMs?: number };
  /** How often the sweep runs (60 s) and how long a connection may go unheard of before it asks (120 s); false: never. */
  sweep?: { intervalMs?: number; idleMs?: number } | false;
  /**
   * Which topics get presence events (true): a join tells every online subscriber, n joins cost n²/2 posts, so
   * turn it off for topics of thousands, e.g. `(topic) => !topic.startsWith('live:')`. presence() answers regardless.
   */
  presence?: boolean | ((topic: string) => boolean);
  /**
   * The bundled fan-out function (`fanout: true` in wsdeploy.yaml; name from process.env.WS_FANOUT_FUNCTION): a
   * publish or broadcast to at least `threshold` sockets (500) is handed to it, in chunks of `chunkIds` ids (5000),
   * `invokes` at once (8). false: always post directly.
   */
  fanoutFunction?: { name?: string; threshold?: number; chunkIds?: number; invokes?: number } | false;
}

export const SOCKET_OPTIONS = Symbol('SOCKET_OPTIONS');

export interface ResolvedSocketOptions {
  signingSecret: string;
  previousSigningSecret?: string;
  endpoint: string;
  region: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  replay: { maxMessages: number; maxAgeMs: number };
  fanOut: { concurrency: number; deadlineMs: number; postTimeoutMs: number };
  sweep: { intervalMs: number; idleMs: number } | false;
  presence: (topic: string) => boolean;
  fanoutFunction?: { name: string; endpoint?: string; threshold: number; chunkIds: number; invokes: number };
}

export function resolveSocketOptions(o: SocketModuleOptions, env = process.env): ResolvedSocketOptions {
  const need = (value: string | undefined, key: string): string => {
    if (!value) {
      throw new Error(`${key} is not set: run \`wsdeploy dev\` or \`wsdeploy up\` to write it into your env file`);
    }
    return value;
  };
  const accessKeyId = o.accessKeyId ?? env.WS_API_ACCESS_KEY_ID;
  const secretAccessKey = o.secretAccessKey ?? env.WS_API_SECRET_ACCESS_KEY;
  return {
    signingSecret: need(o.signingSecret ?? env.WS_SIGNING_SECRET, 'WS_SIGNING_SECRET'),
    previousSigningSecret: o.previousSigningSecret ?? (env.WS_SIGNING_SECRET_PREVIOUS || undefined),
    endpoint: need(o.endpoint ?? env.WS_API_ENDPOINT, 'WS_API_ENDPOINT'),
    region: need(o.region ?? env.WS_API_REGION, 'WS_API_REGION'),
    credentials:
      accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined,
    replay: { maxMessages: o.replay?.maxMessages ?? 200, maxAgeMs: o.replay?.maxAgeMs ?? 5 * 60 * 1000 },
    fanOut: {
      concurrency: o.fanOut?.concurrency ?? 128,
      deadlineMs: o.fanOut?.deadlineMs ?? 10_000,
      postTimeoutMs: o.fanOut?.postTimeoutMs ?? 3_000,
    },
    sweep: o.sweep === false ? false : { intervalMs: o.sweep?.intervalMs ?? 60_000, idleMs: o.sweep?.idleMs ?? 120_000 },
    presence: presenceFor(o.presence ?? true),
    fanoutFunction: fanoutFunctionOf(o.fanoutFunction, env),
  };
}

function fanoutFunctionOf(
  o: SocketModuleOptions['fanoutFunction'],
  env: NodeJS.ProcessEnv,
): ResolvedSocketOptions['fanoutFunction'] {
  const name = o === false ? undefined : (o?.name ?? env.WS_FANOUT_FUNCTION);
  if (o === false || !name) return undefined;
  return {
    name,
    // `wsdeploy dev` writes its own Lambda API's endpoint; on AWS the SDK finds the region's.
    endpoint: env.WS_FANOUT_FUNCTION_ENDPOINT || undefined,
    threshold: o?.threshold ?? 500,
    chunkIds: o?.chunkIds ?? 5000,
    invokes: o?.invokes ?? 8,
  };
}

function presenceFor(presence: boolean | ((topic: string) => boolean)): (topic: string) => boolean {
  return typeof presence === 'function' ? presence : () => presence;
}
