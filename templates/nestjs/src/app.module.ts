// How an app wires the template (type-checked here, not copied by `wsdeploy init`).
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { SocketConnection } from './socket/socket-connection.entity';
import { SocketMessage } from './socket/socket-message.entity';
import { SocketPending } from './socket/socket-pending.entity';
import { SocketModule } from './socket/socket.module';
import { SocketSubscription } from './socket/socket-subscription.entity';
import { SocketUserResolver } from './socket/socket.options';
import { SocketService } from './socket/socket.service';
import { User } from './users/user.entity';

@Injectable()
class ExampleUserResolver extends SocketUserResolver {
  // Verify your real tokens here (e.g. JwtService.verifyAsync) and return the user's id.
  async userIdFromToken(token: string): Promise<number | null> {
    return /^user-(\d+)$/.test(token) ? Number(token.slice(5)) : null;
  }
}

@Module({
  imports: [
    TypeOrmModule.forRoot({ type: 'postgres', url: process.env.DATABASE_URL, entities: [User, SocketConnection, SocketMessage, SocketSubscription, SocketPending] }),
    SocketModule.register({ userResolver: ExampleUserResolver }),
  ],
})
export class AppModule {}

export async function bootstrap(): Promise<void> {
  // rawBody: the Lambda signature covers the exact bytes sent.
  const app = await NestFactory.create(AppModule, { rawBody: true });
  const sockets = app.get(SocketService);
  await sockets.sendMessage(1, { type: 'hello' });
  await app.listen(Number(process.env.PORT ?? 3000));
}
