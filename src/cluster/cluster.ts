// Membership, health and leadership of one node: the failure detector, the election runner and the
// membership manager over the mesh, behind the Coordination interface.
import type { Logger } from "pino";
import type { ElectionConfig, MembershipStatus } from "../core/election_types.ts";
import type { Grant } from "../core/grants.ts";
import type { MemberSpec, MembershipChange, MembershipSummary } from "../core/membership.ts";
import type { NodeId } from "../core/types.ts";
import type { MeshApi } from "../mesh/index.ts";
import { SafeEmitter, Ticker } from "../shell/index.ts";
import type {
  CatchUpCheck,
  Coordination,
  CoordinationEventMap,
  FenceCheck,
  GrantAsk,
  HeldGrant,
  LeadershipView,
  MemberLiveness,
} from "./coordination.ts";
import { ElectionRunner } from "./election_runner.ts";
import { GrantService } from "./grant_service.ts";
import type { HardStateStore } from "./hard_state_store.ts";
import { HealthRunner } from "./health_runner.ts";
import { configDrift } from "./membership_drift.ts";
import { MembershipManager } from "./membership_manager.ts";
import type { ChangeOutcome } from "./membership_wire.ts";

export type NodeRole = "member" | "witness";

export interface ClusterMember {
  id: NodeId;
  role: NodeRole;
  priority: number;
  /** host:port the others dial ("" when unknown: tests). */
  address?: string;
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

/**
 * The leader answers grant requests only within this many ticks of sending a heartbeat a quorum
 * acknowledged: one heartbeat interval and two ticks (a round trip, a late timer), at most the lease. A new
 * leader's inherited window counts this instead of the whole lease (src/core/grants.ts); an answer that
 * finds the last acknowledged heartbeat older waits for a heartbeat round instead.
 */
export function grantAnswerWindowTicks(
  t: Pick<ClusterTimings, "leaderHeartbeatTicks" | "leaseTicks">,
): number {
  return Math.min(t.leaseTicks, t.leaderHeartbeatTicks + 2);
}

export interface ClusterOptions {
  self: ClusterMember;
  /** The configured peers: they bootstrap a brand-new cluster only; afterwards the held membership rules. */
  peers: readonly ClusterMember[];
  /** Never bootstrap: wait for a leader whose membership lists this node (tandem agent --join). */
  join?: boolean;
  timings: ClusterTimings;
  mesh: MeshApi;
  store: HardStateStore;
  logger: Logger;
  /** The agent's shared ticker; the runners make their own by default (tests). */
  ticker?: Ticker;
  /** How long a service grant or its renewal lasts (default grantLeaseMsDefault). */
  grantLeaseMs?: number;
}

/**
 * A service's grant lasts 2 s: its owner renews it several times a second, and a partitioned owner stops
 * within 2 s, before the leader moves the service (failover_after_ms is at least the detector's down_after_ms
 * and 3 s by default; the leader also waits for the grant to lapse).
 */
export const grantLeaseMsDefault = 2_000;

export interface PeerStatus {
  id: NodeId;
  address: string;
  role: NodeRole;
  priority: number;
  /** False for a learner. */
  voting: boolean;
  /** The membership the peer announced at its latest link, if any. */
  membership: { version: number; hash: string } | null;
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
  membership: {
    standing: MembershipStatus["standing"];
    version: number;
    hash: string;
    committedVersion: number;
    pendingVersion: number | null;
    /** How tandem.yml's peers differ from the membership held; [] when they agree (or nothing is held). */
    configDrift: string[];
    /**
     * Peers that refuse this node's links because it is not in their membership: it was removed (perhaps
     * while it was down, so it never heard) and should be stopped or added again.
     */
    refusedBy: { peer: NodeId; reason: string }[];
  };
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
    addresses: Object.fromEntries(all.map((m) => [m.id, m.address ?? ""])),
    electionTimeoutTicks: t.electionTimeoutTicks,
    heartbeatIntervalTicks: t.leaderHeartbeatTicks,
    leaseTicks: t.leaseTicks,
    preVote: true,
    checkQuorum: true,
  };
}

