// SocketModule.register({ userResolver: JwtSocketUserResolver, imports: [AuthModule] }) in your AppModule's
// imports, and SocketConnection, SocketMessage, SocketSubscription and SocketPending in your TypeORM entities. Inject SocketService wherever you push messages.
import { DynamicModule, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { LambdaSignatureGuard } from './lambda-signature.guard';
import { RawBodyCheck } from './raw-body.check';
import { SocketConnection } from './socket-connection.entity';
import { SocketMessage } from './socket-message.entity';
import { SocketPending } from './socket-pending.entity';
import { SocketSubscription } from './socket-subscription.entity';
import { SocketConnectionsController } from './socket-connections.controller';
import { SocketService } from './socket.service';
import { resolveSocketOptions, SOCKET_OPTIONS, SocketModuleOptions, SocketUserResolver } from './socket.options';

@Module({})
export class SocketModule {
  static register(options: SocketModuleOptions): DynamicModule {
    return {
      module: SocketModule,
      imports: [TypeOrmModule.forFeature([SocketConnection, SocketMessage, SocketSubscription, SocketPending]), ...(options.imports ?? [])],
      controllers: [SocketConnectionsController],
      providers: [
        // Read once at startup, so a missing variable stops the app at boot rather than at the first message.
        { provide: SOCKET_OPTIONS, useFactory: () => resolveSocketOptions(options) },
        { provide: SocketUserResolver, useClass: options.userResolver },
        LambdaSignatureGuard,
        // The app does not start without raw bodies, which the guard verifies the functions' signatures over.
        RawBodyCheck,
        SocketService,
      ],
      exports: [SocketService],
    };
  }
}
