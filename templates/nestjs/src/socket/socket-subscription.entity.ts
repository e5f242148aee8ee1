// A user's subscription to a topic (SocketService.subscribe): publish() sends to every open socket of every
// subscriber. Kept while the user has no socket, so that their replay buffer still gets the topic's messages.
import { Entity, Index, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { User } from '../users/user.entity';

@Entity('socket_subscriptions')
@Index(['topic'])
export class SocketSubscription {
  @PrimaryColumn()
  userId!: number;

  @PrimaryColumn({ length: 256 })
  topic!: string;

  // Deleting a user deletes their subscriptions.
  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'userId' })
  user!: User;
}
