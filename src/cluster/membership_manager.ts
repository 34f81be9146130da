// The shell around the election core's membership: it makes the mesh and the failure detector follow the
// list this node holds, decides which unknown nodes may link, carries changes to the leader (from the API,
// from any node, from a joining node), waits for them to commit, refuses the unsafe ones, and on the
// leader promotes learners once every capability says they have caught up.
import type { Logger } from "pino";
import type { MembershipStatus } from "../core/election_types.ts";
import {
  demotedFromLeading,
  findMember,
  type MemberSpec,
  type MembershipChange,
  type MembershipSummary,
  noMembershipHash,
  voterIds,
} from "../core/membership.ts";
import { quorumSize } from "../core/quorum.ts";
import type { NodeId } from "../core/types.ts";
import { decodeJsonPayload, encodeJsonPayload, type MeshApi } from "../mesh/index.ts";
import type { MonotonicTicker, Ticker } from "../shell/index.ts";
import type { CatchUpCheck } from "./coordination.ts";
import type { ElectionRunner } from "./election_runner.ts";
import type { HealthRunner } from "./health_runner.ts";
import {
  type CatchUpAnswer,
  type ChangeOutcome,
  catchUpSchema,
  changeOutcomeSchema,
  MEMBERSHIP_CHANNEL,
  type MembershipRequest,
  membershipRequestSchema,
} from "./membership_wire.ts";

export interface MembershipManagerOptions {
  selfId: NodeId;
  election: ElectionRunner;
  health: HealthRunner;
  mesh: MeshApi;
  logger: Logger;
  ticker: Ticker;
  /** Hands leadership to the best live member (a leader asked to remove or demote itself); its id or null. */
  handOff: () => NodeId | null;
  /** How long a change may take to be held by a quorum before the caller hears "uncertain". */
  commitTimeoutMs?: number;
}

/** The leader asks learners this often whether they caught up (only while a learner waits for promotion). */
const promoteCheckMs = 250;
const catchUpAnswerTimeoutMs = 2_000;
const defaultCommitTimeoutMs = 10_000;
const forwardTimeoutMs = 15_000;
/** A leader that hands off before removing itself waits this long for a successor. */
const handOffTimeoutMs = 5_000;
/**
 * A node just removed keeps its link this long: the answer to its own request and the heartbeat that tells
 * it of its removal are on their way over it.
 */
const departureGraceMs = 3_000;

export class MembershipManager {
  private readonly options: MembershipManagerOptions;
  private readonly logger: Logger;
  private readonly checks: CatchUpCheck[] = [];
  private readonly promoteTimer: MonotonicTicker;
  private promoting = false;
  private applied: MembershipStatus["config"] | undefined = undefined;
  private appliedStanding: MembershipStatus["standing"] | null = null;
  /** Nodes removed from the list whose links are kept until the grace period ends. */
  private readonly departing = new Map<NodeId, { address: string; timer: NodeJS.Timeout }>();
  /** This node was removed: its links close once the grace period ends (its last answers are on them). */
  private removalTimer: NodeJS.Timeout | null = null;

  constructor(options: MembershipManagerOptions) {
    this.options = options;
    this.logger = options.logger;
    this.promoteTimer = options.ticker.every(promoteCheckMs, () => void this.promoteCaughtUpLearners());
    options.election.events.on("membership:changed", (status) => {
      this.follow(status);
      this.schedulePromotions();
    });
    options.election.events.on("role:changed", () => this.schedulePromotions());
    options.mesh.onRequest(MEMBERSHIP_CHANNEL, (from, payload) => this.answer(from, payload));
  }

  start(): void {
    this.follow(this.options.election.membership());
    this.schedulePromotions();
  }

  stop(): void {
    this.promoteTimer.stop();
    for (const { timer } of this.departing.values()) clearTimeout(timer);
    this.departing.clear();
    if (this.removalTimer !== null) clearTimeout(this.removalTimer);
    this.removalTimer = null;
  }

  status(): MembershipStatus {
    return this.options.election.membership();
  }

  /** Capabilities that must catch up before a learner votes (the store: its entries). */
  addCatchUpCheck(check: CatchUpCheck): void {
    this.checks.push(check);
  }

  /** What this node announces in its mesh hello. */
  summary(): MembershipSummary {
    return this.status().summary;
  }

  /**
   * Whether a node outside our list may link. Anyone while this node has no list (it waits for a leader
   * that lists it); afterwards a node asking to join (it announces no list), or one that holds a newer
   * list than ours (it may lead it, and we must hear its heartbeats to take it). Never after removal.
   */
  admits(id: NodeId, announced: { version: number; hash: string } | undefined): boolean {
    const status = this.status();
    if (status.standing === "joining" || status.standing === "bootstrapping") return true;
    if (status.standing === "removed") return false;
    if (status.config !== null && findMember(status.config, id) !== undefined) return true;
    if (announced === undefined) return false;
    if (announced.version === 0) return announced.hash === noMembershipHash;
    return announced.version > status.summary.version;
  }

