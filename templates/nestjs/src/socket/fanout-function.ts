// The bundled fan-out function (`fanout: true` in wsdeploy.yaml), which posts one publish to many sockets from
// inside the region: SocketService hands it audiences of at least `threshold` sockets, in chunks, and posts a chunk
// directly when its invoke fails.
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';

export interface FanoutAnswer {
  delivered: number;
  gone: string[];
  failed: { id: string; error: string }[];
}

export interface Target {
  connectionId: string;
  body: Uint8Array;
}

// A synchronous invoke carries 6 MB (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html):
// chunks stay under 5 MB of messages.
const MAX_CHUNK_BYTES = 5 * 1024 * 1024;

export class FanoutFunction {
  private readonly client: LambdaClient;
  private readonly decoder = new TextDecoder();

  constructor(
    private readonly name: string,
    readonly threshold: number,
    private readonly chunkIds: number,
    readonly invokes: number,
    config: { region: string; endpoint?: string; credentials?: { accessKeyId: string; secretAccessKey: string } },
  ) {
    // `wsdeploy dev` runs the function behind its own Lambda API (endpoint); on AWS the region's. A failed invoke is
    // posted directly instead, and the snippet drops a push it has seen if both arrived: no SDK retries.
    this.client = new LambdaClient({ ...config, maxAttempts: 1 });
  }

  /** Posts `targets` through the function: one message per group of sockets with the same body. */
  async invoke(targets: Target[]): Promise<FanoutAnswer> {
    const groups = new Map<Uint8Array, string[]>();
    for (const { connectionId, body } of targets) {
      const ids = groups.get(body) ?? [];
      ids.push(connectionId);
      groups.set(body, ids);
    }
    const posts = [...groups].map(([body, connectionIds]) => ({ data: this.decoder.decode(body), connectionIds }));
    const out = await this.client.send(
      new InvokeCommand({ FunctionName: this.name, Payload: new TextEncoder().encode(JSON.stringify({ posts })) }),
    );
    const text = out.Payload ? this.decoder.decode(out.Payload) : '';
    const answer = text ? JSON.parse(text) : null;
    if (out.FunctionError) throw new Error(answer?.errorMessage ?? out.FunctionError);
    return answer as FanoutAnswer;
  }

  /** `targets` in chunks of at most `chunkIds` ids and 5 MB of messages. */
  chunks(targets: Target[]): Target[][] {
    const out: Target[][] = [];
    let [chunk, bytes, seen] = [[] as Target[], 0, new Set<Uint8Array>()];
    // The id, and the message the first time the chunk carries it (as the JSON string it travels as).
    const cost = (t: Target): number =>
      t.connectionId.length + 3 + (seen.has(t.body) ? 0 : JSON.stringify(this.decoder.decode(t.body)).length + 32);
    for (const t of targets) {
      if (chunk.length >= this.chunkIds || (chunk.length > 0 && bytes + cost(t) > MAX_CHUNK_BYTES)) {
        out.push(chunk);
        [chunk, bytes, seen] = [[], 0, new Set()];
      }
      bytes += cost(t);
      chunk.push(t);
      seen.add(t.body);
    }
    if (chunk.length > 0) out.push(chunk);
    return out;
  }
}