/** How a peer's mesh refuses a node outside its membership (src/mesh/handshake.ts, notMemberReason). */
const notMemberRefusal = /is not a member/;

export class Cluster implements Coordination {
  private readonly options: ClusterOptions;
  private readonly election: ElectionRunner;
  private readonly health: HealthRunner;
  private readonly membershipManager: MembershipManager;
  private readonly grantService: GrantService;
  private readonly emitter: SafeEmitter<CoordinationEventMap>;

  constructor(options: ClusterOptions) {
    this.options = options;
    this.emitter = new SafeEmitter(options.logger);
    const ticker = options.ticker ?? new Ticker();
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
      ticker,
    });
    this.election = new ElectionRunner({
      config: {
        ...electionConfigFor(options.self, options.peers, options.timings),
        join: options.join === true,
      },
      store: options.store,
      mesh: options.mesh,
      logger: options.logger.child({ component: "election" }),
      tickMs: options.timings.tickMs,
      ticker,
      // The leader's heartbeats vouch for the peers it hears, so followers need not ping each other.
      vouches: this.health,
    });
    this.membershipManager = new MembershipManager({
      selfId: options.self.id,
      election: this.election,
      health: this.health,
      mesh: options.mesh,
      logger: options.logger.child({ component: "membership" }),
      ticker,
      handOff: () => this.handOffLeadership(),
    });
    const answerWindowTicks = grantAnswerWindowTicks(options.timings);
    this.grantService = new GrantService({
      selfId: options.self.id,
      mesh: options.mesh,
      leadership: () => this.leadership(),
      leaseMs: options.grantLeaseMs ?? grantLeaseMsDefault,
      logger: options.logger.child({ component: "grants" }),
      // The votes bound how long an earlier leader's grants may run (src/core/grants.ts).
      election: {
        answerWindowMs: answerWindowTicks * options.timings.tickMs,
        fresh: () => this.election.leaseFresherThan(answerWindowTicks),
        freshen: (timeoutMs) => this.election.freshenLease(answerWindowTicks, timeoutMs),
        contactsWhenWon: (term) => this.election.contactsWhenWon(term),
        advertise: (tailMs) => this.election.setGrantTailMs(tailMs),
        acknowledgedTailMs: () => this.election.acknowledgedGrantTailMs(),
        tailAcknowledged: (tailMs, timeoutMs) => this.election.grantTailAcknowledged(tailMs, timeoutMs),
      },
    });
    this.reportConfigDrift();
    this.election.events.on("leader:changed", () => {
      const view = this.leadership();
      this.grantService.leadershipChanged(view);
      this.emitter.emit("leader:changed", view);
    });
    this.election.events.on("membership:changed", (status) =>
      this.emitter.emit("members:changed", status.config?.nodes ?? []),
    );
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
    this.membershipManager.start();
    this.health.start();
    this.election.start();
  }

  stop(): void {
    this.grantService.stop();
    this.membershipManager.stop();
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

  /** The membership this node holds (empty before bootstrap or join). */
  members(): readonly MemberSpec[] {
    return this.election.membership().config?.nodes ?? [];
  }

  addCatchUpCheck(check: CatchUpCheck): void {
    this.membershipManager.addCatchUpCheck(check);
  }

  memberLiveness(): MemberLiveness[] {
    const health = new Map(this.health.peers().map((p) => [p.id, p]));
    const now = Date.now();
    return this.members().map(({ id }) => {
      const seen = health.get(id);
      if (id === this.options.self.id || seen?.state === "alive") return { id, unreachableMs: 0 };
      const lastHeardMs = seen?.lastHeardMs ?? null;
      return { id, unreachableMs: lastHeardMs === null ? Number.POSITIVE_INFINITY : now - lastHeardMs };
    });
  }

  async assignService(service: string, owner: NodeId | null): Promise<void> {
    this.grantService.assign(service, owner);
  }

  grants(): readonly Grant[] {
    return this.grantService.grants();
  }

  acquireGrant(service: string, ask: GrantAsk = {}): Promise<HeldGrant> {
    return this.grantService.acquire(service, ask);
  }

  releaseGrant(grant: Grant): Promise<void> {
    return this.grantService.release(grant);
  }

  checkFence(held: HeldGrant): FenceCheck {
    return this.grantService.checkFence(held);
  }

  /** For the mesh: which nodes outside the list may link, and what this node announces in its hello. */
  admits(id: NodeId, announced: { version: number; hash: string } | undefined): boolean {
    return this.membershipManager.admits(id, announced);
  }

  membershipSummary(): MembershipSummary {
    return this.membershipManager.summary();
  }

  /**
   * One membership change, made by the leader wherever it is asked, answered once a quorum holds it. A
   * leader asked to remove or demote itself hands leadership to the best live member, which makes it.
   */
  changeMembership(change: MembershipChange, force = false): Promise<ChangeOutcome> {
    return this.membershipManager.change(change, force);
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
    const candidates = this.members()
      .filter((p) => p.id !== this.options.self.id && p.role === "member" && p.voting && alive.has(p.id))
      .sort((a, b) => b.priority - a.priority || a.id.localeCompare(b.id));
    const target = candidates[0];
    if (!target) return null;
    this.election.transferLeadership(target.id);
    return target.id;
  }

  status(): ClusterStatus {
    const election = this.election.status();
    const membership = election.membership;
    const links = new Map(this.options.mesh.peers().map((p) => [p.id, p]));
    const health = new Map(this.health.peers().map((p) => [p.id, p]));
    const now = Date.now();
    const self = membership.config?.nodes.find((n) => n.id === this.options.self.id);
    const listed: readonly (MemberSpec | ClusterMember)[] =
      membership.config?.nodes.filter((n) => n.id !== this.options.self.id) ?? this.options.peers;
    return {
      nodeId: this.options.self.id,
      nodeRole: self?.role ?? this.options.self.role,
      priority: self?.priority ?? this.options.self.priority,
      leaderId: election.leaderId,
      term: election.term,
      role: election.role,
      leaseValid: election.leaseValid,
      votedFor: election.votedFor,
      membership: {
        standing: membership.standing,
        version: membership.summary.version,
        hash: membership.summary.hash,
        committedVersion: membership.committedVersion,
        pendingVersion: membership.pendingVersion,
        configDrift:
          membership.config === null
            ? []
            : configDrift(
                [this.options.self, ...this.options.peers],
                membership.config,
                this.options.self.id,
              ),
        refusedBy: [...links.values()]
          .filter(
            (link) => !link.connected && link.lastError !== null && notMemberRefusal.test(link.lastError),
          )
          .map((link) => ({ peer: link.id, reason: link.lastError as string })),
      },
      peers: listed.map((peer) => {
        const link = links.get(peer.id);
        const seen = health.get(peer.id);
        return {
          id: peer.id,
          address: link?.address || peer.address || "",
          role: peer.role,
          priority: peer.priority,
          voting: "voting" in peer ? peer.voting : true,
          membership: link?.membership ?? null,
          state: seen?.state ?? "unknown",
          link: link?.connected ? "up" : "down",
          rttMs: seen?.rttSmoothedMs ?? null,
          lastHeardMsAgo: seen?.lastHeardMs != null ? Math.max(0, now - seen.lastHeardMs) : null,
        };
      }),
    };
  }

  /** tandem.yml's peers only bootstrap: once a membership is held, say how the file differs from it. */
  private reportConfigDrift(): void {
    const config = this.election.membership().config;
    if (config === null) return;
    const drift = configDrift([this.options.self, ...this.options.peers], config, this.options.self.id);
    if (drift.length > 0) {
      this.options.logger.warn(
        { membershipVersion: config.version, differences: drift },
        "tandem.yml's peers differ from the cluster's membership, which rules: the file only bootstraps a new cluster (change members with tandem member)",
      );
    }
  }
}