  /**
   * Make one change, on the leader (forwarded there from any other node), and wait until a quorum holds
   * it. `force` skips the check that the voters left healthy can still form a quorum.
   */
  async change(change: MembershipChange, force: boolean): Promise<ChangeOutcome> {
    const { election } = this.options;
    const status = election.status();
    if (status.role === "leader") return this.changeHere(change, force);
    if (status.leaderId === null) {
      return { ok: false, refusal: "no-leader", reason: "no leader is known: retry once one is elected" };
    }
    return this.forward(status.leaderId, { kind: "change", change, force });
  }

  private async forward(leader: NodeId, request: MembershipRequest): Promise<ChangeOutcome> {
    try {
      const response = await this.options.mesh.request(
        leader,
        MEMBERSHIP_CHANNEL,
        encodeJsonPayload(request),
        {
          timeoutMs: forwardTimeoutMs,
        },
      );
      const decoded = decodeJsonPayload(response, changeOutcomeSchema);
      if (!decoded.ok)
        return { ok: false, refusal: "uncertain", reason: `leader ${leader}: ${decoded.reason}` };
      return decoded.value;
    } catch (error) {
      return {
        ok: false,
        refusal: "uncertain",
        reason: `leader ${leader} did not answer (${(error as Error).message}); check tandem member list before retrying`,
      };
    }
  }

  private async changeHere(change: MembershipChange, force: boolean): Promise<ChangeOutcome> {
    if (demotedFromLeading(change) === this.options.selfId) return this.handOffThenForward(change, force);
    const unsafe = force ? null : this.quorumRisk(change);
    if (unsafe !== null) return { ok: false, refusal: "unsafe", reason: unsafe };
    const proposed = this.options.election.propose(change);
    if (!proposed.ok) {
      const refusal = proposed.reason === "not the leader" ? "not-leader" : "refused";
      return { ok: false, refusal, reason: proposed.reason };
    }
    this.logger.info({ change, version: proposed.version }, "membership change proposed");
    return this.awaitCommit(proposed.version);
  }

