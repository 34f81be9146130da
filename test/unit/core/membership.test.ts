// Membership as versioned state: the change rules, the hash, the bootstrap agreement and the vote rule, and
// the election core's side of a change (proposal, commit by a quorum, the list reaching learners and the
// removed).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Election } from "../../../src/core/election.ts";
import type { ElectionConfig, ElectionMessage, HardState } from "../../../src/core/election_types.ts";
import {
  applyMembershipChange,
  compareMembership,
  type MemberSpec,
  type Membership,
  membershipHash,
  noMembershipHash,
  sortedMembership,
} from "../../../src/core/membership.ts";
import { MembershipView } from "../../../src/core/membership_view.ts";
import { Prng } from "../../../src/core/prng.ts";
import type { Envelope, NodeId } from "../../../src/core/types.ts";

function voter(id: NodeId, role: MemberSpec["role"] = "member"): MemberSpec {
  return { id, address: `${id}:7400`, role, priority: 0, voting: true, autoPromote: false };
}

const three = sortedMembership(1, [voter("n1"), voter("n2"), voter("n3")]);

describe("membership: changes", () => {
  test("membership: add makes a learner; promote, demote, update and remove each make the next version", () => {
    const added = applyMembershipChange(three, {
      type: "add",
      node: { id: "n4", address: "n4:7400", role: "member", priority: 1, autoPromote: true },
    });
    assert.ok(added.ok);
    assert.equal(added.next.version, 2);
    assert.deepEqual(
      added.next.nodes.map((n) => [n.id, n.voting]),
      [
        ["n1", true],
        ["n2", true],
        ["n3", true],
        ["n4", false],
      ],
    );
    const promoted = applyMembershipChange(added.next, { type: "promote", id: "n4" });
    assert.ok(promoted.ok);
    assert.equal(promoted.next.nodes.find((n) => n.id === "n4")?.voting, true);
    assert.equal(promoted.next.nodes.find((n) => n.id === "n4")?.autoPromote, false);
    const moved = applyMembershipChange(promoted.next, {
      type: "update",
      id: "n2",
      address: "10.0.0.2:7400",
    });
    assert.ok(moved.ok);
    assert.equal(moved.next.nodes.find((n) => n.id === "n2")?.address, "10.0.0.2:7400");
    const removed = applyMembershipChange(moved.next, { type: "remove", id: "n3" });
    assert.ok(removed.ok);
    assert.deepEqual(
      removed.next.nodes.map((n) => n.id),
      ["n1", "n2", "n4"],
    );
    assert.equal(removed.next.version, 5);
  });

  test("membership: impossible changes are refused with the reason", () => {
    const cases: [Parameters<typeof applyMembershipChange>[1], RegExp][] = [
      [
        { type: "add", node: { id: "n2", address: "x:1", role: "member", priority: 0, autoPromote: true } },
        /already/,
      ],
      [{ type: "promote", id: "n1" }, /already votes/],
      [{ type: "remove", id: "n9" }, /not in the membership/],
      [{ type: "update", id: "n9", priority: 2 }, /not in the membership/],
    ];
    for (const [change, reason] of cases) {
      const result = applyMembershipChange(three, change);
      assert.equal(result.ok, false);
      if (!result.ok) assert.match(result.reason, reason);
    }
    const alone = sortedMembership(1, [voter("n1"), voter("w1", "witness")]);
    const result = applyMembershipChange(alone, { type: "remove", id: "n1" });
    assert.equal(result.ok, false, "a cluster needs a member that may lead");
  });

  test("membership: the hash tells lists and versions apart, never equals the no-membership hash", () => {
    const other = sortedMembership(1, [voter("n1"), voter("n2"), voter("n4")]);
    const hashes = new Set([
      membershipHash(three),
      membershipHash(other),
      membershipHash({ ...three, version: 2 }),
      membershipHash(sortedMembership(1, [voter("n1"), voter("n2"), { ...voter("n3"), priority: 1 }])),
    ]);
    assert.equal(hashes.size, 4);
    assert.ok(![...hashes].includes(noMembershipHash));
    assert.match(membershipHash(three), /^[0-9a-f]{16}$/);
  });

  test("membership: lists are ordered by the term they were taken in, then the version", () => {
    assert.ok(compareMembership({ version: 9, term: 1, hash: "a" }, { version: 2, term: 2, hash: "b" }) < 0);
    assert.ok(compareMembership({ version: 3, term: 2, hash: "a" }, { version: 2, term: 2, hash: "b" }) > 0);
    assert.equal(
      compareMembership({ version: 3, term: 2, hash: "a" }, { version: 3, term: 2, hash: "b" }),
      0,
    );
  });
});

