// The two endpoints the wsdeploy Lambdas call. A 2xx to the POST tells the browser {"type": "auth", "ok": true};
// a 401 or 403 tells it {"type": "auth", "ok": false, "error": "unauthorized"}.
//
// The guard proves a call came from the Lambdas, but whoever learns the signing secret could sign calls too. So the
// connection is looked up on @connections first: a POST binds it only while it is open and comes from the signed
// address (else 403: nobody can bind another person's socket to their own user), and a DELETE forgets it only once
// it is closed (else 409).
import {
  BadRequestException,
  Body,
  ConflictException,
  Controller,
  Delete,
  ForbiddenException,
  Headers,
  HttpCode,
  Logger,
  Param,
  Post,
  Res,
  UnauthorizedException,
  UseGuards,
} from '@nestjs/common';
import { LambdaSignatureGuard } from './lambda-signature.guard';
import { SocketUserResolver } from './socket.options';
import { SocketService } from './socket.service';

@Controller('socket-connections')
@UseGuards(LambdaSignatureGuard)
export class SocketConnectionsController {
  private readonly logger = new Logger(SocketConnectionsController.name);

  constructor(
    private readonly users: SocketUserResolver,
    private readonly sockets: SocketService,
  ) {}

  /**
   * The `auth` route: {"connectionId": "...", "sourceIp": "...", "resumeAfter": 17} with the user's token as
   * `Authorization: Bearer ...`. resumeAfter, from a page that reconnects, is the last message id it saw. Or, under
   * `auth_timeout_s`, on $connect: {"connectionId", "sourceIp", "pending": true, "authTimeoutS": 30} and no token.
   */
  @Post()
  async create(
    @Headers('authorization') authorization: string | undefined,
    @Body() body: { connectionId?: unknown; sourceIp?: unknown; resumeAfter?: unknown; pending?: unknown; authTimeoutS?: unknown },
    @Res({ passthrough: true }) res: { status(code: number): unknown },
  ): Promise<{ connectionId: string }> {
    const connectionId = body?.connectionId;
    if (typeof connectionId !== 'string' || connectionId === '') {
      throw new BadRequestException('connectionId is required');
    }
    if (body.pending === true) {
      // Under `auth_timeout_s`, on $connect: the socket is not open yet (its $connect is what calls), so there is
      // nothing to look up; the record only lets the socket be closed, never bound. 202, like Express's.
      const timeoutS = body.authTimeoutS;
      if (typeof timeoutS !== 'number' || !Number.isSafeInteger(timeoutS) || timeoutS < 1) {
        throw new BadRequestException('authTimeoutS must be a whole number of seconds');
      }
      await this.sockets.expectAuth(connectionId, Date.now() + timeoutS * 1000);
      res.status(202);
      return { connectionId };
    }
    const token = /^Bearer (.+)$/.exec(authorization ?? '')?.[1];
    const sourceIp = typeof body?.sourceIp === 'string' ? body.sourceIp : undefined;
    const live = await this.sockets.describe(connectionId);
    if (!live) throw new ForbiddenException('the connection is not open');
    if (sourceIp !== undefined && live.sourceIp !== sourceIp) {
      throw new ForbiddenException('the connection does not come from the signed address');
    }
    const userId = token ? await this.users.userIdFromToken(token, { sourceIp }) : null;
    if (userId === null) throw new UnauthorizedException();
    // Through the service, so that the user's topics hear of a first socket (presence).
    await this.sockets.register(connectionId, userId);
    const resumeAfter = body.resumeAfter;
    if (typeof resumeAfter === 'number' && Number.isSafeInteger(resumeAfter) && resumeAfter >= 0) {
      // Before the answer, so the missed messages reach the page before its `auth` reply; a failure loses the
      // replay (the page reports a gap), never the connection.
      await this.sockets.replayTo(userId, connectionId, resumeAfter).catch((err: unknown) => {
        this.logger.error(`replay to ${connectionId} failed: ${String(err)}`);
      });
    }
    return { connectionId };
  }

  /** `$disconnect`. The id arrives percent-encoded ('+', '/', '=' occur); Nest decodes route params. */
  @Delete(':connectionId')
  @HttpCode(204)
  async remove(@Param('connectionId') connectionId: string): Promise<void> {
    if (await this.sockets.describe(connectionId)) throw new ConflictException('the connection is still open');
    await this.sockets.forget(connectionId);
  }
}
