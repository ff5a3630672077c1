// A NestJS client of the profile service, written as against a NestJS
// @MessagePattern({ cmd: 'get_user_by_id' }) handler: it reads
// {"userId": ...} lines from stdin, sends each, and prints the response or
// the error as a JSON line.
import 'reflect-metadata';
import { createInterface } from 'node:readline';
import { Inject, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientProxy, ClientsModule } from '@nestjs/microservices';
import { firstValueFrom, timeout } from 'rxjs';
import { options, print, queue } from './transport.js';

const PROFILE_SERVICE = 'PROFILE_SERVICE';

@Injectable()
class ProfileLookup {
  constructor(@Inject(PROFILE_SERVICE) private readonly client: ClientProxy) {}

  connect(): Promise<void> {
    return this.client.connect();
  }

  get(userId: unknown): Promise<unknown> {
    return firstValueFrom(this.client.send({ cmd: 'get_user_by_id' }, { userId }).pipe(timeout(10_000)));
  }
}

@Module({
  imports: [ClientsModule.register([{ name: PROFILE_SERVICE, ...options(queue('NESTJS_REQUEST_QUEUE')) }])],
  providers: [ProfileLookup],
})
class AppModule {}

const app = await NestFactory.createApplicationContext(AppModule, { logger: ['error', 'warn'] });
const profiles = app.get(ProfileLookup);
await profiles.connect();
print({ ready: true });

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (line.trim() === '') {
    continue;
  }
  const { userId } = JSON.parse(line) as { userId: unknown };
  try {
    print({ userId, response: await profiles.get(userId) });
  } catch (err) {
    print({ userId, error: err instanceof Error ? { name: err.name, message: err.message } : err });
  }
}
await app.close();
process.exit(0);
