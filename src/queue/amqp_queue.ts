// The journal over RabbitMQ (amqplib): a fanout exchange per cluster and a durable quorum queue per node
// bound to it. Each node publishes its outbox to the exchange in sealed batches, persistent, on a confirm
// channel (a batch counts as shipped once RabbitMQ confirmed it: in every queue, on disk), and consumes its
// own queue with manual acks, acknowledging once its inbox holds the batch; what it had not acknowledged
// when its connection went is delivered again. A queue receives only what is published after it exists, so
// every node declares the queues of every member it knows, not only its own: a node whose agent has not run
// yet still finds the history waiting. Its own batches come back too and are skipped by the journal; a batch
// published twice (a confirm lost) is dropped by the journal's de-duplication. An outage backs off and
// reconnects from the same outbox cursor.
import { type ChannelModel, type ConfirmChannel, connect } from "amqplib";
import type { Logger } from "pino";
import type { NodeId } from "../core/types.ts";
import { Backoff, ErrorNote, OutboxPublisher, setUpWithRetry } from "./outbox_publisher.ts";
import type { JournalTransport, SealedBatch, TransportIo } from "./transport.ts";

export interface AmqpTransportOptions {
  nodeId: NodeId;
  /** Every member of the cluster (this node too): each gets its queue. */
  members: readonly NodeId[];
  /** amqp://user@host:port/vhost (no password in it: `password` instead). */
  url: string;
  password?: string;
  /** Names: the exchange `<prefix>`, the queues `<prefix>.<node>`. */
  prefix: string;
  logger: Logger;
}

/** Batches delivered to this node at once (each up to 256 entries). */
const prefetch = 16;

export class AmqpTransport implements JournalTransport {
  readonly kind = "amqp";
  private readonly options: AmqpTransportOptions;
  private readonly errors: ErrorNote;
  private readonly backoff = new Backoff();
  private connection: ChannelModel | null = null;
  private publishChannel: ConfirmChannel | null = null;
  private publisher: OutboxPublisher | null = null;
  private io: TransportIo | null = null;
  private stopped = false;

  constructor(options: AmqpTransportOptions) {
    this.options = options;
    this.errors = new ErrorNote(options.logger);
  }

  start(io: TransportIo): void {
    this.io = io;
    this.publisher = new OutboxPublisher(io, "amqp:publish", (batch) => this.append(batch), this.errors);
    void this.connectLoop();
  }

  recorded(): void {
    if (this.publishChannel !== null) this.publisher?.wake();
  }

  status(): Record<string, unknown> {
    return {
      url: this.options.url,
      exchange: this.options.prefix,
      connected: this.connection !== null,
      publishedThrough: this.publisher?.publishedThrough ?? 0,
      lastError: this.errors.last,
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.publisher?.stop();
    await this.connection?.close().catch(() => {});
  }

  private async append(batch: SealedBatch): Promise<void> {
    const channel = this.publishChannel;
    if (channel === null) throw new Error("not connected to RabbitMQ");
    channel.publish(this.options.prefix, "", Buffer.from(batch.message), {
      persistent: true,
      messageId: `${this.options.nodeId}-${batch.firstSeq}-${batch.lastSeq}`,
    });
    await channel.waitForConfirms();
  }

  private async connectLoop(): Promise<void> {
    const ready = await setUpWithRetry({
      what: "cannot set up the RabbitMQ queues",
      setUp: () => this.setUp(),
      undo: async () => {
        // Set by setUp() before it failed, if it got that far.
        await this.connection?.close().catch(() => {});
        this.dropped();
      },
      stopped: () => this.stopped,
      backoff: this.backoff,
      errors: this.errors,
    });
    if (ready) this.publisher?.wake();
  }

  private dropped(): void {
    this.connection = null;
    this.publishChannel = null;
  }

  private async setUp(): Promise<void> {
    const { url, password, prefix, nodeId, members } = this.options;
    const target = new URL(url);
    if (password !== undefined) target.password = password;
    const connection = await connect(target.toString(), {
      clientProperties: { connection_name: `tandem-${nodeId}` },
    });
    this.connection = connection;
    connection.on("error", (error: Error) => this.errors.note("RabbitMQ connection", error));
    connection.on("close", () => {
      if (this.stopped || this.connection !== connection) return;
      this.dropped();
      void this.connectLoop();
    });
    const publish = await connection.createConfirmChannel();
    await publish.assertExchange(prefix, "fanout", { durable: true });
    for (const member of new Set([...members, nodeId])) {
      const queue = `${prefix}.${member}`;
      await publish.assertQueue(queue, { durable: true, arguments: { "x-queue-type": "quorum" } });
      await publish.bindQueue(queue, prefix, "");
    }
    this.publishChannel = publish;
    const consume = await connection.createChannel();
    await consume.prefetch(prefetch);
    await consume.consume(
      `${prefix}.${nodeId}`,
      (message) => {
        if (message === null) return;
        this.io?.deliver(message.content).then(
          () => consume.ack(message),
          (error: unknown) => {
            this.errors.note("journal message not stored; RabbitMQ delivers it again", error);
            consume.nack(message, false, true);
          },
        );
      },
      { noAck: false },
    );
    this.options.logger.info({ exchange: prefix, queue: `${prefix}.${nodeId}` }, "journal on RabbitMQ");
  }
}
