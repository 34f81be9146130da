// The composition root of `tandem agent`: the data-dir lock, the mesh, the cluster, then the capabilities
// in dependency order, then the API over all of them. Each part pushes its stop as it comes up, so a start
// that fails part-way and a shutdown both stop what runs, last started first. Owns nothing protocol-wise.
import { randomBytes } from "node:crypto";
import type { Server } from "node:http";
import { type Logger, pino } from "pino";
import {
  assertChannelsDisjoint,
  blobCapability,
  type JournalEmbedding,
  journalCapability,
  type PluggedCapability,
  type Provided,
  plug,
  provisionCapability,
  type RunningCapability,
  servicesCapability,
  storeCapability,
} from "../agent/index.ts";
import {
  ApiErrorCode,
  type ApiRouter,
  createApiRouter,
  eventsRoute,
  memberRoutes,
  sendError,
  startLocalApi,
  TokensFile,
} from "../api/index.ts";
import { Cluster, FileHardStateStore, grantLeaseMsDefault, requestJoin } from "../cluster/index.ts";
import type { TandemConfig } from "../config/index.ts";
import { loadMeshSecurity, toTicks } from "../config/index.ts";
import { Mesh, type MeshSecurity } from "../mesh/index.ts";
import { EventLog, ShutdownStack, Ticker } from "../shell/index.ts";
import { DataDirLock } from "./data_dir_lock.ts";
import { VERSION } from "./version.ts";

export interface RunningAgent {
  logger: Logger;
  mesh: Mesh;
  cluster: Cluster;
  /** The capabilities by name, in start order. */
  capabilities: ReadonlyMap<string, RunningCapability>;
  /** What the capabilities provide (the journal's recorder for an embedding app, src/sdk). */
  provided: Provided;
  localApi: Server | null;
  /** Graceful stop, in reverse order of start: API, capabilities, leadership hand-off, mesh, lock. */
  stop(): Promise<void>;
}

/**
 * The capabilities, in dependency order. Services without any configured start nothing (no idle cost); the
 * blob stores, the journal and provisioning run only with their sections.
 */
function capabilitiesOf(config: TandemConfig, options: AgentStartOptions): PluggedCapability[] {
  if (options.journal !== undefined && config.journal === null) {
    throw new Error(
      "the app passes the journal a database or handlers, but the config has no journal: section (docs/journal.md)",
    );
  }
  return [
    plug(storeCapability, config.store),
    plug(servicesCapability, {
      services: config.services,
      leaseMs: grantLeaseMsDefault,
      advertiseHost: config.advertise.host,
    }),
    // Before the journal: it gives the journal its offload step.
    ...(config.blob === null
      ? []
      : [plug(blobCapability, { ...config.blob, clusterName: config.clusterName, version: VERSION })]),
    ...(config.journal === null
      ? []
      : [
          plug(journalCapability, {
            ...config.journal,
            ...(options.journal === undefined ? {} : { embedding: options.journal }),
          }),
        ]),
    ...(config.provision === null ? [] : [plug(provisionCapability, config.provision)]),
  ];
}

export function agentLogger(config: TandemConfig): Logger {
  return pino({ level: config.log.level, base: { node: config.node.id } });
}

export interface AgentStartOptions {
  /** tandem agent --join ADDRESS: never bootstrap; ask the member at ADDRESS to add this node. */
  join?: string;
  /** An app embedding the agent (src/sdk): its database and in-process handlers for the journal. */
  journal?: JournalEmbedding;
}

export async function startAgent(
  config: TandemConfig,
  logger: Logger,
  options: AgentStartOptions = {},
): Promise<RunningAgent> {
  const stack = new ShutdownStack(logger);
  try {
    return await compose(config, logger, stack, options);
  } catch (error) {
    await stack.unwind();
    throw error;
  }
}

