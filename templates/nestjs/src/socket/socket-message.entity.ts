// A message recently sent to a user, kept so that a page that reconnects gets what it missed. `id` is the user's
// own sequence: the snippet resumes after the last id it saw, and ids it saw already are dropped.
import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

// bigint columns come back as strings from most drivers; ids stay below 2^53, so a number holds them exactly.
const asNumber = { to: (v: number) => v, from: (v: string | number) => Number(v) };

@Entity('socket_messages')
@Index(['userId', 'createdAt'])
export class SocketMessage {
  @PrimaryColumn()
  userId!: number;

  // Part of the key: two instances of your backend that pick the same next id for a user cannot both insert it.
  @PrimaryColumn({ type: 'bigint', transformer: asNumber })
  id!: number;

  /** The frame as sent: {"type": "push", "id": ..., "data": ...}. */
  @Column({ type: 'text' })
  body!: string;

  @Column({ type: 'bigint', transformer: asNumber })
  createdAt!: number;
}
