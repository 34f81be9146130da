// The journal over Google Cloud Pub/Sub (the official client): a topic per cluster and a subscription per
// member, with message ordering on. Each node publishes its outbox to the topic in sealed batches with its
// own id as the ordering key (so one origin's batches arrive in order), and a batch counts as shipped once
// Pub/Sub accepted it; it reads its own subscription and acknowledges a batch once its inbox holds it
// (one not acknowledged is delivered again). A subscription only receives what is published after it exists,
// so every node creates the subscriptions of every member it knows. Its own batches come back and are skipped
// by the journal; a batch published twice is dropped by the journal's de-duplication. Credentials come the
// client's standard way (GOOGLE_APPLICATION_CREDENTIALS, or the metadata server); PUBSUB_EMULATOR_HOST points
// it at the emulator.
import { PubSub, type Subscription, type Topic } from "@google-cloud/pubsub";
import type { Logger } from "pino";
import type { NodeId } from "../core/types.ts";
import { Backoff, ErrorNote, OutboxPublisher, setUpWithRetry } from "./outbox_publisher.ts";
import type { JournalTransport, SealedBatch, TransportIo } from "./transport.ts";

export interface PubsubTransportOptions {
  nodeId: NodeId;
  /** Every member of the cluster (this node too): each gets its subscription. */
  members: readonly NodeId[];
  project: string;
  /** The topic; the subscriptions are `<topic>-<node>`. */
  topic: string;
  logger: Logger;
}

/** Batches held unacknowledged at once (each up to 256 entries). */
const maxMessages = 16;

export class PubsubTransport implements JournalTransport {
  readonly kind = "pubsub";
  private readonly options: PubsubTransportOptions;
  private readonly errors: ErrorNote;
  private readonly backoff = new Backoff();
  private client: PubSub | null = null;
  private topic: Topic | null = null;
  private subscription: Subscription | null = null;
  private publisher: OutboxPublisher | null = null;
  private stopped = false;

  constructor(options: PubsubTransportOptions) {
    this.options = options;
    this.errors = new ErrorNote(options.logger);
  }

  start(io: TransportIo): void {
    this.publisher = new OutboxPublisher(io, "pubsub:publish", (batch) => this.append(batch), this.errors);
    void this.connectLoop(io);
  }

  recorded(): void {
    if (this.topic !== null) this.publisher?.wake();
  }

  status(): Record<string, unknown> {
    return {
      project: this.options.project,
      topic: this.options.topic,
      connected: this.topic !== null,
      publishedThrough: this.publisher?.publishedThrough ?? 0,
      lastError: this.errors.last,
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.publisher?.stop();
    await this.subscription?.close().catch(() => {});
    await this.client?.close().catch(() => {});
  }

  private async append(batch: SealedBatch): Promise<void> {
    const topic = this.topic;
    if (topic === null) throw new Error("not connected to Pub/Sub");
    const orderingKey = this.options.nodeId;
    try {
      await topic.publishMessage({ data: Buffer.from(batch.message), orderingKey });
    } catch (error) {
      // A failed publish pauses its ordering key in the client; the retry from the cursor resumes it.
      topic.resumePublishing(orderingKey);
      throw error;
    }
  }

  private async connectLoop(io: TransportIo): Promise<void> {
    const ready = await setUpWithRetry({
      what: "cannot set up the Pub/Sub topic",
      setUp: () => this.setUp(io),
      stopped: () => this.stopped,
      backoff: this.backoff,
      errors: this.errors,
    });
    if (ready) this.publisher?.wake();
  }

  private async setUp(io: TransportIo): Promise<void> {
    const { project, topic: topicName, nodeId, members } = this.options;
    const client = this.client ?? new PubSub({ projectId: project });
    this.client = client;
    const topic = client.topic(topicName, { messageOrdering: true });
    const [topicExists] = await topic.exists();
    if (!topicExists) await topic.create().catch(alreadyExists);
    for (const member of new Set([...members, nodeId])) {
      const subscription = topic.subscription(`${topicName}-${member}`);
      const [exists] = await subscription.exists();
      if (!exists) {
        await topic
          .createSubscription(`${topicName}-${member}`, {
            enableMessageOrdering: true,
            ackDeadlineSeconds: 60,
          })
          .catch(alreadyExists);
      }
    }
    const subscription = topic.subscription(`${topicName}-${nodeId}`, { flowControl: { maxMessages } });
    subscription.on("message", (message) => {
      io.deliver(message.data).then(
        () => message.ack(),
        (error: unknown) => {
          this.errors.note("journal message not stored; Pub/Sub delivers it again", error);
          message.nack();
        },
      );
    });
    subscription.on("error", (error: Error) => this.errors.note("Pub/Sub subscription", error));
    this.subscription = subscription;
    this.topic = topic;
    this.options.logger.info({ project, topic: topicName }, "journal on Pub/Sub");
  }
}

/** Another node created it between our check and our create: fine. */
function alreadyExists(error: unknown): void {
  if ((error as { code?: number }).code !== 6) throw error;
}