async function compose(
  config: TandemConfig,
  logger: Logger,
  stack: ShutdownStack,
  options: AgentStartOptions,
): Promise<RunningAgent> {
  const plugged = capabilitiesOf(config, options);
  const lock = new DataDirLock(config.dataDir);
  lock.acquire();
  stack.push("data-dir lock", () => lock.release());
  const security = await meshSecurity(config, logger);
  const ticker = new Ticker();
  const events = new EventLog(config.node.id);
  // The TLS port serves the API too; until the router exists, and once the agent stops, it answers 503.
  let router: ApiRouter = unavailable("the agent is starting");
  // The cluster decides who may link and what the hello announces; until it exists, only configured peers.
  let cluster: Cluster | null = null;
  const mesh = await Mesh.start({
    selfId: config.node.id,
    clusterName: config.clusterName,
    listenHost: config.listen.host,
    listenPort: config.listen.port,
    peers: config.peers.map((p) => ({ id: p.id, address: hostPort(p.address) })),
    security,
    logger: logger.child({ component: "mesh" }),
    httpHandler: (req, res, identity) => router(req, res, identity),
    admitUnknown: (id, announced) => cluster?.admits(id, announced) ?? false,
    membership: () => cluster?.membershipSummary(),
    ticker,
  });
  stack.push("mesh", () => mesh.close());
  const running = startCluster(config, mesh, ticker, logger, options.join !== undefined);
  running.on("leader:changed", (view) => events.emit("leader", { leader: view.leaderId, term: view.term }));
  cluster = running;
  stack.push("cluster", () => stopCluster(running, logger));

  const held = running.members().filter((m) => m.id !== config.node.id);
  const base = {
    nodeId: config.node.id,
    // The held membership once there is one; the configured peers while bootstrapping; none while joining.
    peers:
      running.members().length > 0
        ? held.map((m) => m.id)
        : options.join !== undefined
          ? []
          : config.peers.map((p) => p.id),
    mesh,
    coordination: running,
    logger,
    dataDir: config.dataDir,
    ticker,
    events,
    provided: {},
  };
  const capabilities = new Map<string, RunningCapability>();
  for (const capability of plugged) {
    const running = await capability.start(base);
    stack.push(capability.name, () => running.stop());
    capabilities.set(capability.name, running);
    base.provided = { ...base.provided, ...running.provides };
  }
  assertChannelsDisjoint([...capabilities].map(([name, running]) => ({ name, channels: running.channels })));

  router = apiRouter(config, running, capabilities, events, logger);
  stack.push("api router", () => {
    router = unavailable("the agent is stopping");
  });
  const localApi = config.api.listen
    ? await startLocalApi(config.api.listen.host, config.api.listen.port, (req, res, identity) =>
        router(req, res, identity),
      )
    : null;
  if (localApi !== null) stack.push("local api", () => closeServer(localApi));

  if (options.join !== undefined) {
    const stopJoining = requestJoin({
      mesh,
      target: options.join,
      self: { address: hostPort(config.advertise), role: config.node.role, priority: config.node.priority },
      logger: logger.child({ component: "membership" }),
      stillJoining: () => running.status().membership.standing === "joining",
    });
    stack.push("join request", stopJoining);
  }

  const meshAddress = mesh.address();
  logger.info(
    {
      version: VERSION,
      mesh: `${meshAddress.host}:${meshAddress.port}`,
      api: config.api.listen ? `http://${config.api.listen.host}:${config.api.listen.port}` : null,
      security: config.security.mode,
      peers: config.peers.length,
      capabilities: [...capabilities.keys()],
    },
    "agent started",
  );
  return {
    logger,
    mesh,
    cluster: running,
    capabilities,
    provided: base.provided,
    localApi,
    async stop() {
      await stack.unwind();
      logger.info("agent stopped");
    },
  };
}

async function meshSecurity(config: TandemConfig, logger: Logger): Promise<MeshSecurity> {
  const loaded = await loadMeshSecurity(config);
  if (!loaded.ok) throw loaded.error;
  for (const warning of loaded.value.warnings) logger.warn({ warning }, "security configuration warning");
  return loaded.value.security;
}

function startCluster(
  config: TandemConfig,
  mesh: Mesh,
  ticker: Ticker,
  logger: Logger,
  join: boolean,
): Cluster {
  const ticks = toTicks(config.timings);
  const cluster = new Cluster({
    self: {
      id: config.node.id,
      role: config.node.role,
      priority: config.node.priority,
      address: hostPort(config.advertise),
    },
    peers: config.peers.map((p) => ({
      id: p.id,
      role: p.role,
      priority: p.priority,
      address: hostPort(p.address),
    })),
    join,
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
    store: new FileHardStateStore(config.dataDir),
    logger,
    ticker,
  });
  cluster.on("leader:changed", (view) =>
    logger.info({ leader: view.leaderId, term: view.term }, "leader changed"),
  );
  cluster.start();
  return cluster;
}

/** A leader hands off first, so the cluster does not wait out an election timeout. */
async function stopCluster(cluster: Cluster, logger: Logger): Promise<void> {
  const successor = cluster.handOffLeadership();
  if (successor) {
    logger.info({ successor }, "handing leadership off before shutdown");
    await waitUntil(() => cluster.leadership().role !== "leader", 1_000);
  }
  cluster.stop();
}

function apiRouter(
  config: TandemConfig,
  cluster: Cluster,
  capabilities: ReadonlyMap<string, RunningCapability>,
  events: EventLog,
  logger: Logger,
): ApiRouter {
  const apiLogger = logger.child({ component: "api" });
  const bootId = randomBytes(8).toString("hex");
  const startedAtMs = Date.now();
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
    ...Object.fromEntries([...capabilities].map(([name, running]) => [name, running.status()])),
  });
  // Bearer tokens: re-read when the file changes; a malformed file admits no token until it is fixed.
  const tokens =
    config.api.tokensFile === null
      ? undefined
      : new TokensFile(config.api.tokensFile, (error) =>
          apiLogger.warn({ problem: error.message }, "tokens file unusable: no bearer token is admitted"),
        );
  return createApiRouter({
    nodeId: config.node.id,
    status,
    acl: config.acl,
    logger: apiLogger,
    inflightMax: config.api.inflightMax,
    ...(tokens === undefined ? {} : { tokens }),
    routes: [
      ...memberRoutes(cluster, { logger: apiLogger }),
      eventsRoute(events),
      ...[...capabilities.values()].flatMap((running) => running.routes),
    ],
  });
}

/** host:port as peers dial it (IPv6 in brackets); the same string in the mesh and the membership. */
function hostPort(a: { host: string; port: number }): string {
  return `${a.host.includes(":") ? `[${a.host}]` : a.host}:${a.port}`;
}

function unavailable(message: string): ApiRouter {
  return (_req, res) => sendError(res, ApiErrorCode.Unavailable, message);
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
