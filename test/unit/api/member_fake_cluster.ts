// A stand-in for Cluster behind the members API: n1 answers, n2 leads in term 5, and changes are applied to
// the list it holds with the core's own rules (applyMembershipChange), as the leader would once a quorum
// holds them. Tests set what a change answers instead, which links are down, and when a learner catches up.
import { pino } from "pino";
import { type MembershipControl, memberRoutes } from "../../../src/api/member_routes.ts";
import { createApiRouter } from "../../../src/api/router.ts";
import type { ChangeOutcome, ClusterStatus } from "../../../src/cluster/index.ts";
import type { AclRule } from "../../../src/config/index.ts";
import {
  applyMembershipChange,
  type MemberSpec,
  type Membership,
  type MembershipChange,
  sortedMembership,
} from "../../../src/core/membership.ts";
import { serveRouter } from "./store_http.ts";

export const voter = (id: string, address: string): MemberSpec => ({
  id,
  address,
  role: "member",
  priority: 100,
  voting: true,
  autoPromote: false,
});

/** v7: n1 (self), n2, witness n3, and n4, a learner the leader promotes once caught up. */
export function fourNodes(): Membership {
  return sortedMembership(7, [
    voter("n1", "10.0.0.1:7400"),
    voter("n2", "10.0.0.2:7400"),
    { ...voter("n3", "10.0.0.3:7400"), role: "witness", priority: 0 },
    { ...voter("n4", "10.0.0.4:7400"), voting: false, autoPromote: true },
  ]);
}

export class FakeCluster implements MembershipControl {
  membership: Membership;
  readonly changes: Array<{ change: MembershipChange; force: boolean }> = [];
  /** What a change of this type answers instead of being applied. */
  readonly answers = new Map<MembershipChange["type"], ChangeOutcome>();
  /** Nodes this node has no link to. */
  readonly down = new Set<string>();
  /** Per learner: status reads, once it is listed, until it has caught up and the leader promotes it. */
  readonly catchUpReads = new Map<string, number>();
  configDrift: string[] = [];

  constructor(membership: Membership = fourNodes()) {
    this.membership = membership;
  }

  members(): readonly MemberSpec[] {
    return this.membership.nodes;
  }

  status(): ClusterStatus {
    for (const [id, reads] of this.catchUpReads) {
      if (!this.membership.nodes.some((n) => n.id === id)) continue;
      this.catchUpReads.set(id, reads - 1);
      if (reads > 1) continue;
      this.catchUpReads.delete(id);
      this.apply({ type: "promote", id });
    }
    const version = this.membership.version;
    return {
      nodeId: "n1",
      nodeRole: "member",
      priority: 100,
      leaderId: "n2",
      term: 5,
      role: "follower",
      leaseValid: false,
      votedFor: "n2",
      membership: {
        standing: "voter",
        version,
        hash: "cd".repeat(8),
        committedVersion: version,
        pendingVersion: null,
        configDrift: this.configDrift,
        refusedBy: [],
      },
      peers: this.membership.nodes
        .filter((n) => n.id !== "n1")
        .map((n) => {
          const up = !this.down.has(n.id);
          return {
            id: n.id,
            address: n.address,
            role: n.role,
            priority: n.priority,
            voting: n.voting,
            // A learner still catching up announces the version before its own add.
            membership: up ? { version: n.voting ? version : version - 1, hash: "ab".repeat(8) } : null,
            state: up ? "alive" : "down",
            link: up ? "up" : "down",
            rttMs: null,
            lastHeardMsAgo: null,
          };
        }),
    };
  }

  async changeMembership(change: MembershipChange, force = false): Promise<ChangeOutcome> {
    this.changes.push({ change, force });
    return this.answers.get(change.type) ?? this.apply(change);
  }

  private apply(change: MembershipChange): ChangeOutcome {
    const result = applyMembershipChange(this.membership, change);
    if (!result.ok) return { ok: false, refusal: "refused", reason: result.reason };
    this.membership = result.next;
    return { ok: true, version: result.next.version };
  }
}

/** The members API over `cluster` on a loopback port; closed after the test. */
export async function serveMembers(
  t: { after(fn: () => unknown): void },
  cluster: FakeCluster,
  acl: AclRule[] = [{ path: "^/", cn: ".*" }],
): Promise<string> {
  const logger = pino({ level: "silent" });
  const router = createApiRouter({
    nodeId: "n1",
    status: () => ({}),
    acl,
    logger,
    routes: memberRoutes(cluster, { logger }),
  });
  const api = await serveRouter(router);
  t.after(() => api.close());
  return api.base;
}
