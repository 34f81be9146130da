// The replicated store as a capability: its SQLite file in the data directory, the replicator on the
// mesh and the shared ticker, the tombstone sweep, the optional materialiser, and its API routes.
import { join } from "node:path";
import type { Logger } from "pino";
import { storeRoutes } from "../api/index.ts";
import type { StoreConfig } from "../config/index.ts";
import { ShutdownStack } from "../shell/index.ts";
import { MaterialiseFeed, Materialiser, Replicator, SqliteLocalStore } from "../store/index.ts";
import type { Capability, CapabilityBase, RunningCapability } from "./capability.ts";

/** Tombstones past the horizon are collected this often. */
export const tombstoneSweepMs = 3_600_000;

export const storeCapability: Capability<StoreConfig> = {
  name: "store",
  async start(config, base) {
    const logger = base.logger.child({ component: "store" });
    const stack = new ShutdownStack(logger);
    try {
      return await startStore(config, base, logger, stack);
    } catch (error) {
      await stack.unwind();
      throw error;
    }
  },
};

async function startStore(
  config: StoreConfig,
  base: CapabilityBase,
  logger: Logger,
  stack: ShutdownStack,
): Promise<RunningCapability> {
  const localStore = SqliteLocalStore.open({
    path: join(base.dataDir, "store.db"),
    nodeId: base.nodeId,
    valueBytesMax: config.valueBytesMax,
  });
  stack.push("sqlite", () => localStore.close());
  const replicator = new Replicator({
    selfId: base.nodeId,
    peers: base.peers,
    readOnly: config.readOnly,
    store: localStore,
    mesh: base.mesh,
    logger,
    writeTimeoutMs: config.writeTimeoutMs,
    antiEntropyIntervalMs: config.antiEntropyIntervalMs,
    valueBytesMax: config.valueBytesMax,
    ticker: base.ticker,
  });
  replicator.start();
  stack.push("replicator", () => replicator.stop());
  // Replication follows the cluster's membership; a learner votes only once it holds what the leader holds.
  const unfollow = base.coordination.on("members:changed", (members) => {
    if (members.length > 0) replicator.setPeers(members.map((m) => m.id).filter((id) => id !== base.nodeId));
  });
  stack.push("membership follower", unfollow);
  base.coordination.addCatchUpCheck((leader) => {
    const progress = replicator.syncProgress(leader);
    return {
      caughtUp: progress.caughtUp,
      detail: `store: behind ${leader} (cursor ${progress.cursorSeq ?? "none"} of head ${progress.headSeq ?? "unknown"})`,
    };
  });
  const sweep = base.ticker.every(tombstoneSweepMs, () => {
    const collected = localStore.collectTombstones(Date.now() - config.tombstoneHorizonMs);
    if (collected > 0) logger.info({ collected }, "collected tombstones past the horizon");
  });
  sweep.start();
  stack.push("tombstone sweep", () => sweep.stop());
  if (config.materialise !== null) {
    // A sibling of the store's logger, not its child: pino children repeat a key rather than replace it.
    const materialiserLogger = base.logger.child({ component: "store.materialiser" });
    const materialiser = await Materialiser.open({ ...config.materialise, logger: materialiserLogger });
    stack.push("materialiser", () => materialiser.close());
    const feed = new MaterialiseFeed(replicator, localStore, materialiser, { logger });
    stack.push("materialise feed", () => feed.stop());
    await feed.start();
  }
  return {
    routes: storeRoutes(replicator, {
      nodeId: base.nodeId,
      logger,
      minAcksDefault: config.minAcks,
      valueBytesMax: config.valueBytesMax,
      writeTimeoutMs: config.writeTimeoutMs,
    }),
    channels: Replicator.channels,
    status: () => ({ readOnly: config.readOnly, lastSeq: replicator.lastSeq(), sync: replicator.status() }),
    stop: () => stack.unwind(),
  };
}
