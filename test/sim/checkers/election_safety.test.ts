import assert from "node:assert/strict";
import { test } from "node:test";
import type { ElectionMessage, ElectionStatus } from "../../../src/core/election_types.ts";
import { ElectionSafetyChecker, SafetyViolationError } from "./election_safety.ts";

function status(
  selfId: string,
  role: ElectionStatus["role"],
  term: number,
  leaseValid = true,
): ElectionStatus {
  const leader = role === "leader";
  return {
    selfId,
    role,
    term,
    leaderId: leader ? selfId : null,
    votedFor: null,
    leaseValid: leader && leaseValid,
    leaseRemainingTicks: leader && leaseValid ? 3 : 0,
    membership: {
      standing: "voter",
      summary: membership,
      config: null,
      committedVersion: 1,
      pendingVersion: null,
    },
  };
}

const membership = { version: 1, term: 0, hash: "00000000000000aa" };

function violation(invariant: string): (error: unknown) => boolean {
  return (error) => error instanceof SafetyViolationError && error.invariant === invariant;
}

test("sim: election safety: two leaders of one term are caught even when they never coexist", () => {
  const checker = new ElectionSafetyChecker([]);
  checker.checkAfterEvent([status("n1", "leader", 3), status("n2", "follower", 3)]);
  checker.checkAfterEvent([status("n1", "follower", 3), status("n2", "follower", 3)]);
  assert.throws(
    () => checker.checkAfterEvent([status("n1", "follower", 3), status("n2", "leader", 3)]),
    violation("one-leader-per-term"),
  );
});

test("sim: election safety: an old leader may coexist with a newer one only without a lease", () => {
  const checker = new ElectionSafetyChecker([]);
  checker.checkAfterEvent([status("n1", "leader", 3, false), status("n2", "leader", 4)]);
  assert.throws(
    () => checker.checkAfterEvent([status("n1", "leader", 3, true), status("n2", "leader", 4)]),
    violation("stale-leader-lease"),
  );
});

test("sim: election safety: a message for a term not yet on disk is caught; pre-votes name the next term", () => {
  const checker = new ElectionSafetyChecker([]);
  const send = (message: ElectionMessage) => ({ from: "n1", to: "n2", message });
  checker.observeSend(send({ type: "pre-vote", term: 4, membership }), { term: 3, votedFor: null });
  checker.observeSend(send({ type: "pre-vote-response", term: 4, granted: true, membership }), {
    term: 3,
    votedFor: null,
  });
  checker.observeSend(send({ type: "heartbeat", term: 3, seq: 1, membership, committed: 1 }), {
    term: 3,
    votedFor: "n1",
  });
  assert.throws(
    () =>
      checker.observeSend(send({ type: "vote", term: 4, transfer: false, membership }), {
        term: 3,
        votedFor: "n1",
      }),
    violation("term-durable"),
  );
});

test("sim: election safety: a lease reported by a non-leader is caught", () => {
  const checker = new ElectionSafetyChecker([]);
  const follower = { ...status("n1", "follower", 2), leaseValid: true };
  assert.throws(() => checker.checkAfterEvent([follower]), violation("lease-only-when-leading"));
});

test("sim: election safety: a witness that leads is caught", () => {
  const checker = new ElectionSafetyChecker(["n3"]);
  assert.throws(() => checker.checkAfterEvent([status("n3", "leader", 1)]), violation("witness-never-leads"));
});

test("sim: election safety: fencing terms may repeat but never go back, across restarts", () => {
  const checker = new ElectionSafetyChecker([]);
  checker.observeFencingTerm("n1", 2);
  checker.observeFencingTerm("n1", 2);
  checker.observeFencingTerm("n2", 1);
  assert.throws(() => checker.observeFencingTerm("n1", 1), violation("fencing-monotonic"));
});

