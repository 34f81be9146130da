// Membership, health and leadership of one node: the failure detector and the election runner over the
// mesh, behind the Coordination interface.
import type { Logger } from "pino";
import type { ElectionConfig } from "../core/election_types.ts";
import type { NodeId } from "../core/types.ts";
import type { MeshApi } from "../mesh/index.ts";
import { SafeEmitter, type Ticker } from "../shell/index.ts";
import type { Coordination, CoordinationEventMap, LeadershipView } from "./coordination.ts";
import { ElectionRunner } from "./election_runner.ts";
import type { HardStateStore } from "./hard_state_store.ts";
import { HealthRunner } from "./health_runner.ts";

export type NodeRole = "member" | "witness";

export interface ClusterMember {
  id: NodeId;
  role: NodeRole;
  priority: number;
}

export interface ClusterTimings {
  tickMs: number;
  heartbeatIntervalMs: number;
  suspectAfterMissed: number;
  downAfterMs: number;
  electionTimeoutTicks: number;
  leaderHeartbeatTicks: number;
  leaseTicks: number;
}

export interface ClusterOptions {
  self: ClusterMember;
  peers: readonly ClusterMember[];
  timings: ClusterTimings;
  mesh: MeshApi;
  store: HardStateStore;
  logger: Logger;
  /** The agent's shared ticker; the runners make their own by default (tests). */
  ticker?: Ticker;
}

export interface PeerStatus {
  id: NodeId;
  address: string;
  role: NodeRole;
  priority: number;
  /** Failure detector verdict. */
  state: string;
  link: "up" | "down";
  rttMs: number | null;
  lastHeardMsAgo: number | null;
}

export interface ClusterStatus extends LeadershipView {
  nodeId: NodeId;
  nodeRole: NodeRole;
  priority: number;
  votedFor: NodeId | null;
  peers: PeerStatus[];
}

export function electionConfigFor(
  self: ClusterMember,
  peers: readonly ClusterMember[],
  t: ClusterTimings,
): ElectionConfig {
  const all = [self, ...peers];
  return {
    selfId: self.id,
    members: all.filter((m) => m.role === "member").map((m) => m.id),
    witnesses: all.filter((m) => m.role === "witness").map((m) => m.id),
    priorities: Object.fromEntries(all.map((m) => [m.id, m.priority])),
    electionTimeoutTicks: t.electionTimeoutTicks,
    heartbeatIntervalTicks: t.leaderHeartbeatTicks,
    leaseTicks: t.leaseTicks,
    preVote: true,
    checkQuorum: true,
  };
}

export class Cluster implements Coordination {
  private readonly options: ClusterOptions;
  private readonly election: ElectionRunner;
  private readonly health: HealthRunner;
  private readonly emitter: SafeEmitter<CoordinationEventMap>;

  constructor(options: ClusterOptions) {
    this.options = options;
    this.emitter = new SafeEmitter(options.logger);
    this.election = new ElectionRunner({
      config: electionConfigFor(options.self, options.peers, options.timings),
      store: options.store,
      mesh: options.mesh,
      logger: options.logger.child({ component: "election" }),
      tickMs: options.timings.tickMs,
      ...(options.ticker === undefined ? {} : { ticker: options.ticker }),
    });
    this.health = new HealthRunner({
      mesh: options.mesh,
      selfId: options.self.id,
      peers: options.peers.map((p) => p.id),
      timings: {
        tickMs: options.timings.tickMs,
        heartbeatIntervalMs: options.timings.heartbeatIntervalMs,
        suspectAfterMissed: options.timings.suspectAfterMissed,
        downAfterMs: options.timings.downAfterMs,
      },
      logger: options.logger.child({ component: "health" }),
      ...(options.ticker === undefined ? {} : { ticker: options.ticker }),
    });
    this.election.events.on("leader:changed", () => this.emitter.emit("leader:changed", this.leadership()));
    // A killed leader's sockets close at once: its followers need not wait out a random timeout.
    options.mesh.on("link:down", (peer) => this.election.peerDisconnected(peer));
    // A peer heard again after it was down may be reachable over a link stalled in TCP back-off (see
    // Mesh.renew): a fresh link carries the store's catch-up at once instead of after the keepalive.
    const downSinceMs = new Map<NodeId, number>();
    this.health.on("peer:down", ({ peer }) => downSinceMs.set(peer, Date.now()));
    this.health.on("peer:alive", ({ peer, from }) => {
      const since = downSinceMs.get(peer);
      if (from === "down" && since !== undefined) options.mesh.renew(peer, since);
    });
  }

  start(): void {
    this.health.start();
    this.election.start();
  }

  stop(): void {
    this.election.stop();
    this.health.stop();
  }

  on<E extends keyof CoordinationEventMap>(
    event: E,
    listener: (...args: CoordinationEventMap[E]) => void,
  ): () => void {
    return this.emitter.on(event, listener);
  }

  leadership(): LeadershipView {
    const s = this.election.status();
    return { leaderId: s.leaderId, term: s.term, role: s.role, leaseValid: s.leaseValid };
  }

  /** Graceful shutdown: hand leadership to the best live member so the cluster does not wait a timeout. */
  handOffLeadership(): NodeId | null {
    if (this.election.status().role !== "leader") return null;
    const alive = new Set(
      this.health
        .peers()
        .filter((p) => p.state === "alive")
        .map((p) => p.id),
    );
    const candidates = this.options.peers
      .filter((p) => p.role === "member" && alive.has(p.id))
      .sort((a, b) => b.priority - a.priority || a.id.localeCompare(b.id));
    const target = candidates[0];
    if (!target) return null;
    this.election.transferLeadership(target.id);
    return target.id;
  }

  status(): ClusterStatus {
    const election = this.election.status();
    const links = new Map(this.options.mesh.peers().map((p) => [p.id, p]));
    const health = new Map(this.health.peers().map((p) => [p.id, p]));
    const now = Date.now();
    return {
      nodeId: this.options.self.id,
      nodeRole: this.options.self.role,
      priority: this.options.self.priority,
      leaderId: election.leaderId,
      term: election.term,
      role: election.role,
      leaseValid: election.leaseValid,
      votedFor: election.votedFor,
      peers: this.options.peers.map((peer) => {
        const link = links.get(peer.id);
        const seen = health.get(peer.id);
        return {
          id: peer.id,
          address: link?.address ?? "",
          role: peer.role,
          priority: peer.priority,
          state: seen?.state ?? "unknown",
          link: link?.connected ? "up" : "down",
          rttMs: seen?.rttSmoothedMs ?? null,
          lastHeardMsAgo: seen?.lastHeardMs != null ? Math.max(0, now - seen.lastHeardMs) : null,
        };
      }),
    };
  }
}
