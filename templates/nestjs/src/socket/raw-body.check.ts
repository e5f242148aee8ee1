// The Lambda signature covers the exact bytes the function sent, which Nest keeps (as `req.rawBody`) only when the
// app is created with `NestFactory.create(AppModule, { rawBody: true })`. Without it every function call would be
// refused with a 401, so the app refuses to start instead. Nest keeps no readable record of that option, so at
// start the check hands the app's own JSON parser a small body and looks for the raw bytes it should have kept.
import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { Readable } from 'node:stream';

type Layer = { name?: string; handle: (req: unknown, res: unknown, next: (err?: unknown) => void) => void };

/** Whether the app's JSON parser keeps raw bodies; `undefined` where it cannot tell (not Express, or parsers of your own). */
export async function keepsRawBodies(host: HttpAdapterHost): Promise<boolean | undefined> {
  const adapter = host.httpAdapter;
  if (!adapter || adapter.getType() !== 'express') return undefined;
  const app = adapter.getInstance();
  // Express 5 has `app.router`, Express 4 `app._router`.
  const stack: Layer[] = (app.router ?? app._router)?.stack ?? [];
  const parser = stack.find((layer) => layer.name === 'jsonParser');
  if (!parser) return undefined;
  const body = Buffer.from('{}');
  const req = Object.assign(Readable.from([body]), {
    headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
    method: 'POST',
    url: '/socket-connections',
  }) as Readable & { rawBody?: Buffer };
  await new Promise<void>((resolve, reject) =>
    parser.handle(req, {}, (err?: unknown) => (err ? reject(err) : resolve())),
  );
  return Buffer.isBuffer(req.rawBody);
}

@Injectable()
export class RawBodyCheck implements OnApplicationBootstrap {
  constructor(private readonly host: HttpAdapterHost) {}

  async onApplicationBootstrap(): Promise<void> {
    const kept = await keepsRawBodies(this.host);
    if (kept === false) {
      throw new Error(
        'SocketModule: this app was created without raw bodies, so no call of the wsdeploy functions could be ' +
          'verified (each would get a 401): create it with NestFactory.create(AppModule, { rawBody: true })',
      );
    }
    if (kept === undefined) {
      new Logger('SocketModule').warn(
        'could not check that raw bodies are kept (not Express, or body parsers of your own): the wsdeploy ' +
          'functions\' calls are verified over req.rawBody, so make sure it is set',
      );
    }
  }
}