describe("membership: bootstrap agreement", () => {
  const summaryOf = (list: Membership, version = 0) => ({ version, hash: membershipHash(list), term: 0 });

  test("membership: the configured list is taken once every listed voter announced it", () => {
    const view = new MembershipView("n1", three, undefined);
    assert.equal(view.standing(), "bootstrapping");
    assert.deepEqual(view.observe("n2", summaryOf(three)), { kind: "none" });
    assert.equal(view.config, null);
    assert.deepEqual(view.observe("n3", summaryOf(three)), { kind: "agreed", peer: "n3" });
    assert.equal(view.config, three);
    assert.equal(view.standing(), "voter");
  });

  test("membership: a peer that already took the list (version 1) vouches for everyone", () => {
    const view = new MembershipView("n1", three, undefined);
    assert.equal(view.observe("n2", summaryOf(three, 1)).kind, "agreed");
  });

  test("membership: a different list or a running cluster is a mismatch, and nothing is taken", () => {
    const view = new MembershipView("n1", three, undefined);
    const other = sortedMembership(1, [voter("n1"), voter("n2"), voter("n4")]);
    const mismatch = view.observe("n2", summaryOf(other));
    assert.equal(mismatch.kind, "mismatch");
    if (mismatch.kind === "mismatch") assert.match(mismatch.detail, /different bootstrap list/);
    const running = view.observe("n3", { version: 7, hash: "00000000000000ff", term: 4 });
    assert.equal(running.kind, "mismatch");
    if (running.kind === "mismatch") assert.match(running.detail, /running cluster/);
    assert.equal(view.config, null);
  });

  test("membership: a cluster of one needs no agreement; a joining node has no list at all", () => {
    assert.equal(new MembershipView("n1", sortedMembership(1, [voter("n1")]), undefined).standing(), "voter");
    const joining = new MembershipView("n4", null, undefined);
    assert.equal(joining.standing(), "joining");
    assert.deepEqual(joining.summary(), { version: 0, hash: noMembershipHash, term: 0 });
  });

  test("membership: votes only for a list at least as new, never for a conflicting one", () => {
    const view = new MembershipView("n2", three, { config: three, term: 3 });
    const own = view.summary();
    assert.equal(view.voteRefusal(own), null);
    assert.equal(view.voteRefusal({ ...own, term: 4 }), null);
    assert.match(view.voteRefusal({ ...own, term: 2, version: 9 }) ?? "", /older/);
    assert.match(view.voteRefusal({ ...own, hash: "00000000000000aa" }) ?? "", /conflicting/);
    const bootstrapping = new MembershipView("n2", three, undefined);
    assert.match(bootstrapping.voteRefusal(summaryOf(three, 1)) ?? "", /no membership agreed/);
    assert.equal(bootstrapping.voteRefusal({ version: 4, hash: "00000000000000aa", term: 2 }), null);
  });
});

