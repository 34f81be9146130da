import type { AmqpTransport, AmqpTransportOptions } from "./amqp_queue.ts";
import type { NatsTransport, NatsTransportOptions } from "./nats_queue.ts";
import type { PubsubTransport, PubsubTransportOptions } from "./pubsub_queue.ts";
import type { RedisTransport, RedisTransportOptions } from "./redis_queue.ts";

export type { AmqpTransportOptions } from "./amqp_queue.ts";
export {
  JOURNAL_CHANNEL,
  MeshTransport,
  type MeshTransportOptions,
  meshBatchMax,
  meshInFlightMax,
} from "./mesh_queue.ts";
export type { NatsTransportOptions } from "./nats_queue.ts";
export type { PubsubTransportOptions } from "./pubsub_queue.ts";
export type { RedisTransportOptions } from "./redis_queue.ts";
export type { JournalTransport, SealedBatch, TransportIo } from "./transport.ts";

/** The NATS transport, its client loaded only by a journal that uses it. */
export async function natsTransport(options: NatsTransportOptions): Promise<NatsTransport> {
  const { NatsTransport } = await import("./nats_queue.ts");
  return new NatsTransport(options);
}

/** The Redis Streams transport, its client loaded only by a journal that uses it. */
export async function redisTransport(options: RedisTransportOptions): Promise<RedisTransport> {
  const { RedisTransport } = await import("./redis_queue.ts");
  return new RedisTransport(options);
}

/** The RabbitMQ transport, its client loaded only by a journal that uses it. */
export async function amqpTransport(options: AmqpTransportOptions): Promise<AmqpTransport> {
  const { AmqpTransport } = await import("./amqp_queue.ts");
  return new AmqpTransport(options);
}

/** The Pub/Sub transport, its client loaded only by a journal that uses it. */
export async function pubsubTransport(options: PubsubTransportOptions): Promise<PubsubTransport> {
  const { PubsubTransport } = await import("./pubsub_queue.ts");
  return new PubsubTransport(options);
}
