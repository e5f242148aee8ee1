// One open WebSocket of a user. API Gateway's connectionId is the key: the $disconnect Lambda deletes by it.
import { Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { User } from '../users/user.entity';

// bigint columns come back as strings from most drivers; milliseconds since 1970 fit a number exactly.
const asNumber = { to: (v: number) => v, from: (v: string | number) => Number(v) };

@Entity('socket_connections')
export class SocketConnection {
  // API Gateway ids look like 'TWegAcC4EowCHnA=': 16 characters today, room to spare.
  @PrimaryColumn({ length: 128 })
  connectionId!: string;

  @Index()
  @Column()
  userId!: number;

  // Deleting a user deletes their connections.
  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'userId' })
  user!: User;

  @CreateDateColumn()
  connectedAt!: Date;

  /** When the backend last heard of it (bound, or a post went through): the sweep asks @connections about old ones. */
  @Index()
  @Column({ type: 'bigint', transformer: asNumber, default: 0 })
  lastSeenAt!: number;
}
