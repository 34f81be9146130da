import assert from "node:assert/strict";
import { type TestContext, test } from "node:test";
import { pino } from "pino";
import type { LeadershipView } from "../../../src/cluster/coordination.ts";
import {
  CoordinationUnavailableError,
  GrantRefusedError,
  NotLeaderError,
} from "../../../src/cluster/coordination_errors.ts";
import { type GrantElection, GrantService } from "../../../src/cluster/grant_service.ts";
import { GRANTS_CHANNEL } from "../../../src/cluster/grant_wire.ts";
import { clockMarginDefault } from "../../../src/core/grants.ts";
import { Role } from "../../../src/core/types.ts";
import { MemoryNetwork } from "../../support/memory_mesh.ts";

const leaseMs = 2000;
const lapseMs = leaseMs * (1 + clockMarginDefault);

interface World {
  network: MemoryNetwork;
  services: Map<string, GrantService>;
  /** The one clock every node reads (ms); tests move it. */
  clock: { nowMs: number };
  /** Who leads, in which term, as every node's election would say. */
  leadership: { leaderId: string | null; term: number; leaseValid: boolean };
}

function world(t: TestContext, ids = ["n1", "n2", "n3"]): World {
  const network = new MemoryNetwork();
  const w: World = {
    network,
    services: new Map(),
    clock: { nowMs: 100_000 },
    leadership: { leaderId: "n1", term: 3, leaseValid: true },
  };
  for (const id of ids) {
    const view = (): LeadershipView => ({
      leaderId: w.leadership.leaderId,
      term: w.leadership.term,
      role: w.leadership.leaderId === id ? Role.Leader : Role.Follower,
      leaseValid: w.leadership.leaderId === id && w.leadership.leaseValid,
    });
    w.services.set(
      id,
      new GrantService({
        selfId: id,
        mesh: network.join(id),
        leadership: view,
        leaseMs,
        logger: pino({ level: "silent" }),
        now: () => w.clock.nowMs,
      }),
    );
  }
  network.connectAll();
  t.after(() => {
    for (const s of w.services.values()) s.stop();
    network.close();
  });
  return w;
}

function node(w: World, id: string): GrantService {
  const s = w.services.get(id);
  assert.ok(s);
  return s;
}

/** A leader that took over long enough ago that no grant of an earlier one can be live. */
function settled(w: World): void {
  node(w, "n1").leadershipChanged();
  w.clock.nowMs += 2 * lapseMs;
}

test("grant service: the assigned node gets the grant over the mesh, with a deadline counted from its request", async (t) => {
  const w = world(t);
  settled(w);
  node(w, "n1").assign("web", "n2");
  const sentAt = w.clock.nowMs;
  const held = await node(w, "n2").acquire("web");
  assert.deepEqual(held.grant, { service: "web", owner: "n2", fence: { term: 3, seq: 1 }, leaseMs });
  assert.equal(held.deadlineMs, sentAt + leaseMs * (1 - clockMarginDefault));
  assert.equal(held.continueOnly, false);
  assert.deepEqual(node(w, "n2").checkFence(held), { ok: true, remainingMs: held.deadlineMs - sentAt });
  w.clock.nowMs = held.deadlineMs;
  const late = node(w, "n2").checkFence(held);
  assert.equal(late.ok, false);
  assert.deepEqual(
    node(w, "n1")
      .grants()
      .map((g) => g.owner),
    ["n2"],
  );
});

test("grant service: a node the service is not assigned to is refused, and so is everyone before an assignment", async (t) => {
  const w = world(t);
  settled(w);
  await assert.rejects(node(w, "n3").acquire("web"), (error: Error) => {
    assert.ok(error instanceof GrantRefusedError);
    assert.match(error.message, /not assigned to any node/);
    return true;
  });
  node(w, "n1").assign("web", "n2");
  await assert.rejects(node(w, "n3").acquire("web"), /assigned to n2/);
});

