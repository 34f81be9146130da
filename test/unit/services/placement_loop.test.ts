import assert from "node:assert/strict";
import { test } from "node:test";
import { pino } from "pino";
import type { MemberLiveness } from "../../../src/cluster/coordination.ts";
import type { Grant } from "../../../src/core/grants.ts";
import type { MemberSpec } from "../../../src/core/membership.ts";
import {
  type NodeReport,
  PlacementLoop,
  reportFreshMs,
  startFailedForMs,
} from "../../../src/services/placement_loop.ts";
import type { ServiceTableEntry, WireRunnerReport } from "../../../src/services/services_wire.ts";
import { serviceConfig } from "../../support/service_config.ts";

function member(id: string, role: "member" | "witness" = "member"): MemberSpec {
  return { id, address: `${id}:7400`, role, priority: 100, voting: true, autoPromote: false };
}

function runner(
  state: WireRunnerReport["state"],
  fence: string | null = null,
  healthy = true,
): WireRunnerReport {
  return { state, fence, sinceMs: 0, detail: "", healthy };
}

/** The leader's world: members, their liveness, the grants it adopted, and every assignment it made. */
function world(options: {
  services: ReturnType<typeof serviceConfig>[];
  previous?: Record<string, ServiceTableEntry>;
  drained?: string[];
  window?: string;
}) {
  const clock = { nowMs: 100_000 };
  const liveness = new Map<string, number>([
    ["n1", 0],
    ["n2", 0],
    ["n3", 0],
  ]);
  const grants: Grant[] = [];
  const assignments: Array<[string, string | null]> = [];
  const loop = new PlacementLoop({
    services: options.services,
    coordination: {
      members: () => [member("n1"), member("n2"), member("n3")],
      memberLiveness: (): MemberLiveness[] =>
        [...liveness].map(([id, unreachableMs]) => ({ id, unreachableMs })),
      assignService: async (name, owner) => {
        assignments.push([name, owner]);
      },
      grants: () => grants,
    },
    logger: pino({ level: "silent" }),
    now: () => clock.nowMs,
    openWindow: () => options.window ?? null,
    previousTable: () => options.previous ?? {},
    previousDrained: () => options.drained ?? [],
  });
  const reports = new Map<string, NodeReport>();
  const report = (node: string, services: Record<string, WireRunnerReport>) =>
    reports.set(node, { services, receivedAtMs: clock.nowMs });
  return { clock, liveness, grants, assignments, loop, reports, report };
}

test("placement loop: a new leader keeps services where they run: adopted claims, then reports, then its last table", async () => {
  const w = world({
    services: [
      serviceConfig("a", { prefer: ["n1"] }),
      serviceConfig("b", { prefer: ["n1"] }),
      serviceConfig("c", { prefer: ["n1"] }),
    ],
    previous: { c: { owner: "n3", code: "running", reason: "", report: null, failbackIn: null } },
  });
  w.grants.push({ service: "a", owner: "n2", fence: { term: 5, seq: 1 }, leaseMs: 2000 });
  for (const id of ["n1", "n2", "n3"]) w.report(id, {});
  w.report("n3", { b: runner("running", "4.7") });
  const table = await w.loop.round(w.reports);
  assert.deepEqual(
    Object.entries(table).map(([name, e]) => [name, e.owner, e.code]),
    [
      ["a", "n2", "running"],
      ["b", "n3", "running"],
      ["c", "n3", "running"],
    ],
  );
  assert.deepEqual(w.assignments, [
    ["a", "n2"],
    ["b", "n3"],
    ["c", "n3"],
  ]);
  assert.deepEqual(table.b?.report, runner("running", "4.7"));
});

test("placement loop: nodes that have not reported lately are not given services", async () => {
  const w = world({ services: [serviceConfig("web", { prefer: ["n1"] })] });
  w.report("n2", {});
  const waiting = await w.loop.round(w.reports);
  assert.deepEqual([waiting.web?.owner, waiting.web?.code], [null, "waiting-for-preferred"]);
  w.clock.nowMs += 3000;
  w.report("n2", {});
  assert.equal((await w.loop.round(w.reports)).web?.owner, "n2", "n1 never reported: not started");
  const w2 = world({ services: [serviceConfig("web")] });
  w2.report("n1", {});
  w2.clock.nowMs += reportFreshMs;
  assert.equal((await w2.loop.round(w2.reports)).web?.owner, null);
});