test("sim: election safety: a granted vote must be on disk when it leaves, and only one per term", () => {
  const checker = new ElectionSafetyChecker([]);
  const grant = (to: string) => ({
    from: "n2",
    to,
    message: { type: "vote-response", term: 5, granted: true, membership } as const,
  });
  assert.throws(
    () => checker.observeSend(grant("n1"), { term: 5, votedFor: null }),
    violation("vote-durable"),
  );
  checker.observeSend(grant("n1"), { term: 5, votedFor: "n1" });
  checker.observeSend(grant("n1"), { term: 5, votedFor: "n1" });
  // A disk that lost the vote (no fsync) and voted again would look exactly like this.
  assert.throws(
    () => checker.observeSend(grant("n3"), { term: 5, votedFor: "n3" }),
    violation("one-vote-per-term"),
  );
  const preVote = {
    from: "n2",
    to: "n3",
    message: { type: "pre-vote-response", term: 6, granted: true, membership } as const,
  };
  checker.observeSend(preVote, { term: 5, votedFor: "n1" });
});

/** A status holding list `version` (hash `hash`) in which `self` is a voter, a learner or absent. */
function holding(
  selfId: string,
  role: ElectionStatus["role"],
  term: number,
  list: { version: number; hash: string; self: "voter" | "learner" | "absent" },
): ElectionStatus {
  const base = status(selfId, role, term);
  const entry = { id: selfId, address: "", role: "member" as const, priority: 0, autoPromote: false };
  const nodes = list.self === "absent" ? [] : [{ ...entry, voting: list.self === "voter" }];
  return {
    ...base,
    membership: {
      ...base.membership,
      summary: { version: list.version, hash: list.hash, term },
      config: { version: list.version, nodes: [...nodes, { ...entry, id: "zz", voting: true }] },
    },
  };
}

test("sim: election safety: a learner or removed node that campaigns or leads is caught", () => {
  const checker = new ElectionSafetyChecker([]);
  const learner = holding("n4", "pre-candidate", 2, { version: 2, hash: "a", self: "learner" });
  assert.throws(() => checker.checkAfterEvent([learner]), violation("non-voter-campaigns"));
  const removed = holding("n3", "leader", 2, { version: 3, hash: "b", self: "absent" });
  assert.throws(() => checker.checkAfterEvent([removed]), violation("non-voter-campaigns"));
  checker.checkAfterEvent([holding("n1", "candidate", 2, { version: 3, hash: "b", self: "voter" })]);
});

test("sim: election safety: a committed membership must be held by every leader of that term or later", () => {
  const checker = new ElectionSafetyChecker([]);
  const committer = holding("n1", "leader", 3, { version: 4, hash: "h4", self: "voter" });
  checker.observeEvents("n1", [{ type: "membership-committed", term: 3, version: 4 }], committer);
  // An older leader that has not heard of it yet is not a later leader.
  checker.checkAfterEvent([holding("n2", "leader", 2, { version: 3, hash: "h3", self: "voter" })]);
  assert.throws(
    () => checker.checkAfterEvent([holding("n2", "leader", 4, { version: 3, hash: "h3", self: "voter" })]),
    violation("committed-never-lost"),
  );
  assert.throws(
    () => checker.checkAfterEvent([holding("n3", "leader", 5, { version: 4, hash: "xx", self: "voter" })]),
    violation("committed-never-lost"),
  );
  checker.checkAfterEvent([holding("n3", "leader", 6, { version: 5, hash: "h5", self: "voter" })]);
  assert.throws(
    () =>
      checker.observeEvents(
        "n3",
        [{ type: "membership-committed", term: 7, version: 4 }],
        holding("n3", "leader", 7, { version: 4, hash: "yy", self: "voter" }),
      ),
    violation("committed-never-lost"),
  );
  assert.throws(
    () =>
      checker.observeEvents(
        "n3",
        [{ type: "membership-committed", term: 7, version: 6 }],
        holding("n3", "leader", 7, { version: 5, hash: "h5", self: "voter" }),
      ),
    violation("committed-held"),
  );
});