test("grant service: a moved service goes to its new owner once the old grant lapses, or at once when released", async (t) => {
  const w = world(t);
  settled(w);
  node(w, "n1").assign("web", "n2");
  const old = await node(w, "n2").acquire("web");
  node(w, "n1").assign("web", "n3");
  await assert.rejects(node(w, "n2").acquire("web"), /assigned to n3/);
  await assert.rejects(node(w, "n3").acquire("web"), (error: Error) => {
    assert.ok(error instanceof GrantRefusedError);
    assert.equal(error.retryInMs, lapseMs);
    return true;
  });
  assert.equal(node(w, "n1").freeInMs("web"), lapseMs);
  await node(w, "n2").release(old.grant);
  assert.equal(node(w, "n1").freeInMs("web"), 0);
  const next = await node(w, "n3").acquire("web");
  assert.deepEqual(next.grant.fence, { term: 3, seq: 2 });
});

test("grant service: the leader asks itself without the network; followers cannot assign", async (t) => {
  const w = world(t);
  settled(w);
  node(w, "n1").assign("db", "n1");
  const before = w.network.sendCount("n1", "n1", GRANTS_CHANNEL);
  assert.equal((await node(w, "n1").acquire("db")).grant.owner, "n1");
  assert.equal(w.network.sendCount("n1", "n1", GRANTS_CHANNEL), before);
  assert.throws(() => node(w, "n2").assign("db", "n2"), NotLeaderError);
});

test("grant service: no valid lease, no grant; a deposed leader points at the new one", async (t) => {
  const w = world(t);
  settled(w);
  node(w, "n1").assign("web", "n2");
  w.leadership.leaseValid = false;
  await assert.rejects(node(w, "n2").acquire("web"), NotLeaderError);
  w.leadership = { leaderId: null, term: 3, leaseValid: false };
  await assert.rejects(node(w, "n2").acquire("web"), /no leader is known/);
});

test("grant service: a new leader adopts a running holder's claim and gives nothing new for one lease", async (t) => {
  const w = world(t);
  settled(w);
  node(w, "n1").assign("web", "n2");
  const held = await node(w, "n2").acquire("web");
  // n3 takes over in term 4; n1 no longer leads.
  w.leadership = { leaderId: "n3", term: 4, leaseValid: true };
  node(w, "n1").leadershipChanged();
  node(w, "n3").leadershipChanged();
  node(w, "n3").assign("web", "n2");
  const adopted = await node(w, "n2").acquire("web", { current: held.grant.fence });
  assert.equal(adopted.continueOnly, true);
  assert.deepEqual(adopted.grant.fence, { term: 4, seq: 1 });
  node(w, "n3").assign("db", "n1");
  await assert.rejects(node(w, "n1").acquire("db"), /previous leader/);
  w.clock.nowMs += lapseMs;
  assert.equal((await node(w, "n1").acquire("db")).continueOnly, false);
});

test("grant service: the lease asked for travels to the leader, which counts the lapse by it", async (t) => {
  const w = world(t);
  settled(w);
  node(w, "n1").assign("web", "n2");
  const sentAt = w.clock.nowMs;
  const held = await node(w, "n2").acquire("web", { leaseMs: 1000 });
  assert.equal(held.grant.leaseMs, 1000);
  assert.equal(held.deadlineMs, sentAt + 1000 * (1 - clockMarginDefault));
  assert.equal(node(w, "n1").freeInMs("web"), 1000 * (1 + clockMarginDefault));
});

test("grant service: an unanswered request is CoordinationUnavailableError; garbage is refused", async (t) => {
  const w = world(t);
  settled(w);
  node(w, "n1").assign("web", "n2");
  w.network.setMuted("n1", true);
  const unanswered = new GrantService({
    selfId: "n4",
    mesh: w.network.join("n4"),
    leadership: () => ({ leaderId: "n1", term: 3, role: Role.Follower, leaseValid: false }),
    leaseMs,
    logger: pino({ level: "silent" }),
    requestTimeoutMs: 20,
  });
  t.after(() => unanswered.stop());
  w.network.connectAll();
  await assert.rejects(unanswered.acquire("web"), CoordinationUnavailableError);
  w.network.setMuted("n1", false);
  const mesh = w.network.join("n5");
  w.network.connectAll();
  const response = await mesh.request("n1", GRANTS_CHANNEL, new TextEncoder().encode("{]"));
  assert.match(new TextDecoder().decode(response), /"kind":"refused".*bad request/);
});