describe("membership: changes through the election core", () => {
  const timings = {
    electionTimeoutTicks: 10,
    heartbeatIntervalTicks: 2,
    leaseTicks: 8,
    preVote: true,
    checkQuorum: true,
  };

  function config(selfId: NodeId, join = false): ElectionConfig {
    return {
      selfId,
      members: ["n1", "n2", "n3"],
      witnesses: [],
      priorities: { n1: 0, n2: 0, n3: 0 },
      ...timings,
      ...(join ? { join: true } : {}),
    };
  }

  /** Cores wired together synchronously; every message is delivered at once (FIFO). */
  class Net {
    readonly nodes = new Map<NodeId, Election>();
    readonly down = new Set<NodeId>();

    add(id: NodeId, state: HardState, join = false): Election {
      const node = new Election(config(id, join), state, new Prng(id));
      this.nodes.set(id, node);
      return node;
    }

    settle(): void {
      const queue: Envelope<ElectionMessage>[] = [];
      const drain = () => {
        for (const node of this.nodes.values()) {
          while (node.hasReady()) {
            const ready = node.ready();
            queue.push(...ready.messages);
            node.advance(ready);
          }
        }
      };
      drain();
      while (queue.length > 0) {
        const envelope = queue.shift() as Envelope<ElectionMessage>;
        const to = this.nodes.get(envelope.to);
        if (to !== undefined && !this.down.has(envelope.to)) to.step(envelope);
        drain();
      }
    }

    tick(count: number): void {
      for (let i = 0; i < count; i++) {
        for (const [id, node] of this.nodes) if (!this.down.has(id)) node.tick();
        this.settle();
      }
    }
  }

  const agreed: HardState = { term: 0, votedFor: null, membership: { config: three, term: 0 } };

  function electedNet(): Net {
    const net = new Net();
    for (const id of ["n1", "n2", "n3"]) net.add(id, agreed);
    net.nodes.get("n1")?.campaign();
    net.settle();
    assert.equal(net.nodes.get("n1")?.status().role, "leader");
    return net;
  }

  test("membership: a leader refuses a change until a quorum holds its list in its term, then one at a time", () => {
    const net = new Net();
    for (const id of ["n1", "n2", "n3"]) net.add(id, agreed);
    net.down.add("n2");
    net.down.add("n3");
    const n1 = net.nodes.get("n1") as Election;
    assert.deepEqual(n1.proposeMembership({ type: "remove", id: "n3" }), {
      ok: false,
      reason: "not the leader",
    });
    net.down.clear();
    n1.campaign();
    net.settle();
    assert.equal(n1.membership().pendingVersion, null, "the list was confirmed in term 1");
    assert.equal(n1.membership().committedVersion, 1);
    net.down.add("n2");
    net.down.add("n3");
    const add = {
      type: "add",
      node: { id: "n4", address: "n4:1", role: "member", priority: 0, autoPromote: true },
    } as const;
    assert.deepEqual(n1.proposeMembership(add), { ok: true, version: 2 });
    const second = n1.proposeMembership({ type: "remove", id: "n3" });
    assert.equal(second.ok, false);
    if (!second.ok) assert.match(second.reason, /v2 is not yet held by a quorum/);
    assert.match(
      JSON.stringify(n1.proposeMembership({ type: "remove", id: "n1" })),
      /v2 is not yet held|hand leadership/,
    );
    net.down.clear();
    net.tick(2);
    assert.equal(n1.membership().committedVersion, 2);
    assert.match(JSON.stringify(n1.proposeMembership({ type: "remove", id: "n1" })), /hand leadership/);
  });

  test("membership: a joining node takes the list from the leader's heartbeat, as a learner; promoted, it votes", () => {
    const net = electedNet();
    const n1 = net.nodes.get("n1") as Election;
    const n4 = net.add("n4", { term: 0, votedFor: null }, true);
    assert.equal(n4.membership().standing, "joining");
    const add = {
      type: "add",
      node: { id: "n4", address: "n4:1", role: "member", priority: 0, autoPromote: true },
    } as const;
    assert.equal(n1.proposeMembership(add).ok, true);
    net.settle();
    assert.equal(n1.membership().committedVersion, 2);
    assert.equal(n4.membership().standing, "learner");
    assert.equal(n4.status().leaderId, "n1");
    assert.equal(n4.ticksUntilTimer(), Number.POSITIVE_INFINITY, "a learner never campaigns");
    assert.equal(n1.proposeMembership({ type: "promote", id: "n4" }).ok, true);
    net.tick(2);
    assert.equal(n1.membership().committedVersion, 3);
    assert.equal(n4.membership().standing, "voter");
    for (const node of net.nodes.values()) assert.equal(node.membership().summary.version, 3);
  });

  test("membership: a removed node is told once the change commits, and stops campaigning and voting", () => {
    const net = electedNet();
    const n1 = net.nodes.get("n1") as Election;
    const n3 = net.nodes.get("n3") as Election;
    assert.equal(n1.proposeMembership({ type: "remove", id: "n3" }).ok, true);
    net.settle();
    assert.equal(n1.membership().committedVersion, 2);
    assert.equal(n3.membership().standing, "removed");
    assert.equal(n3.ticksUntilTimer(), Number.POSITIVE_INFINITY);
    n3.campaign();
    assert.equal(n3.status().role, "follower");
    // Its vote is worth nothing to anyone, and it gives none.
    n3.step({
      from: "n2",
      to: "n3",
      message: { type: "pre-vote", term: 9, membership: n1.membership().summary },
    });
    const answer = n3.ready().messages.at(-1)?.message;
    assert.equal(answer?.type === "pre-vote-response" && answer.granted, false);
  });

  test("membership: a single voter commits a change at once", () => {
    const solo = sortedMembership(1, [voter("n1")]);
    const n1 = new Election(
      { selfId: "n1", members: ["n1"], witnesses: [], priorities: { n1: 0 }, ...timings },
      { term: 0, votedFor: null, membership: { config: solo, term: 0 } },
      new Prng(1),
    );
    n1.campaign();
    assert.equal(n1.status().role, "leader");
    const add = {
      type: "add",
      node: { id: "n2", address: "n2:1", role: "member", priority: 0, autoPromote: true },
    } as const;
    assert.deepEqual(n1.proposeMembership(add), { ok: true, version: 2 });
    assert.equal(n1.membership().committedVersion, 2);
  });
});
