// Provisioning's start (src/agent/provision_capability.ts loads it): an engine and a provisioner per
// target, passes run by the leader on the agent's ticker and when leadership arrives, each pass's status
// written to the replicated store (every node serves it), and the /api/v1/provision routes.
import { provisionRoutes } from "../api/index.ts";
import type { ProvisionConfig, ProvisionServerConfig, ProvisionTargetConfig } from "../config/index.ts";
import { PostgresEngine, Provisioner, type TargetStatus } from "../provision/index.ts";
import { readSecretFrom } from "../shell/index.ts";
import { type CapabilityBase, type RunningCapability, requireStore } from "./capability.ts";

/** Where in the replicated store each target's last pass is kept, and its released databases. */
export const PROVISION_STATUS_PREFIX = "tandem/provision";
export const PROVISION_RELEASED_PREFIX = "tandem/provision-released";

export async function startProvision(
  config: ProvisionConfig,
  base: CapabilityBase,
): Promise<RunningCapability> {
  const logger = base.logger.child({ component: "provision" });
  const store = requireStore(base, "provisioning");
  const provisioners = new Map<string, Provisioner>();
  const engines: PostgresEngine[] = [];
  try {
    for (const target of config.targets) {
      const targetLogger = logger.child({ target: target.name });
      const engine = await engineOf(target, targetLogger);
      engines.push(engine);
      provisioners.set(
        target.name,
        new Provisioner({
          nodeId: base.nodeId,
          target,
          engine,
          leadership: () => base.coordination.leadership(),
          released: {
            has: (database) => {
              const entry = store.get(`${PROVISION_RELEASED_PREFIX}/${target.name}/${database}`);
              return entry !== null && !entry.deleted;
            },
            add: async (database) => {
              const path = `${PROVISION_RELEASED_PREFIX}/${target.name}/${database}`;
              // Every member that is up holds it before a slot goes, so whichever of them leads next skips
              // the database; one that is down learns it from its peers when it returns (leading before
              // that, it would subscribe again: release again, and drop the database on the primary soon).
              const live = base.coordination
                .memberLiveness()
                .filter((m) => m.id !== base.nodeId && m.unreachableMs === 0).length;
              const value = new TextEncoder().encode(new Date().toISOString());
              const outcome = await store.write([{ path, value }], { minAcks: live });
              if (!outcome.acked)
                throw new Error("the members that are up did not all acknowledge the release: retry");
            },
          },
          followerPassword: () =>
            readSecretFrom(target.follower.password, `provision.targets.${target.name}.follower.password`),
          every: (periodMs, onTick) => base.ticker.every(periodMs, onTick),
          publish: async (status: TargetStatus) => {
            const value = new TextEncoder().encode(JSON.stringify(status));
            await store.write([{ path: `${PROVISION_STATUS_PREFIX}/${target.name}`, value }], { minAcks: 0 });
          },
          logger: targetLogger,
          onEvent: (fields) => base.events.emit("provision", fields),
        }),
      );
    }
  } catch (error) {
    await Promise.allSettled([...provisioners.values()].map((p) => p.stop()));
    throw error;
  }
  for (const provisioner of provisioners.values()) provisioner.start();
  // Database backups (blob.backups) dump through the engine of the target that has the database.
  base.provided.backups?.useDatabaseDumps({
    databases: async () => (await Promise.all(engines.map((e) => e.databases()))).flat().map((d) => d.name),
    dump: async (database) => {
      for (const engine of engines) {
        if ((await engine.databases()).some((d) => d.name === database)) return engine.dump(database);
      }
      throw new Error(`no provisioning target has a database ${database}`);
    },
  });
  const unfollow = base.coordination.on("leader:changed", (view) => {
    if (view.leaderId === base.nodeId) for (const provisioner of provisioners.values()) provisioner.wake();
  });
  logger.info({ targets: [...provisioners.keys()] }, "provisioning ready (passes run on the leader)");
  const statuses = () =>
    config.targets.map((target) => {
      const entry = store.get(`${PROVISION_STATUS_PREFIX}/${target.name}`);
      if (entry === null || entry.deleted) return { target: target.name, passed: false };
      return { passed: true, ...(JSON.parse(new TextDecoder().decode(entry.value)) as TargetStatus) };
    });
  return {
    routes: provisionRoutes({
      statuses,
      provisioner: (name) => provisioners.get(name),
      leader: () => base.coordination.leadership().leaderId,
    }),
    channels: [],
    status: () => ({ targets: config.targets.map((t) => t.name) }),
    async stop() {
      unfollow();
      await Promise.allSettled([...provisioners.values()].map((p) => p.stop()));
    },
  };
}

async function engineOf(
  target: ProvisionTargetConfig,
  logger: CapabilityBase["logger"],
): Promise<PostgresEngine> {
  const server = async (s: ProvisionServerConfig, label: string) => {
    const password = s.password === null ? undefined : await readSecretFrom(s.password, label);
    return { url: s.url, ...(password === undefined ? {} : { password }) };
  };
  const at = `provision.targets.${target.name}`;
  return new PostgresEngine({
    primary: { name: "primary", ...(await server(target.primary, `${at}.primary.password`)) },
    replicas: await Promise.all(
      target.replicas.map(async (r) => ({
        name: r.name,
        ...(await server(r, `${at}.replicas.${r.name}.password`)),
      })),
    ),
    include: target.include,
    exclude: target.exclude,
    follower: {
      role: target.follower.role,
      password: await readSecretFrom(target.follower.password, `${at}.follower.password`),
    },
    logger,
  });
}