test("grant service: a claim of a service the new leader has not placed yet is adopted where it runs", async (t) => {
  const w = world(t);
  settled(w);
  node(w, "n1").assign("web", "n2");
  const held = await node(w, "n2").acquire("web");
  w.leadership = { leaderId: "n3", term: 4, leaseValid: true };
  node(w, "n3").leadershipChanged();
  // n3's placement has not run yet: no assignment. Refusing would stop a healthy service.
  const adopted = await node(w, "n2").acquire("web", { current: held.grant.fence });
  assert.equal(adopted.continueOnly, true);
  assert.equal(node(w, "n3").assignments().get("web"), "n2");
  await assert.rejects(node(w, "n1").acquire("web", { current: { term: 3, seq: 9 } }), /assigned to n2/);
});

test("grant service: with the election's contacts the window is shorter, and a grant waits for its tail to be acknowledged", async (t) => {
  const network = new MemoryNetwork();
  const clock = { nowMs: 50_000 };
  const advertised: number[] = [];
  let acknowledged: number | null = null;
  const waits: Array<{ tailMs: number; resolve: (ok: boolean) => void }> = [];
  const leadership = (id: string) => (): LeadershipView => ({
    leaderId: "n1",
    term: 4,
    role: id === "n1" ? Role.Leader : Role.Follower,
    leaseValid: id === "n1",
  });
  const make = (id: string, election?: GrantElection) =>
    new GrantService({
      selfId: id,
      mesh: network.join(id),
      leadership: leadership(id),
      leaseMs,
      logger: pino({ level: "silent" }),
      now: () => clock.nowMs,
      ...(election === undefined ? {} : { election }),
    });
  const leader = make("n1", {
    answerWindowMs: 550,
    fresh: () => true,
    freshen: () => Promise.resolve(true),
    // n2 heard the old leader 700 ms before n1 won (its own contact is older); the old tail was 1550 ms.
    contactsWhenWon: (term) =>
      term === 4
        ? [
            { atMs: clock.nowMs, heardMsAgo: 750, tailMs: 1550 },
            { atMs: clock.nowMs - 1, heardMsAgo: 700, tailMs: 1550 },
          ]
        : null,
    advertise: (tailMs) => advertised.push(tailMs),
    acknowledgedTailMs: () => acknowledged,
    tailAcknowledged: (tailMs) => new Promise((resolve) => waits.push({ tailMs, resolve })),
  });
  const holder = make("n2");
  network.connectAll();
  t.after(() => {
    leader.stop();
    holder.stop();
    network.close();
  });
  const wonAtMs = clock.nowMs;
  leader.leadershipChanged();
  const untilMs = wonAtMs - 1 - 700 * (1 - clockMarginDefault) + 1550 * (1 + clockMarginDefault);
  leader.assign("web", "n2");
  assert.equal(leader.freeInMs("web"), untilMs - wonAtMs);
  assert.ok(untilMs - wonAtMs < lapseMs - 1000, "far shorter than a whole lease × margin");
  assert.deepEqual(advertised, [Math.ceil(untilMs - wonAtMs)]);
  acknowledged = advertised[0] as number;
  clock.nowMs = untilMs;
  // A 1 s grant needs 550 + 1000 ms acknowledged first: the leader advertises it and waits.
  const asked = holder.acquire("web", { leaseMs: 1000 });
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(advertised.at(-1), 1550);
  assert.deepEqual(
    waits.map((w) => w.tailMs),
    [1550],
  );
  acknowledged = 1550;
  waits[0]?.resolve(true);
  const held = await asked;
  assert.equal(held.grant.leaseMs, 1000);
  // Unacknowledged after the wait: unavailable (ask again), never a refusal that would stop a holder.
  leader.assign("db", "n2");
  const longer = holder.acquire("db", { leaseMs: 2000 });
  await new Promise((resolve) => setImmediate(resolve));
  waits[1]?.resolve(false);
  await assert.rejects(longer, CoordinationUnavailableError);
});
