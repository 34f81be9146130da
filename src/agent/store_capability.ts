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
  // Replication follows the cluster's membership.
  let peers = new Set(base.peers);
  const unfollow = base.coordination.on("members:changed", (members) => {
    if (members.length === 0) return;
    const others = members.map((m) => m.id).filter((id) => id !== base.nodeId);
    peers = new Set(others);
    replicator.setPeers(others);
  });
  stack.push("membership follower", unfollow);
  // A learner votes only once it holds what the cluster holds: caught up with the leader and with every
  // other peer it is linked to (a since round with one peer leaves out the writes it reads from another,
  // so being caught up with the leader alone can leave a writer's entries still to pull).
  base.coordination.addCatchUpCheck((leader) => {
    const linked = base.mesh
      .peers()
      .filter((link) => link.connected && peers.has(link.id))
      .map((link) => link.id);
    if (!linked.includes(leader))
      return { caughtUp: false, detail: `store: no link to the leader ${leader}` };
    const behind = linked.filter((peer) => !replicator.syncProgress(peer).caughtUp);
    return { caughtUp: behind.length === 0, detail: `store: still catching up with ${behind.join(", ")}` };
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
    provides: { store: replicator },
  };
}
