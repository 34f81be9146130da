// The `journal:` section of tandem.yml (docs/journal.md): the replication key, the queue entries travel
// through, and what applies each entry type on this node. Absent: the node runs no journal.
import { z } from "zod";
import { entryTypePattern } from "../core/types.ts";

/** "7d", "168h", "30m", "90s" or "500ms"; a bare number is milliseconds; 0 keeps every entry. */
export const retentionPattern = /^(\d+)(ms|s|m|h|d)$/;
const retentionUnitMs = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

export function parseRetentionMs(value: string | number): number {
  if (typeof value === "number") return value;
  const match = retentionPattern.exec(value);
  if (match === null) throw new RangeError(`not a retention: ${value}`);
  return Number(match[1]) * retentionUnitMs[match[2] as keyof typeof retentionUnitMs];
}

/** A handler is named by an entry type, or "*" for every type without its own. */
export function isHandlerName(name: string): boolean {
  return name === "*" || entryTypePattern.test(name);
}

const timeoutMs = z
  .int()
  .min(1)
  .max(3_600_000)
  .default(30_000)
  .describe("The handler is stopped after this long");

const execHandler = z
  .strictObject({
    exec: z
      .array(z.string().min(1))
      .min(1)
      .describe("argv, run without a shell; the entry as JSON on stdin; exit code 0 applies it"),
    timeout_ms: timeoutMs,
  })
  .describe("Run a command for each entry");

const webhookHandler = z
  .strictObject({
    webhook: z
      .url({ protocol: /^https?$/, error: "expected an http:// or https:// URL" })
      .describe("POST the entry as JSON; a 2xx answer applies it"),
    timeout_ms: timeoutMs,
    batch: z
      .int()
      .min(1)
      .max(1000)
      .optional()
      .describe(
        "POST up to this many entries at once (those starting together, of different ordering keys) as a JSON array; a 2xx answer applies all of them",
      ),
  })
  .describe("POST each entry to a local application");

const meshQueue = z
  .strictObject({ type: z.literal("mesh") })
  .describe("Entries travel over Tandem's own links, acknowledged and redelivered; nothing else to run");

const natsQueue = z
  .strictObject({
    type: z.literal("nats"),
    url: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .describe("nats://host:port of the NATS server(s) with JetStream"),
    stream: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, { error: "expected 1-64 characters of A-Z a-z 0-9 _ -" })
      .optional()
      .describe("The cluster's stream, created if absent; default TANDEM_<cluster_name>"),
    token_file: z.string().min(1).optional().describe("A file holding the NATS token"),
    token_env: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .optional()
      .describe("An environment variable holding the NATS token"),
  })
  .describe("NATS JetStream: a stream per cluster, a durable consumer per node, de-duplication by entry id");

const redisQueue = z
  .strictObject({
    type: z.literal("redis"),
    url: z
      .string()
      .regex(/^rediss?:\/\/[^@/]+(\/\d+)?$/, {
        error: "expected redis://host:port[/db] (no password: password_file)",
      })
      .describe("The Redis server (5.0 or later, for streams)"),
    stream: z
      .string()
      .min(1)
      .max(256)
      .optional()
      .describe("The stream key; default tandem:<cluster_name>:journal"),
    password_file: z.string().min(1).optional().describe("A file holding the Redis password"),
    password_env: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .optional()
      .describe("An environment variable holding the Redis password"),
  })
  .describe("Redis Streams: a stream per cluster, a consumer group per node");

const amqpQueue = z
  .strictObject({
    type: z.literal("amqp"),
    url: z
      .string()
      .regex(/^amqps?:\/\/([^:@/]+@)?[^@/]+(\/[^/]*)?$/, {
        error: "expected amqp://user@host:port/vhost (no password: password_file)",
      })
      .describe("The RabbitMQ server (3.8 or later, for quorum queues)"),
    password_file: z.string().min(1).optional().describe("A file holding the RabbitMQ password"),
    password_env: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .optional()
      .describe("An environment variable holding the RabbitMQ password"),
  })
  .describe(
    "RabbitMQ: a fanout exchange per cluster, a quorum queue per node, publisher confirms, manual acks",
  );

const pubsubQueue = z
  .strictObject({
    type: z.literal("pubsub"),
    project: z
      .string()
      .regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, { error: "expected a Google Cloud project id" }),
    topic: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9._~%+-]{2,200}$/, { error: "expected a Pub/Sub topic name" })
      .optional()
      .describe("The topic; default tandem-<cluster_name>-journal"),
  })
  .describe(
    "Google Cloud Pub/Sub: a topic per cluster, an ordered subscription per node; credentials the client's standard way",
  );

export const journalSchema = z.strictObject({
  key_file: z
    .string()
    .min(1)
    .describe("The cluster's replication key (`tandem journal keygen`), the same file on every node"),
  queue: z
    .discriminatedUnion("type", [meshQueue, natsQueue, redisQueue, amqpQueue, pubsubQueue])
    .default({ type: "mesh" }),
  handlers: z
    .record(z.string(), z.union([execHandler, webhookHandler]))
    .default({})
    .describe("What applies each entry type here; an entry of a type with none goes to the dead letters"),
  steps: z
    .record(
      z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/),
      z.strictObject({
        exec: z
          .array(z.string().min(1))
          .min(1)
          .describe("argv, run without a shell; the entry as JSON on stdin; exit code 0 is done"),
        types: z
          .array(z.string().min(1))
          .optional()
          .describe("Only entries of these types; default every one"),
        timeout_ms: timeoutMs,
      }),
    )
    .default({})
    .describe("Post-execution steps: run on this node for each of its own entries once it is shipped"),
  max_attempts: z
    .int()
    .min(1)
    .max(1000)
    .default(10)
    .describe("Runs of a handler (or a step) before a dead letter"),
  retry_base_ms: z
    .int()
    .min(0)
    .max(3_600_000)
    .default(1_000)
    .describe("Wait after a first failure; doubled after each"),
  retry_max_ms: z.int().min(0).max(86_400_000).default(300_000).describe("The longest wait between runs"),
  concurrency: z.int().min(1).max(256).default(4).describe("Handlers running at once (one per ordering key)"),
  outbox_retention: z
    .union([
      z.int().min(0),
      z
        .string()
        .regex(retentionPattern, { error: 'expected e.g. "7d", "168h", "30m", or 0 to keep every entry' }),
    ])
    .default("7d")
    .describe(
      "How long this node keeps its own entries once every peer (or the queue) confirmed them and their post-execution steps are done; 0 keeps every entry",
    ),
});

export type JournalFile = z.output<typeof journalSchema>;