  /** The leader cannot take itself out of the voting members: a successor does it. */
  private async handOffThenForward(change: MembershipChange, force: boolean): Promise<ChangeOutcome> {
    const self = this.options.selfId;
    if (this.options.handOff() === null) {
      return {
        ok: false,
        refusal: "refused",
        reason: `${self} leads and no other live member can take over`,
      };
    }
    const deadline = Date.now() + handOffTimeoutMs;
    for (;;) {
      const leader = this.options.election.status().leaderId;
      if (leader !== null && leader !== self) return this.forward(leader, { kind: "change", change, force });
      if (Date.now() >= deadline) {
        return { ok: false, refusal: "no-leader", reason: `no successor took over from ${self}: retry` };
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Resolves once a quorum holds `version`, or says why that is not known. */
  private awaitCommit(version: number): Promise<ChangeOutcome> {
    const { election } = this.options;
    const timeoutMs = this.options.commitTimeoutMs ?? defaultCommitTimeoutMs;
    return new Promise((resolve) => {
      const finish = (outcome: ChangeOutcome) => {
        clearTimeout(timer);
        unsubscribe();
        resolve(outcome);
      };
      const check = (status: MembershipStatus) => {
        if (status.committedVersion >= version) finish({ ok: true, version });
        else if (election.status().role !== "leader") {
          finish({
            ok: false,
            refusal: "uncertain",
            reason: `leadership moved before a quorum confirmed v${version}; check tandem member list`,
          });
        }
      };
      const unsubscribe = election.events.on("membership:changed", check);
      const timer = setTimeout(
        () =>
          finish({
            ok: false,
            refusal: "uncertain",
            reason: `v${version} not yet held by a quorum after ${timeoutMs} ms (voters unreachable?); check tandem member list`,
          }),
        timeoutMs,
      );
      check(election.membership());
    });
  }

  /**
   * Null when the change leaves enough healthy voters to form a quorum of the new voter set; otherwise
   * why not (the change would stall the cluster until the missing voters come back).
   */
  private quorumRisk(change: MembershipChange): string | null {
    if (change.type !== "remove" && change.type !== "demote" && change.type !== "promote") return null;
    const config = this.status().config;
    if (config === null) return null;
    const voters = new Set(voterIds(config));
    if (change.type === "promote") voters.add(change.id);
    else voters.delete(change.id);
    const alive = new Set(
      this.options.health
        .peers()
        .filter((p) => p.state === "alive")
        .map((p) => p.id),
    );
    alive.add(this.options.selfId);
    const healthy = [...voters].filter((id) => alive.has(id));
    const needed = quorumSize(voters.size);
    if (healthy.length >= needed) return null;
    const down = [...voters].filter((id) => !alive.has(id));
    return (
      `after this change ${voters.size} voters need ${needed} for a quorum, and only ${healthy.length} are healthy ` +
      `(${down.join(", ")} not alive): the cluster could not elect or keep a leader until they return. ` +
      "Bring them back first, or repeat with --force"
    );
  }

  /** The held list drives the mesh's peers and the detector's watch list. */
  private follow(status: MembershipStatus): void {
    if (status.config === this.applied && status.standing === this.appliedStanding) return;
    this.applied = status.config;
    this.appliedStanding = status.standing;
    const { mesh, health } = this.options;
    if (this.removalTimer !== null) clearTimeout(this.removalTimer);
    this.removalTimer = null;
    if (status.standing === "removed") {
      this.logger.warn(
        { version: status.summary.version },
        "this node is not in the cluster membership any more: it neither votes nor leads; stop it, or add it again with tandem member add",
      );
      this.removalTimer = setTimeout(() => {
        this.removalTimer = null;
        mesh.setPeers([]);
        health.setPeers([]);
      }, departureGraceMs);
      return;
    }
    if (status.config === null) return;
    const others = this.dialablePeers();
    for (const peer of mesh.peers()) {
      const kept = others.some((n) => n.id === peer.id);
      if (!kept && peer.address !== "" && !this.departing.has(peer.id)) {
        const timer = setTimeout(() => {
          this.departing.delete(peer.id);
          this.applyPeers();
        }, departureGraceMs);
        this.departing.set(peer.id, { address: peer.address, timer });
      }
      if (kept) {
        clearTimeout(this.departing.get(peer.id)?.timer);
        this.departing.delete(peer.id);
      }
    }
    this.applyPeers();
    health.setPeers(others.map((n) => n.id));
  }

  /** Every other node of the held list that has an address to dial. */
  private dialablePeers(): { id: NodeId; address: string }[] {
    return (this.applied?.nodes ?? [])
      .filter((n) => n.id !== this.options.selfId && n.address !== "")
      .map((n) => ({ id: n.id, address: n.address }));
  }

  /** The mesh's peers: the held list, plus the nodes just removed until their grace period ends. */
  private applyPeers(): void {
    if (this.applied == null || this.appliedStanding === "removed") return;
    const others = this.dialablePeers();
    const departing = [...this.departing].map(([id, { address }]) => ({ id, address }));
    this.options.mesh.setPeers([...others, ...departing.filter((d) => !others.some((o) => o.id === d.id))]);
  }

  private async answer(from: NodeId, payload: Uint8Array): Promise<Uint8Array> {
    const decoded = decodeJsonPayload(payload, membershipRequestSchema, 64 * 1024);
    if (!decoded.ok) throw new Error(`invalid membership request: ${decoded.reason}`);
    const request = decoded.value;
    switch (request.kind) {
      case "catch-up":
        return encodeJsonPayload(this.catchUp(from));
      case "change":
        return encodeJsonPayload(await this.change(request.change, request.force));
      case "join": {
        const node = { id: from, address: request.address, role: request.role, priority: request.priority };
        this.logger.info({ node }, "join requested");
        return encodeJsonPayload(
          await this.change({ type: "add", node: { ...node, autoPromote: true } }, false),
        );
      }
    }
  }

  private catchUp(leader: NodeId): CatchUpAnswer {
    const behind = this.checks
      .map((check) => check(leader))
      .filter((result) => !result.caughtUp)
      .map((result) => result.detail);
    return { caughtUp: behind.length === 0, behind };
  }

  /** The promotion check runs only on a leader with a learner to promote: an idle cluster never wakes for it. */
  private schedulePromotions(): void {
    const { election } = this.options;
    const waiting = election.membership().config?.nodes.some((n) => !n.voting && n.autoPromote) ?? false;
    const needed = waiting && election.status().role === "leader";
    if (needed && !this.promoteTimer.running) this.promoteTimer.start();
    if (!needed && this.promoteTimer.running) this.promoteTimer.stop();
  }

  /** Leader: promote the first learner marked for it whose capabilities all caught up with this node. */
  private async promoteCaughtUpLearners(): Promise<void> {
    const { election, mesh } = this.options;
    const status = election.membership();
    if (this.promoting || election.status().role !== "leader" || status.pendingVersion !== null) return;
    const learner = status.config?.nodes.find((n: MemberSpec) => !n.voting && n.autoPromote);
    if (learner === undefined) return;
    this.promoting = true;
    try {
      const response = await mesh.request(
        learner.id,
        MEMBERSHIP_CHANNEL,
        encodeJsonPayload({ kind: "catch-up" }),
        {
          timeoutMs: catchUpAnswerTimeoutMs,
        },
      );
      const answer = decodeJsonPayload(response, catchUpSchema);
      if (!answer.ok || !answer.value.caughtUp) {
        const behind = answer.ok ? answer.value.behind : [answer.reason];
        this.logger.debug({ learner: learner.id, behind }, "learner still catching up");
        return;
      }
      this.logger.info({ learner: learner.id }, "learner caught up: promoting it to voter");
      const outcome = await this.changeHere({ type: "promote", id: learner.id }, false);
      if (!outcome.ok)
        this.logger.warn({ learner: learner.id, reason: outcome.reason }, "promotion not made");
    } catch (error) {
      this.logger.debug({ learner: learner.id, err: error }, "learner did not answer the catch-up check");
    } finally {
      this.promoting = false;
    }
  }
}
