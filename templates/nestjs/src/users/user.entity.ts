// Stands in for your app's own User entity, so that the template type-checks here. Not copied by `wsdeploy init`.
import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

@Entity('users')
export class User {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column()
  email!: string;
}
