// The journal over Redis Streams (node-redis, Redis's own client): one stream per cluster, each node
// appending its outbox to it in sealed batches (XADD; a batch counts as shipped once Redis answered, so how
// durable that is follows the server's `appendonly`/`appendfsync`), and reading it through a consumer group
// of its own (XREADGROUP, then XACK once its inbox holds the batch). A message read but not acknowledged
// (the node died first) stays in the group's pending list, and the node reads that list again when it
// starts, before new messages. Its own messages come back too and are skipped by the journal. Redis keeps no
// message ids for de-duplication: a batch appended twice (an answer lost) is dropped by the journal. An
// outage backs off; the client reconnects by itself.
import type { Logger } from "pino";
import { createClient, type RedisClientType } from "redis";
import type { NodeId } from "../core/types.ts";
import { Backoff, backoffMaxMs, ErrorNote, OutboxPublisher, setUpWithRetry } from "./outbox_publisher.ts";
import type { JournalTransport, SealedBatch, TransportIo } from "./transport.ts";

export interface RedisTransportOptions {
  nodeId: NodeId;
  /** redis://host:port[/db] (no password in it: `password` instead). */
  url: string;
  /** The cluster's stream key. */
  stream: string;
  password?: string;
  logger: Logger;
}

const readCount = 16;
const blockMs = 2_000;

type ReadReply = Array<{ messages: Array<{ id: string; message: Record<string, string> }> }> | null;

export class RedisTransport implements JournalTransport {
  readonly kind = "redis";
  private readonly options: RedisTransportOptions;
  private readonly errors: ErrorNote;
  private readonly backoff = new Backoff();
  /** Commands, and a second connection for the blocking reads (which hold theirs). */
  private client: RedisClientType | null = null;
  private reader: RedisClientType | null = null;
  private publisher: OutboxPublisher | null = null;
  private ready = false;
  private stopped = false;
  private reading: Promise<void> | null = null;

  constructor(options: RedisTransportOptions) {
    this.options = options;
    this.errors = new ErrorNote(options.logger);
  }

  private get group(): string {
    return `tandem-${this.options.nodeId}`;
  }

  start(io: TransportIo): void {
    this.publisher = new OutboxPublisher(io, "redis:publish", (batch) => this.append(batch), this.errors);
    void this.connectLoop(io);
  }

  recorded(): void {
    if (this.ready) this.publisher?.wake();
  }

  status(): Record<string, unknown> {
    return {
      url: this.options.url,
      stream: this.options.stream,
      connected: this.client?.isReady ?? false,
      publishedThrough: this.publisher?.publishedThrough ?? 0,
      lastError: this.errors.last,
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.publisher?.stop();
    // Ends the blocking read at once; the loop sees `stopped`.
    this.reader?.destroy();
    await this.reading;
    await this.client?.close().catch(() => {});
  }

  private async append(batch: SealedBatch): Promise<void> {
    const client = this.client;
    if (client === null) throw new Error("not connected to Redis");
    await client.xAdd(this.options.stream, "*", {
      o: this.options.nodeId,
      m: Buffer.from(batch.message).toString("base64"),
    });
  }

  private async connectLoop(io: TransportIo): Promise<void> {
    this.ready = await setUpWithRetry({
      what: "cannot set up the Redis stream",
      setUp: () => this.setUp(),
      undo: () => {
        this.client?.destroy();
        this.reader?.destroy();
        this.client = null;
        this.reader = null;
      },
      stopped: () => this.stopped,
      backoff: this.backoff,
      errors: this.errors,
    });
    if (this.ready) {
      this.reading = this.readLoop(io);
      this.publisher?.wake();
    }
  }

  private async setUp(): Promise<void> {
    const client: RedisClientType = createClient({
      url: this.options.url,
      ...(this.options.password === undefined ? {} : { password: this.options.password }),
      socket: { reconnectStrategy: (retries: number) => Math.min(backoffMaxMs, 200 * 2 ** retries) },
    });
    // Without a listener an error event would end the process; the reconnect strategy handles them.
    client.on("error", (error: Error) => this.errors.note("Redis connection", error));
    this.client = client;
    await client.connect();
    const reader = client.duplicate();
    reader.on("error", (error: Error) => this.errors.note("Redis connection", error));
    this.reader = reader;
    await reader.connect();
    try {
      await client.xGroupCreate(this.options.stream, this.group, "0", { MKSTREAM: true });
    } catch (error) {
      if (!/BUSYGROUP/.test((error as Error).message)) throw error;
    }
    this.options.logger.info({ stream: this.options.stream, group: this.group }, "journal on Redis Streams");
  }

  /** The group's pending list first (read before a crash, never acknowledged), then new messages. */
  private async readLoop(io: TransportIo): Promise<void> {
    const { reader, client } = this;
    if (reader === null || client === null) return;
    let position = "0";
    while (!this.stopped) {
      try {
        const reply = (await reader.xReadGroup(
          this.group,
          this.options.nodeId,
          { key: this.options.stream, id: position },
          { COUNT: readCount, BLOCK: blockMs },
        )) as ReadReply;
        const messages = reply?.[0]?.messages;
        if (messages === undefined || messages.length === 0) {
          position = ">";
          continue;
        }
        // Together, so the journal stores them in one transaction; acknowledged once stored.
        await Promise.all(messages.map((m) => io.deliver(Buffer.from(m.message.m ?? "", "base64"))));
        await client.xAck(
          this.options.stream,
          this.group,
          messages.map((m) => m.id),
        );
      } catch (error) {
        if (this.stopped) return;
        this.errors.note("journal messages not read from Redis", error);
        position = "0";
        await this.backoff.sleep();
      }
    }
  }
}
