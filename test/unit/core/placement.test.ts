import assert from "node:assert/strict";
import { test } from "node:test";
import {
  decidePlacement,
  PlacementCode,
  type PlacementDecision,
  type PlacementNode,
  type PlacementService,
} from "../../../src/core/placement.ts";

function node(id: string, overrides: Partial<PlacementNode> = {}): PlacementNode {
  return { id, witness: false, unreachableMs: 0, ready: true, drained: false, ...overrides };
}

function service(overrides: Partial<PlacementService> = {}): PlacementService {
  return {
    name: "web",
    nodes: null,
    prefer: [],
    failover: true,
    failoverAfterMs: 3000,
    owner: null,
    ownerUnhealthy: false,
    unownedMs: 0,
    openWindow: null,
    failbackSpentIn: null,
    startFailedOn: [],
    moveTo: null,
    stopFailedOn: null,
    ...overrides,
  };
}

const three = [node("n1"), node("n2"), node("n3")];

function decide(nodes: PlacementNode[], s: Partial<PlacementService>): PlacementDecision {
  const [decision] = decidePlacement(nodes, [service(s)]);
  assert.ok(decision);
  return decision;
}

function ownerAndCode(d: PlacementDecision): [string | null, string] {
  return [d.owner, d.code];
}

test("placement: a new service goes to its first usable preferred node, else to the least loaded", () => {
  assert.deepEqual(ownerAndCode(decide(three, { prefer: ["n2", "n1"] })), ["n2", PlacementCode.Placed]);
  const n2Down = [node("n1"), node("n2", { unreachableMs: 10 }), node("n3")];
  assert.deepEqual(ownerAndCode(decide(n2Down, { prefer: ["n2", "n1"] })), ["n1", PlacementCode.Placed]);
  const spread = decidePlacement(three, [
    service({ name: "a" }),
    service({ name: "b" }),
    service({ name: "c" }),
  ]);
  assert.deepEqual(
    spread.map((d) => d.owner),
    ["n1", "n2", "n3"],
    "one each, ties by id",
  );
});

test("placement: witnesses, nodes outside `nodes`, drained and failed-start nodes are never chosen", () => {
  const nodes = [
    node("n1", { witness: true }),
    node("n2", { drained: true }),
    node("n3"),
    node("n4"),
    node("n5"),
  ];
  const d = decide(nodes, { nodes: ["n1", "n2", "n3", "n4"], startFailedOn: ["n3"] });
  assert.deepEqual(ownerAndCode(d), ["n4", PlacementCode.Placed]);
  const none = decide(nodes, { nodes: ["n1", "n2", "n3"], startFailedOn: ["n3"] });
  assert.deepEqual(ownerAndCode(none), [null, PlacementCode.NoNode]);
});

test("placement: the node that runs a healthy service keeps it, even when a preferred node is back", () => {
  const d = decide(three, { prefer: ["n1"], owner: "n3" });
  assert.deepEqual(ownerAndCode(d), ["n3", PlacementCode.Running]);
});

test("placement: an unreachable owner keeps it until failover_after_ms, then it moves", () => {
  const gone = (ms: number) => [node("n1", { unreachableMs: ms }), node("n2"), node("n3")];
  const kept = decide(gone(2400), { owner: "n1" });
  assert.deepEqual(ownerAndCode(kept), ["n1", PlacementCode.OwnerUnreachable]);
  assert.equal(kept.decideAgainInMs, 600, "the moment it would move");
  const moved = decide(gone(3000), { owner: "n1", prefer: ["n1", "n3"] });
  assert.deepEqual(ownerAndCode(moved), ["n3", PlacementCode.Failover]);
  assert.equal(moved.decideAgainInMs, null);
  assert.match(moved.reason, /n1 unreachable for 3000 ms: moved to n3/);
});

test("placement: a failing health check moves the service like a dead owner", () => {
  const d = decide(three, { owner: "n1", ownerUnhealthy: true });
  assert.deepEqual(ownerAndCode(d), ["n2", PlacementCode.Failover]);
  assert.match(d.reason, /health check fails on n1/);
});

test("placement: failover false keeps a lost owner assigned (down), but a drain still hands it on", () => {
  const lost = [node("n1", { unreachableMs: 60_000 }), node("n2")];
  assert.deepEqual(ownerAndCode(decide(lost, { owner: "n1", failover: false })), [
    "n1",
    PlacementCode.FailoverDisabled,
  ]);
  const drained = [node("n1", { drained: true }), node("n2")];
  assert.deepEqual(ownerAndCode(decide(drained, { owner: "n1", failover: false })), [
    "n2",
    PlacementCode.Drained,
  ]);
});

