// The one way a capability plugs into the agent (DESIGN.md, Layout): it takes its config section and
// what it stands on, and gives back its API routes, its mesh channels, its status section and a stop.
// Store is the first; services, journal, blob and backup, provisioning and the dashboard follow.
import type { Logger } from "pino";
import type { ApiRoute } from "../api/index.ts";
import type { DatabaseDumps } from "../blob/index.ts";
import type { Coordination } from "../cluster/index.ts";
import type { NodeId } from "../core/types.ts";
import type { JournalNode, PostStep } from "../journal/index.ts";
import type { MeshApi } from "../mesh/index.ts";
import type { EventLog, Ticker } from "../shell/index.ts";
import type { Replicator } from "../store/index.ts";

/** The replicated store as other capabilities use it: read entries, write with acknowledgements. */
export type ReplicatedStore = Pick<Replicator, "get" | "list" | "write">;

/** What a capability offers those started after it; the agent gathers it into CapabilityBase.provided. */
export interface Provided {
  /** The store capability's replicated store. */
  store?: ReplicatedStore;
  /** Post-execution steps the journal runs for its shipped entries (the blob capability's offload). */
  postSteps?: readonly PostStep[];
  /** The blob capability's backups, which back up databases once provisioning hands them its dumps. */
  backups?: { useDatabaseDumps(dumps: DatabaseDumps): void };
  /** The journal capability's recorder: what an embedding app records with (src/sdk). */
  journal?: Pick<JournalNode, "record" | "recordNow" | "status">;
}

/** What every capability stands on; the agent owns all of it and outlives every capability. */
export interface CapabilityBase {
  nodeId: NodeId;
  /** Every other node of the cluster. */
  peers: readonly NodeId[];
  mesh: MeshApi;
  coordination: Coordination;
  /** The agent's logger (node id bound); a capability's children name their component, e.g. "store". */
  logger: Logger;
  dataDir: string;
  /** The agent's one timer: subscribe with ticker.every(periodMs, onTicks). */
  ticker: Ticker;
  /** What operators see at GET /api/v1/events: a capability records what it decided and did. */
  events: EventLog;
  /** What the capabilities started before this one provide (the list's order is the dependency order). */
  provided: Provided;
}

/** The replicated store for `capability` (as the error names it), which must start after the store. */
export function requireStore(base: CapabilityBase, capability: string): ReplicatedStore {
  const store = base.provided.store;
  if (store === undefined) throw new Error(`${capability} needs the replicated store, started before it`);
  return store;
}

export interface RunningCapability {
  routes: readonly ApiRoute[];
  /** Mesh channels it listens on; no two capabilities share one. */
  channels: readonly string[];
  /** Its section of GET /api/v1/status, under its name. */
  status(): unknown;
  /** Unsubscribes from the mesh and the ticker, closes its files. Called once, in reverse start order. */
  stop(): Promise<void>;
  /** What it offers the capabilities after it. */
  provides?: Provided;
}

export interface Capability<Config> {
  /** Its status key and log component. */
  readonly name: string;
  /** Starts it. A start that fails has stopped whatever it started itself before it throws. */
  start(config: Config, base: CapabilityBase): Promise<RunningCapability>;
}

/** A capability bound to its config section: what the agent's list holds. */
export interface PluggedCapability {
  readonly name: string;
  start(base: CapabilityBase): Promise<RunningCapability>;
}

export function plug<Config>(capability: Capability<Config>, config: Config): PluggedCapability {
  return { name: capability.name, start: (base) => capability.start(config, base) };
}

/** Two capabilities on one channel would each see the other's messages: a bug of the composition. */
export function assertChannelsDisjoint(
  running: ReadonlyArray<{ name: string; channels: readonly string[] }>,
): void {
  const owner = new Map<string, string>();
  for (const { name, channels } of running) {
    for (const channel of channels) {
      const first = owner.get(channel);
      if (first !== undefined) throw new Error(`mesh channel ${channel} claimed by ${first} and ${name}`);
      owner.set(channel, name);
    }
  }
}
