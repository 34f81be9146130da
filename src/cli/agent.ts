// The composition root of `tandem agent`: config → mesh → cluster → store → API. Owns nothing
// protocol-wise.
import { randomBytes } from "node:crypto";
import type { Server } from "node:http";
import { join } from "node:path";
import { type Logger, pino } from "pino";
import { ApiErrorCode, type ApiRouter, createApiRouter, sendError, startLocalApi } from "../api/index.ts";
import { storeRoutes } from "../api/store_routes.ts";
import { TokensFile } from "../api/tokens.ts";
import { Cluster, FileHardStateStore } from "../cluster/index.ts";
import type { TandemConfig } from "../config/index.ts";
import { loadMeshSecurity, toTicks } from "../config/index.ts";
import { Mesh } from "../mesh/index.ts";
import { MaterialiseFeed, Materialiser, Replicator, SqliteLocalStore } from "../store/index.ts";
import { DataDirLock } from "./data_dir_lock.ts";
import { VERSION } from "./version.ts";

/** Tombstones past the horizon are collected this often. */
const TOMBSTONE_SWEEP_MS = 3_600_000;

export interface RunningAgent {
  logger: Logger;
  mesh: Mesh;
  cluster: Cluster;
  store: Replicator;
  localApi: Server | null;
  /** Graceful stop: hand off leadership, stop timers, close links, listeners and the database. */
  stop(): Promise<void>;
}

export function agentLogger(config: TandemConfig): Logger {
  return pino({ level: config.log.level, base: { node: config.node.id } });
}

export async function startAgent(config: TandemConfig, logger: Logger): Promise<RunningAgent> {
  const lock = new DataDirLock(config.dataDir);
  const hardState = new FileHardStateStore(config.dataDir);
  lock.acquire();
  const loadedSecurity = await loadMeshSecurity(config);
  if (!loadedSecurity.ok) throw loadedSecurity.error;
  const { security, warnings } = loadedSecurity.value;
  for (const warning of warnings) logger.warn({ warning }, "security configuration warning");
  const bootId = randomBytes(8).toString("hex");
  const startedAtMs = Date.now();

  // The TLS port serves the API too; until everything below exists it answers 503.
  let router: ApiRouter = (_req, res) => sendError(res, ApiErrorCode.Unavailable, "the agent is starting");
  const mesh = await Mesh.start({
    selfId: config.node.id,
    clusterName: config.clusterName,
    listenHost: config.listen.host,
    listenPort: config.listen.port,
    peers: config.peers.map((p) => ({ id: p.id, address: `${p.address.host}:${p.address.port}` })),
    security,
    logger: logger.child({ component: "mesh" }),
    httpHandler: (req, res, identity) => router(req, res, identity),
  });

  const ticks = toTicks(config.timings);
  const cluster = new Cluster({
    self: { id: config.node.id, role: config.node.role, priority: config.node.priority },
    peers: config.peers.map((p) => ({ id: p.id, role: p.role, priority: p.priority })),
    timings: {
      tickMs: config.timings.tickMs,
      heartbeatIntervalMs: config.timings.heartbeatIntervalMs,
      suspectAfterMissed: config.timings.suspectAfterMissed,
      downAfterMs: config.timings.downAfterMs,
      electionTimeoutTicks: ticks.electionTimeoutTicks,
      leaderHeartbeatTicks: ticks.leaderHeartbeatTicks,
      leaseTicks: ticks.leaseTicks,
    },
    mesh,
    store: hardState,
    logger,
  });
  cluster.on("leader:changed", (view) =>
    logger.info({ leader: view.leaderId, term: view.term }, "leader changed"),
  );

  const storeLogger = logger.child({ component: "store" });
  const localStore = SqliteLocalStore.open({
    path: join(config.dataDir, "store.db"),
    nodeId: config.node.id,
    valueBytesMax: config.store.valueBytesMax,
  });
  const store = new Replicator({
    selfId: config.node.id,
    peers: config.peers.map((p) => p.id),
    readOnly: config.store.readOnly,
    store: localStore,
    mesh,
    logger: storeLogger,
    writeTimeoutMs: config.store.writeTimeoutMs,
    antiEntropyIntervalMs: config.store.antiEntropyIntervalMs,
    valueBytesMax: config.store.valueBytesMax,
  });
  const tombstoneSweep = setInterval(() => {
    const collected = localStore.collectTombstones(Date.now() - config.store.tombstoneHorizonMs);
    if (collected > 0) storeLogger.info({ collected }, "collected tombstones past the horizon");
  }, TOMBSTONE_SWEEP_MS);
  tombstoneSweep.unref();

  const status = () => ({
    node: {
      id: config.node.id,
      role: config.node.role,
      priority: config.node.priority,
      cluster: config.clusterName,
      address: `${config.advertise.host}:${config.advertise.port}`,
      version: VERSION,
      bootId,
      startedAt: new Date(startedAtMs).toISOString(),
      uptimeMs: Date.now() - startedAtMs,
    },
    ...cluster.status(),
    store: { readOnly: config.store.readOnly, lastSeq: store.lastSeq(), sync: store.status() },
  });
  const apiLogger = logger.child({ component: "api" });
  // Bearer tokens: re-read when the file changes; a malformed file admits no token until it is fixed.
  const tokens =
    config.api.tokensFile === null
      ? undefined
      : new TokensFile(config.api.tokensFile, (error) =>
          apiLogger.warn({ problem: error.message }, "tokens file unusable: no bearer token is admitted"),
        );
  router = createApiRouter({
    nodeId: config.node.id,
    status,
    acl: config.acl,
    logger: apiLogger,
    inflightMax: config.store.inflightMax,
    ...(tokens === undefined ? {} : { tokens }),
    routes: storeRoutes(store, {
      nodeId: config.node.id,
      logger: storeLogger,
      minAcksDefault: config.store.minAcks,
      valueBytesMax: config.store.valueBytesMax,
      writeTimeoutMs: config.store.writeTimeoutMs,
    }),
  });
  cluster.start();
  store.start();
  const materialise = config.store.materialise;
  const materialiser = materialise
    ? await Materialiser.open({ ...materialise, logger: storeLogger.child({ component: "materialiser" }) })
    : null;
  const feed = materialiser ? new MaterialiseFeed(store, materialiser, { logger: storeLogger }) : null;
  await feed?.start();

  const localApi = config.api.listen
    ? await startLocalApi(config.api.listen.host, config.api.listen.port, router)
    : null;
  const meshAddress = mesh.address();
  logger.info(
    {
      version: VERSION,
      mesh: `${meshAddress.host}:${meshAddress.port}`,
      api: config.api.listen ? `http://${config.api.listen.host}:${config.api.listen.port}` : null,
      security: config.security.mode,
      peers: config.peers.length,
    },
    "agent started",
  );

  return {
    logger,
    mesh,
    cluster,
    store,
    localApi,
    async stop() {
      const successor = cluster.handOffLeadership();
      if (successor) {
        logger.info({ successor }, "handing leadership off before shutdown");
        await waitUntil(() => cluster.leadership().role !== "leader", 1_000);
      }
      cluster.stop();
      feed?.stop();
      await materialiser?.close();
      store.stop();
      clearInterval(tombstoneSweep);
      await Promise.all([mesh.close(), localApi ? closeServer(localApi) : Promise.resolve()]);
      localStore.close();
      lock.release();
      logger.info("agent stopped");
    },
  };
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
