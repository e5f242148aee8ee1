// One open WebSocket of a user. API Gateway's connectionId is the key: the $disconnect Lambda deletes by it.
import { Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { User } from '../users/user.entity';

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
}
