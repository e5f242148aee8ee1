// A socket that has yet to authenticate (under wsdeploy's `auth_timeout_s`): the connect function reports it on
// $connect, and SocketService closes it at `deadline` unless its auth goes through first.
import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

const asNumber = { to: (v: number) => v, from: (v: string | number) => Number(v) };

@Entity('socket_pending')
export class SocketPending {
  @PrimaryColumn({ length: 128 })
  connectionId!: string;

  /** Milliseconds since 1970. */
  @Index()
  @Column({ type: 'bigint', transformer: asNumber })
  deadline!: number;
}
