// Membership changes at run time: StoreSync.setPeers and the syncProgress a learner's promotion reads.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_STORE_SYNC_LIMITS, StoreSyncConfigError } from "../../../src/core/store_sync_config.ts";
import type { StoreSyncLimits } from "../../../src/core/store_sync_types.ts";
import type { NodeId } from "../../../src/core/types.ts";
import { completedRounds, Harness, nowWallMs } from "./store_sync_harness.ts";

const encoder = new TextEncoder();

test("store sync: peers: a node added to one holding 100,000 entries gets them all in bounded messages, caught up only then", () => {
  const h = new Harness(["n1", "n2"]);
  h.setPeers("n1", []);
  h.setPeers("n2", []);
  const n1 = h.node("n1");
  const entryCount = 100_000;
  const writes = Array.from({ length: entryCount }, (_, i) => ({
    path: `certs/${i}.pem`,
    value: encoder.encode(`v${i}`),
  }));
  const firstSeq = n1.store.lastSeq() + 1;
  n1.core.localCommitted("bulk", n1.store.writeLocal(writes, nowWallMs), 0, undefined, firstSeq);
  h.drain(n1);
  assert.equal(h.queue.length, 0, "no peers: nothing sent");

  const n2 = h.node("n2");
  h.setPeers("n1", ["n2"]);
  h.setPeers("n2", ["n1"]);
  assert.equal(n2.core.syncProgress("n1").caughtUp, false);
  h.linkUp("n2", "n1");
  h.linkUp("n1", "n2");
  let entriesPerMessageMax = 0;
  let caughtUpAt = -1;
  for (let steps = 0; h.queue.length > 0; steps++) {
    assert.ok(steps < 10_000, "messages kept flowing");
    const envelope = h.queue.shift()!;
    if (envelope.message.type === "entries") {
      entriesPerMessageMax = Math.max(entriesPerMessageMax, envelope.message.entries.length);
    }
    h.deliver(envelope);
    const held = n2.store.lastSeq();
    if (n2.core.syncProgress("n1").caughtUp) {
      assert.equal(held, entryCount, `caught up while holding ${held} of ${entryCount}`);
      if (caughtUpAt < 0) caughtUpAt = steps;
    }
  }
  assert.ok(caughtUpAt >= 0, "never caught up");
  assert.equal(entriesPerMessageMax, DEFAULT_STORE_SYNC_LIMITS.entriesPerMessageMax);
  assert.ok(completedSinceRounds(h, "n2") > 10, "many bounded rounds, not one");
  assert.deepEqual(n2.core.syncProgress("n1"), {
    caughtUp: true,
    cursorSeq: entryCount,
    headSeq: entryCount,
    lastRound: { kind: "since", leftBehind: false },
  });
});

function completedSinceRounds(h: Harness, id: NodeId): number {
  const node = h.node(id);
  const since = new Set(
    node.events.flatMap((e) => (e.type === "round-started" && e.kind === "since" ? [e.roundId] : [])),
  );
  return node.events.filter((e) => e.type === "round-completed" && since.has(e.roundId)).length;
}

test("store sync: peers: a write in flight when a peer is added neither goes to it nor waits for it", () => {
  const h = new Harness(["n1", "n2", "n3"]);
  h.setPeers("n1", ["n2"]);
  h.setPeers("n3", []);
  h.node("n2").autoPersist = false;
  const before = h.write("n1", { a: "1" }, "all");
  h.deliverAll();
  h.setPeers("n1", ["n2", "n3"]);
  h.setPeers("n3", ["n1", "n2"]);
  h.persistHeld("n2");
  h.deliverAll();
  assert.deepEqual(h.node("n1").results, [
    { writeId: before, hostsOk: ["n2"], hostsErr: [], acked: true, done: true },
  ]);
  // Written after the change: "all" means n3 too.
  h.node("n2").autoPersist = true;
  h.node("n3").autoPersist = false;
  const after = h.write("n1", { b: "2" }, "all");
  h.deliverAll();
  assert.equal(h.node("n1").results.length, 1, `${after} waits for n3`);
  h.node("n3").autoPersist = true;
  h.persistHeld("n3");
  h.deliverAll();
  assert.deepEqual(h.node("n1").results[1], {
    writeId: after,
    hostsOk: ["n2", "n3"],
    hostsErr: [],
    acked: true,
    done: true,
  });
  // n3 gets the earlier write from anti-entropy.
  h.linkUp("n3", "n1");
  h.deliverAll();
  assert.deepEqual(h.contents("n3"), h.contents("n1"));
});

