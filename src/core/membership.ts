// The cluster's membership as versioned state: who votes, who may lead, who only listens (learners).
// The configured peer list only bootstraps a brand-new cluster (version 1); every later version is made by
// the leader from the one before, one node at a time (applyMembershipChange), so the voter sets of two
// consecutive versions differ by at most one node and every majority of one meets every majority of the
// other (Raft's single-server change, see election.ts for the rest of the argument).
import type { ConfigProblem, NodeId, Term } from "./types.ts";

export type MemberRole = "member" | "witness";

export interface MemberSpec {
  id: NodeId;
  /** host:port the other nodes dial. Opaque to the election core. */
  address: string;
  /** Members may lead; witnesses vote and never lead. */
  role: MemberRole;
  priority: number;
  /** False for a learner: it hears the leader and catches up, but neither votes nor counts in a quorum. */
  voting: boolean;
  /** A learner the leader promotes to voter once it has caught up (false for voters and kept learners). */
  autoPromote: boolean;
}

export interface Membership {
  /** 1 for the bootstrap list; +1 per change. */
  version: number;
  /** Sorted by id. */
  nodes: readonly MemberSpec[];
}

/**
 * What a node announces about its membership in every election message: which version it holds, a hash
 * that tells two different lists of one version apart, and the term of the leader it last took it from
 * (0 for the bootstrap list). Ordered by (term, version), as Raft orders logs by their last entry.
 */
export interface MembershipSummary {
  version: number;
  hash: string;
  term: Term;
}

/** The hash of "no membership at all": a node still joining. */
export const noMembershipHash = "0".repeat(16);

export type MembershipChange =
  /** A new node, as a learner: it votes once promoted (by the leader when `autoPromote`, or by hand). */
  | { type: "add"; node: Omit<MemberSpec, "voting"> }
  | { type: "promote"; id: NodeId }
  | { type: "demote"; id: NodeId }
  | { type: "remove"; id: NodeId }
  | { type: "update"; id: NodeId; address?: string; priority?: number; role?: MemberRole };

export type MembershipChangeResult = { ok: true; next: Membership } | { ok: false; reason: string };

/** The node a change would take out of the members that may lead (removed, demoted, made a witness), or null. */
export function demotedFromLeading(change: MembershipChange): NodeId | null {
  const demoting =
    change.type === "remove" ||
    change.type === "demote" ||
    (change.type === "update" && change.role === "witness");
  return demoting ? change.id : null;
}

export function voterIds(m: Membership): NodeId[] {
  return m.nodes.filter((n) => n.voting).map((n) => n.id);
}

/** Voting members: the nodes that may lead. */
export function leaderEligibleIds(m: Membership): NodeId[] {
  return m.nodes.filter((n) => n.voting && n.role === "member").map((n) => n.id);
}

export function findMember(m: Membership, id: NodeId): MemberSpec | undefined {
  return m.nodes.find((n) => n.id === id);
}

/**
 * FNV-1a (64-bit) of the canonical form. Not a security hash: it only tells two lists of one version
 * apart (a mistyped bootstrap list, a change a deposed leader made), and the core must stay free of I/O.
 */
export function membershipHash(m: Membership): string {
  const canonical = JSON.stringify([
    m.version,
    m.nodes.map((n) => [n.id, n.address, n.role, n.priority, n.voting, n.autoPromote]),
  ]);
  let hash = 0xcbf29ce484222325n;
  for (let i = 0; i < canonical.length; i++) {
    hash ^= BigInt(canonical.charCodeAt(i));
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  const hex = hash.toString(16).padStart(16, "0");
  return hex === noMembershipHash ? "0".repeat(15).concat("1") : hex;
}

/** (term, version) order: negative when `a` is older than `b`. Hashes do not order. */
export function compareMembership(a: MembershipSummary, b: MembershipSummary): number {
  return a.term !== b.term ? a.term - b.term : a.version - b.version;
}

export function sortedMembership(version: number, nodes: readonly MemberSpec[]): Membership {
  return { version, nodes: [...nodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)) };
}

/** Every reason `m` cannot be a cluster's membership; [] when it can. */
export function validateMembership(m: Membership): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (!Number.isSafeInteger(m.version) || m.version < 1) {
    problems.push({ key: "version", message: `must be an integer >= 1, got ${m.version}` });
  }
  const seen = new Set<NodeId>();
  for (const node of m.nodes) {
    if (node.id.length === 0) problems.push({ key: "nodes", message: "ids must be non-empty" });
    if (seen.has(node.id))
      problems.push({ key: "nodes", message: `duplicate id ${JSON.stringify(node.id)}` });
    seen.add(node.id);
    if (!Number.isFinite(node.priority)) {
      problems.push({ key: "priorities", message: `${JSON.stringify(node.id)}: must be a finite number` });
    }
  }
  if (leaderEligibleIds(m).length < 1) {
    problems.push({ key: "members", message: "needs at least one voting member (a node that may lead)" });
  }
  return problems;
}

/** The next version after one change, or why the change cannot be made to `m`. */
export function applyMembershipChange(m: Membership, change: MembershipChange): MembershipChangeResult {
  const id = change.type === "add" ? change.node.id : change.id;
  const current = findMember(m, id);
  let nodes: MemberSpec[];
  if (change.type === "add") {
    if (current !== undefined) return { ok: false, reason: `${id} is already in the membership` };
    nodes = [...m.nodes, { ...change.node, voting: false }];
  } else {
    if (current === undefined) return { ok: false, reason: `${id} is not in the membership` };
    const others = m.nodes.filter((n) => n.id !== id);
    switch (change.type) {
      case "promote":
        if (current.voting) return { ok: false, reason: `${id} already votes` };
        nodes = [...others, { ...current, voting: true, autoPromote: false }];
        break;
      case "demote":
        if (!current.voting) return { ok: false, reason: `${id} is already a learner` };
        nodes = [...others, { ...current, voting: false, autoPromote: false }];
        break;
      case "remove":
        nodes = others;
        break;
      case "update": {
        const updated: MemberSpec = {
          ...current,
          ...(change.address === undefined ? {} : { address: change.address }),
          ...(change.priority === undefined ? {} : { priority: change.priority }),
          ...(change.role === undefined ? {} : { role: change.role }),
        };
        nodes = [...others, updated];
        break;
      }
    }
  }
  const next = sortedMembership(m.version + 1, nodes);
  const problems = validateMembership(next);
  if (problems.length > 0) return { ok: false, reason: problems.map((p) => p.message).join("; ") };
  return { ok: true, next };
}
