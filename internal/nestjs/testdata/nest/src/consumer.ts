// A notification service as the NestJS application it comes from has it:
// an @EventPattern('user_created') handler, unchanged. It prints each event
// it receives as a JSON line.
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { listening, options, print, queue } from './transport.js';

interface UserCreated {
  user_id: string;
  email: string;
  name: string;
  created_at: string;
}

@Controller()
class NotificationController {
  @EventPattern('user_created')
  userCreated(@Payload() data: UserCreated, @Ctx() context: unknown): void {
    print({ event: 'user_created', data, context: context?.constructor?.name });
  }
}

@Module({ controllers: [NotificationController] })
class NotificationModule {}

const app = await NestFactory.createMicroservice(NotificationModule, {
  ...options(queue('NESTJS_QUEUE')),
  logger: ['error', 'warn'],
});
await app.listen();
await listening(app);
print({ ready: true });

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    void app.close().then(() => process.exit(0));
  });
}