test("store sync: peers: removing a peer a write waits on resolves it from the remaining hosts", () => {
  const h = new Harness(["n1", "n2", "n3", "n4"]);
  h.node("n3").autoPersist = false;
  h.node("n4").autoPersist = false;
  const two = h.write("n1", { a: "1" }, 2);
  const all = h.write("n1", { b: "2" }, "all");
  h.deliverAll();
  assert.deepEqual(h.node("n1").results, [], "only n2 acked");
  h.setPeers("n1", ["n2", "n4"]);
  // "all" now means n2 and n4; minAcks 2 still needs n4.
  assert.deepEqual(h.node("n1").results, []);
  h.persistHeld("n4");
  h.deliverAll();
  assert.deepEqual(h.node("n1").results, [
    { writeId: two, hostsOk: ["n2", "n4"], hostsErr: [], acked: true, done: true },
    { writeId: all, hostsOk: ["n2", "n4"], hostsErr: [], acked: true, done: true },
  ]);
  // n3's late acks count for nothing: it is not a peer.
  h.persistHeld("n3");
  h.deliverAll();
  assert.equal(h.node("n1").results.length, 2);
  assert.ok(h.node("n1").events.some((e) => e.type === "message-ignored" && e.peer === "n3"));
});

test("store sync: peers: a write a removal leaves short of minAcks fails, naming only the hosts still missing", () => {
  const h = new Harness(["n1", "n2", "n3", "n4"]);
  h.node("n3").autoPersist = false;
  h.node("n4").autoPersist = false;
  const waiting = h.write("n1", { a: "1" }, 2);
  h.deliverAll();
  h.setPeers("n1", ["n2", "n4"]);
  assert.deepEqual(h.node("n1").results, [], "n4 may still ack");
  h.tick("n1", 10);
  assert.deepEqual(h.node("n1").results, [
    {
      writeId: waiting,
      hostsOk: ["n2"],
      hostsErr: [{ host: "n4", error: "no acknowledgement within 10 ticks" }],
      acked: false,
      done: true,
    },
  ]);

  // Nobody left to ask: it fails at once rather than at its timeout.
  const pair = new Harness(["n1", "n2", "n3"]);
  pair.node("n3").autoPersist = false;
  const short = pair.write("n1", { a: "1" }, 2);
  pair.deliverAll();
  pair.setPeers("n1", ["n2"]);
  assert.deepEqual(pair.node("n1").results, [
    { writeId: short, hostsOk: ["n2"], hostsErr: [], acked: false, done: true },
  ]);
  assert.equal(pair.node("n1").core.status().writesInFlight, 0);
});

test("store sync: peers: a removed peer is forgotten: round abandoned, cursor dropped and saved, messages ignored, applies unacknowledged", () => {
  const h = new Harness(["n1", "n2", "n3"]);
  h.write("n2", { a: "1" }, 0);
  h.queue = [];
  h.linkUp("n1", "n2");
  h.deliverAll();
  const n1 = h.node("n1");
  assert.equal(n1.core.syncProgress("n2").caughtUp, true);
  h.tick("n1", 1000);
  h.deliverAll();
  assert.deepEqual(
    n1.store.syncCursors().map((c) => c.peer),
    ["n2"],
  );
  // A round in flight with n2, and an apply from it not yet persisted.
  n1.autoPersist = false;
  h.linkUp("n1", "n2");
  h.write("n2", { b: "2" }, 1);
  h.deliverAll((e) => e.to !== "n1" || e.message.type !== "apply");
  assert.equal(n1.held.length, 1);
  assert.deepEqual(n1.core.status().roundsInFlight, ["n2"]);
  h.sent.length = 0;
  h.setPeers("n1", ["n3"]);
  assert.deepEqual(n1.core.status().roundsInFlight, []);
  assert.ok(n1.events.some((e) => e.type === "round-abandoned" && e.reason === "peer removed"));
  assert.deepEqual(n1.store.syncCursors(), [], "the saved cursors are replaced at once");
  assert.deepEqual(n1.core.syncProgress("n2"), {
    caughtUp: false,
    cursorSeq: null,
    headSeq: null,
    lastRound: null,
  });
  h.persistHeld("n1");
  h.deliverAll();
  assert.equal(n1.store.get("b")?.deleted, false, "the entries are kept");
  assert.deepEqual(
    h.sent.filter((e) => e.to === "n2"),
    [],
    "no ack, nothing else",
  );
  h.linkUp("n1", "n2");
  h.tick("n1", 1000);
  assert.equal(
    h.sent.some((e) => e.to === "n2"),
    false,
  );
});