test("placement loop: a failed start moves the service and passes the node over for a while", async () => {
  const w = world({ services: [serviceConfig("web", { prefer: ["n1", "n2"] })] });
  for (const id of ["n1", "n2", "n3"]) w.report(id, {});
  assert.equal((await w.loop.round(w.reports)).web?.owner, "n1");
  w.report("n1", { web: runner("failed") });
  const moved = await w.loop.round(w.reports);
  assert.deepEqual([moved.web?.owner, moved.web?.code], ["n2", "failover"]);
  assert.match(moved.web?.reason ?? "", /failed to start on n1/);
  w.report("n1", { web: runner("stopped") });
  w.clock.nowMs += startFailedForMs;
  for (const id of ["n2", "n3"]) w.report(id, {});
  assert.equal((await w.loop.round(w.reports)).web?.owner, "n2", "sticky once n1 is usable again");
});

test("placement loop: an owner unreachable past failover_after_ms loses the service", async () => {
  const w = world({ services: [serviceConfig("web", { prefer: ["n1"] })] });
  for (const id of ["n1", "n2", "n3"]) w.report(id, {});
  assert.equal((await w.loop.round(w.reports)).web?.owner, "n1");
  assert.equal(w.loop.decideAgainInMs(), null, "nothing changes by itself");
  w.liveness.set("n1", 2999);
  assert.equal((await w.loop.round(w.reports)).web?.code, "owner-unreachable");
  assert.equal(w.loop.decideAgainInMs(), 1, "due when n1 reaches failover_after_ms");
  w.liveness.set("n1", 3000);
  const moved = await w.loop.round(w.reports);
  assert.deepEqual([moved.web?.owner, moved.web?.code], ["n2", "failover"]);
  assert.deepEqual(w.assignments.at(-1), ["web", "n2"]);
});

test("placement loop: an owner whose health check fails loses the service, and is passed over for a while", async () => {
  const w = world({ services: [serviceConfig("web", { prefer: ["n1", "n2"] })] });
  for (const id of ["n1", "n2", "n3"]) w.report(id, {});
  assert.equal((await w.loop.round(w.reports)).web?.owner, "n1");
  w.report("n1", { web: runner("running", "1.1", true) });
  assert.equal((await w.loop.round(w.reports)).web?.owner, "n1", "healthy: kept");
  w.report("n1", { web: runner("running", "1.1", false) });
  const moved = await w.loop.round(w.reports);
  assert.deepEqual([moved.web?.owner, moved.web?.code], ["n2", "failover"]);
  assert.match(moved.web?.reason ?? "", /health check fails on n1/);
  // n1 stopped it (and so reports healthy again); n2 fails too, but n1 is still passed over.
  w.report("n1", { web: runner("stopped") });
  w.report("n2", { web: runner("running", "1.2", false) });
  const next = await w.loop.round(w.reports);
  assert.deepEqual([next.web?.owner, next.web?.code], ["n3", "failover"]);
});

test("placement loop: with failover off, an unhealthy owner keeps the service and it is reported down", async () => {
  const w = world({ services: [serviceConfig("web", { prefer: ["n1"], failover: false })] });
  for (const id of ["n1", "n2", "n3"]) w.report(id, {});
  assert.equal((await w.loop.round(w.reports)).web?.owner, "n1");
  w.report("n1", { web: runner("running", "1.1", false) });
  const kept = await w.loop.round(w.reports);
  assert.deepEqual([kept.web?.owner, kept.web?.code], ["n1", "failover-disabled"]);
});

test("placement loop: an operator's move is checked against what placement would take, applied once, then sticky", async () => {
  const w = world({ services: [serviceConfig("web", { nodes: ["n1", "n2"], prefer: ["n1"] })] });
  for (const id of ["n1", "n2", "n3"]) w.report(id, {});
  assert.equal((await w.loop.round(w.reports)).web?.owner, "n1");
  assert.deepEqual(w.loop.command({ kind: "move", service: "web", node: "n3" }), {
    ok: false,
    reason: "n3 may not run web",
  });
  assert.deepEqual(w.loop.command({ kind: "move", service: "db", node: "n2" }), {
    ok: false,
    reason: "no service db",
    notFound: true,
  });
  w.liveness.set("n2", 500);
  assert.deepEqual(w.loop.command({ kind: "move", service: "web", node: "n2" }), {
    ok: false,
    reason: "n2 is unreachable",
  });
  w.liveness.set("n2", 0);
  assert.deepEqual(w.loop.command({ kind: "move", service: "web", node: "n2" }), { ok: true });
  const moved = await w.loop.round(w.reports);
  assert.deepEqual([moved.web?.owner, moved.web?.code], ["n2", "moved-by-operator"]);
  // Taken once: n2 keeps it, and n1 (preferred) does not pull it back outside a restore window.
  const next = await w.loop.round(w.reports);
  assert.deepEqual([next.web?.owner, next.web?.code], ["n2", "running"]);
});

