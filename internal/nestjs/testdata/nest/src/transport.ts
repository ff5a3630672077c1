// The transport options a NestJS service would put in its bootstrap, read
// from the same variables outboxd's worker reads, so that the test points
// both at the same broker.
import { INestMicroservice } from '@nestjs/common';
import { KafkaOptions, NatsOptions, RedisOptions, RmqOptions, Transport } from '@nestjs/microservices';

export type TransportOptions = NatsOptions | RmqOptions | RedisOptions | KafkaOptions;

function env(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set`);
  }
  return value;
}

// options returns the transport of NESTJS_BROKER at NESTJS_URL; queue is the
// RabbitMQ queue of the service the options are for.
export function options(queue: string): TransportOptions {
  const broker = env('NESTJS_BROKER');
  const url = env('NESTJS_URL');
  switch (broker) {
    case 'nats':
      return { transport: Transport.NATS, options: { servers: [url] } };
    case 'amqp':
      return { transport: Transport.RMQ, options: { urls: [url], queue } };
    case 'redis': {
      const u = new URL(url);
      return { transport: Transport.REDIS, options: { host: u.hostname, port: Number(u.port || 6379) } };
    }
    case 'kafka':
      return {
        transport: Transport.KAFKA,
        options: {
          client: { clientId: 'notifications', brokers: url.split(',') },
          consumer: { groupId: process.env.KAFKA_GROUP ?? 'notifications' },
          subscribe: { fromBeginning: true },
        },
      };
    default:
      throw new Error(`NESTJS_BROKER=${broker}: want nats, amqp, redis or kafka`);
  }
}

export function queue(name: string): string {
  return process.env.NESTJS_BROKER === 'amqp' ? env(name) : '';
}

// listening returns once the server's subscriptions are in place, so that
// the test sends nothing a subscription sent a moment later would miss.
// NestJS's NATS and Redis servers subscribe without waiting for the
// broker's answer; a NATS flush and a Redis PING on the subscribing
// connection come back after it. RabbitMQ's queue keeps what comes early,
// and the Kafka consumer reads its topics from the beginning.
export async function listening(app: INestMicroservice): Promise<void> {
  switch (process.env.NESTJS_BROKER) {
    case 'nats':
      await app.unwrap<{ flush(): Promise<void> }>().flush();
      break;
    case 'redis': {
      const [, sub] = app.unwrap<[unknown, { ping(): Promise<string> }]>();
      await sub.ping();
      break;
    }
  }
}

// print writes one JSON line to stdout, where the Go test reads it.
export function print(line: object): void {
  process.stdout.write(JSON.stringify(line) + '\n');
}