test("store sync: peers: a peer added back starts over, reading its change log from the start", () => {
  const h = new Harness(["n1", "n2"]);
  for (let i = 0; i < 5; i++) h.write("n2", { [`k/${i}`]: "v" }, 0);
  h.queue = [];
  h.linkUp("n1", "n2");
  h.deliverAll();
  h.setPeers("n1", []);
  h.setPeers("n1", ["n2"]);
  h.sent.length = 0;
  h.linkUp("n1", "n2");
  const since = h.firstSent("since");
  assert.deepEqual([since.storeId, since.afterSeq], [0, 0]);
  h.deliverAll();
  assert.equal(h.node("n1").core.syncProgress("n2").caughtUp, true);
});

test("store sync: peers: syncProgress: caught up when the latest completed round left nothing behind", () => {
  const limits: StoreSyncLimits = {
    ...DEFAULT_STORE_SYNC_LIMITS,
    stampsPerMessageMax: 4,
    pathsPerPullMax: 4,
  };
  const h = new Harness(["n1", "n2"], { limits, digestRoundEvery: 1, antiEntropyIntervalTicks: 5 });
  for (let i = 0; i < 10; i++) h.write("n2", { [`k/${i}`]: "v" }, 0);
  h.queue = [];
  const n1 = h.node("n1");
  assert.equal(n1.core.syncProgress("n2").caughtUp, false, "no round yet");
  assert.equal(n1.core.syncProgress("n9").caughtUp, false, "not a peer");
  h.linkUp("n1", "n2");
  // The first since answer is cut short at 4 stamps: behind, and the next round starts at once.
  h.deliver(h.queue.shift()!);
  h.deliver(h.queue.shift()!);
  h.deliverAll((e) => e.message.type === "changes");
  assert.deepEqual(n1.core.syncProgress("n2").lastRound, { kind: "since", leftBehind: true });
  assert.equal(n1.core.syncProgress("n2").caughtUp, false);
  h.queue = [];
  // Every periodic round is a digest round here: one that compares and pulls everything catches up.
  h.tick("n1", 5);
  h.deliverAll();
  assert.equal(n1.store.lastSeq(), 10);
  assert.deepEqual(n1.core.syncProgress("n2").lastRound, { kind: "digest", leftBehind: false });
  assert.equal(n1.core.syncProgress("n2").caughtUp, true);
  // A digest round that cannot compare every differing bucket at once leaves something behind.
  for (let i = 0; i < 40; i++) h.write("n2", { [`more/${i}`]: "v" }, 0);
  h.queue = [];
  const completed = completedRounds(n1);
  h.tick("n1", 5);
  assert.equal(n1.core.syncProgress("n2").caughtUp, true, "a round in flight changes nothing");
  while (completedRounds(n1) === completed) h.deliver(h.queue.shift()!);
  assert.deepEqual(n1.core.syncProgress("n2").lastRound, { kind: "digest", leftBehind: true });
  assert.equal(n1.core.syncProgress("n2").caughtUp, false);
});

test("store sync: peers: syncProgress: a round that left what it lacks to another round's pull is not caught up", () => {
  const h = new Harness(["n1", "n2", "n3"]);
  for (let i = 0; i < 20; i++) h.write("n1", { [`k/${i}`]: `v${i}` }, 0);
  h.deliverAll((e) => e.to === "n3");
  const n3 = h.node("n3");
  n3.autoPersist = false;
  h.linkUp("n3", "n1");
  h.linkUp("n3", "n2");
  h.deliverAll();
  assert.equal(n3.store.lastSeq(), 0);
  // n1's answer came first: its round pulls everything, so n2's round pulled nothing and left it to n1's.
  assert.deepEqual(n3.core.syncProgress("n2").lastRound, { kind: "since", leftBehind: true });
  assert.equal(n3.core.syncProgress("n1").lastRound, null, "n1's round still waits for its persists");
  h.persistHeld("n3");
  assert.equal(n3.store.lastSeq(), 20);
  assert.equal(n3.core.syncProgress("n1").caughtUp, true);
  assert.equal(n3.core.syncProgress("n2").caughtUp, false, "until its next round");
});

test("store sync: peers: a peer set with this node or a duplicate is refused and changes nothing", () => {
  const h = new Harness(["n1", "n2"]);
  const n1 = h.node("n1");
  assert.throws(() => n1.core.setPeers(["n2", "n1"]), StoreSyncConfigError);
  assert.throws(() => n1.core.setPeers(["n2", "n2"]), /duplicate peer/);
  h.write("n1", { a: "1" }, "all");
  assert.deepEqual(
    h.queue.map((e) => e.to),
    ["n2"],
  );
});
