// The journal's start (src/agent/journal_capability.ts loads it): the replication key from its file,
// journal.db in the data directory, the transport journal.queue names (the mesh on the channel "journal",
// following the cluster's membership; or a broker, its client loaded only then, its secret read from its
// file or environment variable), the applier with this node's handlers, and the /api/v1/journal routes.
// Its events (refusals, dead letters) go to GET /api/v1/events. The outbox pruning sweep rides the ticker.
import type { Logger } from "pino";
import { journalRoutes } from "../api/index.ts";
import type { JournalConfig } from "../config/index.ts";
import { batchesCappedByConcurrency, JournalKey, JournalNode, outboxPruneEveryMs } from "../journal/index.ts";
import {
  amqpTransport,
  JOURNAL_CHANNEL,
  type JournalTransport,
  MeshTransport,
  natsTransport,
  pubsubTransport,
  redisTransport,
} from "../queue/index.ts";
import { readSecret } from "../shell/index.ts";
import type { CapabilityBase, RunningCapability } from "./capability.ts";
import type { JournalCapabilityConfig } from "./journal_capability.ts";

export async function startJournal(
  config: JournalCapabilityConfig,
  base: CapabilityBase,
): Promise<RunningCapability> {
  const logger = base.logger.child({ component: "journal" });
  const key = await JournalKey.load(config.keyFile);
  const transport = await transportOf(config, base, logger);
  const node = new JournalNode({
    nodeId: base.nodeId,
    dataDir: base.dataDir,
    config,
    key,
    transport,
    logger,
    onEvent: (fields) => base.events.emit("journal", fields),
    postSteps: base.provided.postSteps ?? [],
    ...(config.embedding?.db === undefined ? {} : { appDb: config.embedding.db }),
    ...(config.embedding?.handlers === undefined ? {} : { handlers: config.embedding.handlers }),
  });
  try {
    node.start();
  } catch (error) {
    await node.stop();
    throw error;
  }
  // Pruning rides the agent's ticker; a retention of 0 keeps every entry and runs no sweep.
  const sweep =
    config.outboxRetentionMs > 0
      ? base.ticker.every(outboxPruneEveryMs(config.outboxRetentionMs), () => {
          node.prune().catch((error: unknown) => logger.error({ err: error }, "journal outbox not pruned"));
        })
      : null;
  sweep?.start();
  const unfollow = base.coordination.on("members:changed", (members) => {
    if (members.length === 0 || !(transport instanceof MeshTransport)) return;
    transport.setPeers(members.map((m) => m.id).filter((id) => id !== base.nodeId));
  });
  logger.info({ queue: transport.kind, recipient: key.recipient }, "journal started");
  const capped = batchesCappedByConcurrency(config.handlers, config.concurrency);
  if (capped.length > 0) {
    logger.warn(
      { types: capped, concurrency: config.concurrency },
      "journal webhook batches hold at most journal.concurrency entries: set it to at least their batch",
    );
  }
  return {
    routes: journalRoutes(node),
    channels: transport instanceof MeshTransport ? [JOURNAL_CHANNEL] : [],
    status: () => node.status(),
    provides: { journal: node },
    async stop() {
      sweep?.stop();
      unfollow();
      await node.stop();
    },
  };
}

async function transportOf(
  config: JournalConfig,
  base: CapabilityBase,
  logger: Logger,
): Promise<JournalTransport> {
  const queue = config.queue;
  if (queue.type === "mesh") return new MeshTransport({ mesh: base.mesh, peers: base.peers, logger });
  // The queues with one queue per member create them all (the membership; before bootstrap, the config's).
  const known = base.coordination.members().map((m) => m.id);
  const members = known.length > 0 ? known : [base.nodeId, ...base.peers];
  if (queue.type === "pubsub") {
    return pubsubTransport({
      nodeId: base.nodeId,
      members,
      project: queue.project,
      topic: queue.topic,
      logger,
    });
  }
  if (queue.type === "amqp") {
    const password = await readSecret(queue.passwordFile, queue.passwordEnv, "journal.queue.password");
    return amqpTransport({
      nodeId: base.nodeId,
      members,
      url: queue.url,
      prefix: queue.prefix,
      ...(password === undefined ? {} : { password }),
      logger,
    });
  }
  if (queue.type === "redis") {
    const password = await readSecret(queue.passwordFile, queue.passwordEnv, "journal.queue.password");
    return redisTransport({
      nodeId: base.nodeId,
      url: queue.url,
      stream: queue.stream,
      ...(password === undefined ? {} : { password }),
      logger,
    });
  }
  const token = await readSecret(queue.tokenFile, queue.tokenEnv, "journal.queue.token");
  return natsTransport({
    nodeId: base.nodeId,
    servers: queue.servers,
    stream: queue.stream,
    subjectPrefix: queue.subjectPrefix,
    ...(token === undefined ? {} : { token }),
    logger,
  });
}