test("placement loop: a drained node hands its services on and takes none until undrained; a drain outlives the leader", async () => {
  const w = world({
    services: [serviceConfig("web", { prefer: ["n1"] }), serviceConfig("db", { prefer: ["n1"] })],
  });
  for (const id of ["n1", "n2", "n3"]) w.report(id, {});
  const first = await w.loop.round(w.reports);
  assert.deepEqual([first.web?.owner, first.db?.owner], ["n1", "n1"]);
  assert.deepEqual(w.loop.command({ kind: "drain", node: "n9" }), {
    ok: false,
    reason: "n9 is not a member",
    notFound: true,
  });
  assert.deepEqual(w.loop.command({ kind: "drain", node: "n1" }), { ok: true });
  const drained = await w.loop.round(w.reports);
  assert.deepEqual(
    [drained.web?.owner, drained.web?.code, drained.db?.owner],
    ["n3", "owner-drained", "n2"],
    "handed on, spread by load (db placed first, by name)",
  );
  assert.deepEqual(w.loop.drained(), ["n1"]);
  assert.deepEqual(w.loop.command({ kind: "undrain", node: "n1" }), { ok: true });
  const back = await w.loop.round(w.reports);
  assert.deepEqual([back.web?.owner, back.db?.owner], ["n3", "n2"], "undrained: sticky, nothing moves back");
  assert.deepEqual(w.loop.drained(), []);

  // A new leader starts from the drained nodes of the last table.
  const successor = world({ services: [serviceConfig("web", { prefer: ["n1"] })], drained: ["n1"] });
  for (const id of ["n1", "n2", "n3"]) successor.report(id, {});
  assert.equal((await successor.loop.round(successor.reports)).web?.owner, "n2");
  assert.deepEqual(successor.loop.drained(), ["n1"]);
});

test("placement loop: with stop_must_succeed a reported failed stop keeps the service from starting anywhere", async () => {
  const w = world({ services: [serviceConfig("web", { prefer: ["n1"], stopMustSucceed: true })] });
  for (const id of ["n1", "n2", "n3"]) w.report(id, {});
  assert.equal((await w.loop.round(w.reports)).web?.owner, "n1");
  w.report("n1", { web: runner("stop-failed", "1.1") });
  const blocked = await w.loop.round(w.reports);
  assert.deepEqual([blocked.web?.owner, blocked.web?.code], [null, "stop-failed"]);
  w.report("n1", { web: runner("stopped") });
  assert.equal((await w.loop.round(w.reports)).web?.owner, "n1", "stopped at last: placed again");
});

test("placement loop: a restore window an earlier leader failed the service back in stays spent for the next one", async () => {
  const entry = (failbackIn: string | null) => ({
    web: { owner: "n2", code: "running", reason: "", report: null, failbackIn },
  });
  const fresh = world({
    services: [serviceConfig("web", { prefer: ["n1"] })],
    previous: entry(null),
    window: "web@1",
  });
  for (const id of ["n1", "n2", "n3"]) fresh.report(id, {});
  const back = await fresh.loop.round(fresh.reports);
  assert.deepEqual([back.web?.owner, back.web?.code, back.web?.failbackIn], ["n1", "failback", "web@1"]);

  const spent = world({
    services: [serviceConfig("web", { prefer: ["n1"] })],
    previous: entry("web@1"),
    window: "web@1",
  });
  for (const id of ["n1", "n2", "n3"]) spent.report(id, {});
  const kept = await spent.loop.round(spent.reports);
  assert.deepEqual([kept.web?.owner, kept.web?.code], ["n2", "running"], "not home again in the same window");
});
