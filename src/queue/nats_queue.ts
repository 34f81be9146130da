// The journal over NATS JetStream (the official client): one stream per cluster, each node publishing its
// outbox to `<prefix>.<node>` in sealed batches, each with its outbox range as the message id (the stream
// drops a republished duplicate within its window; the journal drops any other repeat by entry id), and
// reading every node's messages through a durable consumer of its own (explicit acks, so a
// message not acknowledged, because this node died before its inbox held it, is delivered again). Its own
// messages come back too and are skipped by the journal. A batch counts as shipped once the stream
// acknowledged every message of it; a NATS outage backs off and resumes from the same outbox cursor, and
// the client reconnects by itself.

import type { ConsumerMessages, JetStreamClient } from "@nats-io/jetstream";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection, nanos } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { NodeId } from "../core/types.ts";
import type { JournalTransport, TransportIo } from "./transport.ts";

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

const publishBatchMax = 256;
const backoffMinMs = 200;
const backoffMaxMs = 5_000;
/** Within this the stream drops a republished message of the same id. */
const duplicateWindowMs = 10 * 60_000;
const cursorName = "nats:publish";

export class NatsTransport implements JournalTransport {
  readonly kind = "nats";
  private readonly options: NatsTransportOptions;
  private io: TransportIo | null = null;
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private messages: ConsumerMessages | null = null;
  private cursor = 0;
  private publishing = false;
  private again = false;
  private backoffMs = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private lastError: string | null = null;
  private stopped = false;
  private consuming: Promise<void> | null = null;

  constructor(options: NatsTransportOptions) {
    this.options = options;
  }

  start(io: TransportIo): void {
    this.io = io;
    this.cursor = io.cursor(cursorName);
    void this.connectLoop();
  }

  recorded(): void {
    if (this.js === null || this.timer !== null || this.stopped) return;
    if (this.publishing) this.again = true;
    else void this.publish();
  }

  status(): Record<string, unknown> {
    return {
      servers: this.options.servers,
      stream: this.options.stream,
      connected: this.nc !== null && !this.nc.isClosed(),
      publishedThrough: this.cursor,
      lastError: this.lastError,
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.messages?.stop();
    await this.consuming;
    await this.nc?.close();
  }

  /** Connects, sets up the stream and this node's consumer, then publishes and consumes; retried on failure. */
  private async connectLoop(): Promise<void> {
    while (!this.stopped && this.js === null) {
      try {
        await this.setUp();
        this.backoffMs = 0;
        this.lastError = null;
      } catch (error) {
        await this.nc?.close().catch(() => {});
        this.nc = null;
        this.noteError("cannot set up the NATS stream", error);
        await this.sleep();
      }
    }
    if (this.js !== null) void this.publish();
  }

  private async setUp(): Promise<void> {
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
    this.messages = await consumer.consume({ max_messages: publishBatchMax });
    this.consuming = this.consume(this.messages);
    this.js = js;
    this.options.logger.info({ stream, durable }, "journal on NATS JetStream");
  }

  /**
   * Each message acknowledged once durable here; one that fails is given back for redelivery. Not awaited
   * one by one: messages arriving together are stored in one transaction (NATS bounds them by
   * max_ack_pending), and the journal's lanes order them.
   */
  private async consume(messages: ConsumerMessages): Promise<void> {
    const io = this.io;
    if (io === null) return;
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

  /** The outbox from the cursor, a batch at a time, each batch's acks awaited before the cursor moves. */
  private async publish(): Promise<void> {
    const io = this.io;
    const js = this.js;
    if (io === null || js === null || this.publishing) return;
    this.publishing = true;
    try {
      while (!this.stopped) {
        this.again = false;
        const batch = await io.outboxAfter(this.cursor, publishBatchMax);
        if (batch === null) {
          if (this.again) continue;
          return;
        }
        const subject = `${this.options.subjectPrefix}.${this.options.nodeId}`;
        // The same outbox range gets the same id: a republish after a lost ack is dropped by the stream.
        const msgID = `${this.options.nodeId}-${batch.firstSeq}-${batch.lastSeq}`;
        await js.publish(subject, batch.message, { msgID });
        this.cursor = batch.lastSeq;
        io.setCursor(cursorName, this.cursor);
        io.shipped(this.cursor);
        this.backoffMs = 0;
        this.lastError = null;
      }
    } catch (error) {
      this.noteError("journal batch not published", error);
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.publish();
      }, this.nextBackoff());
      this.timer.unref();
    } finally {
      this.publishing = false;
    }
  }

  private noteError(what: string, error: unknown): void {
    const reason = error instanceof Error ? error.message : String(error);
    if (reason !== this.lastError) this.options.logger.warn({ reason }, what);
    this.lastError = reason;
  }

  private nextBackoff(): number {
    this.backoffMs = Math.min(backoffMaxMs, Math.max(backoffMinMs, this.backoffMs * 2));
    return this.backoffMs;
  }

  private sleep(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, this.nextBackoff());
      timer.unref();
    });
  }
}
