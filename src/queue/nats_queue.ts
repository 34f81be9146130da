// The journal over NATS JetStream (the official client): one stream per cluster, each node publishing its
// outbox to `<prefix>.<node>` in sealed batches, each with its outbox range as the message id (the stream
// drops a republished duplicate within its window; the journal drops any other repeat by entry id), and
// reading every node's messages through a durable consumer of its own (explicit acks, so a message not
// acknowledged, because this node died before its inbox held it, is delivered again). Its own messages come
// back too and are skipped by the journal. A batch counts as shipped once the stream acknowledged it; a NATS
// outage backs off and resumes from the same outbox cursor, and the client reconnects by itself.
import type { ConsumerMessages, JetStreamClient } from "@nats-io/jetstream";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection, nanos } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { NodeId } from "../core/types.ts";
import { Backoff, backoffMaxMs, ErrorNote, OutboxPublisher, setUpWithRetry } from "./outbox_publisher.ts";
import type { JournalTransport, SealedBatch, TransportIo } from "./transport.ts";

export interface NatsTransportOptions {
  nodeId: NodeId;
  /** nats://host:port, one or several. */
  servers: readonly string[];
  /** The cluster's stream (created if absent). */
  stream: string;
  /** Subjects are `<prefix>.<node>`. */
  subjectPrefix: string;
  /** A token (read from a file or the environment by the caller), or none. */
  token?: string;
  logger: Logger;
}

const consumeBatchMax = 256;
/** Within this the stream drops a republished message of the same id. */
const duplicateWindowMs = 10 * 60_000;

export class NatsTransport implements JournalTransport {
  readonly kind = "nats";
  private readonly options: NatsTransportOptions;
  private readonly errors: ErrorNote;
  private readonly backoff = new Backoff();
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private publisher: OutboxPublisher | null = null;
  private messages: ConsumerMessages | null = null;
  private consuming: Promise<void> | null = null;
  private stopped = false;

  constructor(options: NatsTransportOptions) {
    this.options = options;
    this.errors = new ErrorNote(options.logger);
  }

  start(io: TransportIo): void {
    this.publisher = new OutboxPublisher(io, "nats:publish", (batch) => this.append(batch), this.errors);
    void this.connectLoop(io);
  }

  recorded(): void {
    if (this.js !== null) this.publisher?.wake();
  }

  status(): Record<string, unknown> {
    return {
      servers: this.options.servers,
      stream: this.options.stream,
      connected: this.nc !== null && !this.nc.isClosed(),
      publishedThrough: this.publisher?.publishedThrough ?? 0,
      lastError: this.errors.last,
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.publisher?.stop();
    this.messages?.stop();
    await this.consuming;
    await this.nc?.close();
  }

  private async append(batch: SealedBatch): Promise<void> {
    const js = this.js;
    if (js === null) throw new Error("not connected to NATS");
    // The same outbox range gets the same id: a republish after a lost ack is dropped by the stream.
    const msgID = `${this.options.nodeId}-${batch.firstSeq}-${batch.lastSeq}`;
    await js.publish(`${this.options.subjectPrefix}.${this.options.nodeId}`, batch.message, { msgID });
  }

  /** Connects, sets up the stream and this node's consumer, then publishes and consumes; retried on failure. */
  private async connectLoop(io: TransportIo): Promise<void> {
    const ready = await setUpWithRetry({
      what: "cannot set up the NATS stream",
      setUp: () => this.setUp(io),
      undo: async () => {
        await this.nc?.close().catch(() => {});
        this.nc = null;
      },
      stopped: () => this.stopped,
      backoff: this.backoff,
      errors: this.errors,
    });
    if (ready) this.publisher?.wake();
  }

  private async setUp(io: TransportIo): Promise<void> {
    const { servers, stream, subjectPrefix, nodeId, token } = this.options;
    const nc = await connect({
      servers: [...servers],
      name: `tandem-${nodeId}`,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1_000,
      ...(token === undefined ? {} : { token }),
    });
    this.nc = nc;
    const jsm = await jetstreamManager(nc);
    const exists = await jsm.streams.info(stream).then(
      () => true,
      () => false,
    );
    if (!exists) {
      await jsm.streams.add({
        name: stream,
        subjects: [`${subjectPrefix}.>`],
        duplicate_window: nanos(duplicateWindowMs),
      });
    }
    const durable = `tandem-${nodeId}`;
    const consumerExists = await jsm.consumers.info(stream, durable).then(
      () => true,
      () => false,
    );
    if (!consumerExists) {
      await jsm.consumers.add(stream, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: nanos(30_000),
        max_ack_pending: 1_000,
      });
    }
    const js = jetstream(nc);
    const consumer = await js.consumers.get(stream, durable);
    this.messages = await consumer.consume({ max_messages: consumeBatchMax });
    this.consuming = this.consume(io, this.messages);
    this.js = js;
    this.options.logger.info({ stream, durable }, "journal on NATS JetStream");
  }

  /**
   * Each message acknowledged once durable here; one that fails is given back for redelivery. Not awaited
   * one by one: messages arriving together are stored in one transaction (NATS bounds them by
   * max_ack_pending), and the journal's lanes order them.
   */
  private async consume(io: TransportIo, messages: ConsumerMessages): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    for await (const message of messages) {
      const delivery: Promise<void> = io.deliver(message.data).then(
        () => message.ack(),
        (error: unknown) => {
          this.options.logger.warn({ err: error }, "journal message not stored; NATS delivers it again");
          message.nak(backoffMaxMs);
        },
      );
      inFlight.add(delivery);
      void delivery.finally(() => inFlight.delete(delivery));
    }
    await Promise.all(inFlight);
  }
}