test("placement: an owner taken out of `nodes` hands the service on", () => {
  const d = decide(three, { owner: "n1", nodes: ["n2", "n3"] });
  assert.deepEqual(ownerAndCode(d), ["n2", PlacementCode.Ineligible]);
});

test("placement: inside an open restore window a preferred node takes it back, once per window", () => {
  const s = { prefer: ["n1", "n2"], owner: "n3" };
  assert.deepEqual(ownerAndCode(decide(three, { ...s, openWindow: "w1" })), ["n1", PlacementCode.Failback]);
  // The same inputs, the same answer: deciding again before the grant moves changes nothing.
  assert.deepEqual(ownerAndCode(decide(three, { ...s, openWindow: "w1" })), ["n1", PlacementCode.Failback]);
  // Spent in w1 (it went home, then failed over again): it stays until the next window.
  const spent = { ...s, openWindow: "w1", failbackSpentIn: "w1" };
  assert.deepEqual(ownerAndCode(decide(three, spent)), ["n3", PlacementCode.Running]);
  assert.deepEqual(ownerAndCode(decide(three, { ...spent, openWindow: "w2" })), [
    "n1",
    PlacementCode.Failback,
  ]);
  // Only a node ranked above the owner, and only one that is up and started.
  assert.deepEqual(ownerAndCode(decide(three, { ...s, owner: "n1", openWindow: "w1" })), [
    "n1",
    PlacementCode.Running,
  ]);
  const n1Starting = [node("n1", { ready: false }), node("n2"), node("n3")];
  assert.deepEqual(ownerAndCode(decide(n1Starting, { ...s, openWindow: "w1" })), [
    "n2",
    PlacementCode.Failback,
  ]);
});

test("placement: a node still starting never takes a service from a running owner", () => {
  const nodes = [node("n1", { ready: false }), node("n2")];
  assert.deepEqual(ownerAndCode(decide(nodes, { prefer: ["n1"], owner: "n2", moveTo: "n1" })), [
    "n2",
    PlacementCode.Running,
  ]);
});

test("placement: an unowned service waits for a starting preferred node, for failover_after_ms at most", () => {
  const nodes = [node("n1", { ready: false }), node("n2")];
  const waiting = decide(nodes, { prefer: ["n1"], unownedMs: 2999 });
  assert.deepEqual(ownerAndCode(waiting), [null, PlacementCode.WaitingForPreferred]);
  assert.equal(waiting.decideAgainInMs, 1);
  assert.deepEqual(ownerAndCode(decide(nodes, { prefer: ["n1"], unownedMs: 3000 })), [
    "n2",
    PlacementCode.Placed,
  ]);
  // A starting node that is not preferred over the choice is not waited for.
  assert.deepEqual(ownerAndCode(decide(nodes, { prefer: ["n2", "n1"] })), ["n2", PlacementCode.Placed]);
});

test("placement: an operator's move wins within eligibility, and an impossible one is ignored", () => {
  assert.deepEqual(ownerAndCode(decide(three, { owner: "n1", moveTo: "n3" })), ["n3", PlacementCode.Moved]);
  const nodes = [node("n1"), node("n2", { drained: true }), node("n3", { witness: true })];
  for (const moveTo of ["n2", "n3", "n9"]) {
    assert.deepEqual(ownerAndCode(decide(nodes, { owner: "n1", moveTo })), ["n1", PlacementCode.Running]);
  }
});

test("placement: a service that failed to start on its owner moves on, unless failover is off", () => {
  const d = decide(three, { owner: "n1", startFailedOn: ["n1"] });
  assert.deepEqual(ownerAndCode(d), ["n2", PlacementCode.Failover]);
  assert.match(d.reason, /failed to start on n1/);
  assert.deepEqual(ownerAndCode(decide(three, { owner: "n1", startFailedOn: ["n1"], failover: false })), [
    "n1",
    PlacementCode.FailoverDisabled,
  ]);
});

test("placement: with stop_must_succeed, a node whose stop failed keeps the service from starting anywhere", () => {
  const blocked = decide(three, { owner: "n1", moveTo: "n2", stopFailedOn: "n1" });
  assert.deepEqual(ownerAndCode(blocked), [null, PlacementCode.StopFailed]);
  assert.match(blocked.reason, /its stop failed on n1; it starts nowhere until that stop succeeds/);
  assert.deepEqual(ownerAndCode(decide(three, { prefer: ["n2"] })), ["n2", PlacementCode.Placed]);
});
