// Losing the writer a node was catching up from (store_sync.ts, "Losing a writer"): what since rounds with the
// other peers left out of their answers reaches it through digest rounds at once, not at a periodic one.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_STORE_SYNC_LIMITS } from "../../../src/core/store_sync_config.ts";
import type { PeerCursor } from "../../../src/core/store_sync_types.ts";
import type { NodeId } from "../../../src/core/types.ts";
import { Harness, type Node } from "./store_sync_harness.ts";

const entryCount = 1000;
// Small bounds, so that catching up takes many rounds; periodic rounds far away.
const config = {
  antiEntropyIntervalTicks: 1000,
  digestRoundEvery: 4,
  roundTimeoutTicks: 20,
  limits: { ...DEFAULT_STORE_SYNC_LIMITS, pathsPerPullMax: 32, stampsPerMessageMax: 64 },
};
/** The soonest a periodic digest round could start: every round before would have to be a since round. */
const periodicDigestTicks = config.digestRoundEvery * config.antiEntropyIntervalTicks;
const all: NodeId[] = ["n1", "n2", "n3", "n4"];
const survivors: NodeId[] = ["n2", "n3", "n4"];

/**
 * n1, n2 and n3 hold `entryCount` entries, all written through n1. Empty n4 joins through n1 and reads n1's
 * log; then its links to n2 and n3 come up, and its since rounds with them, leaving n1's writes out, reach
 * their heads. Returns while n4 still pulls from n1.
 */
function joinedThroughTheWriter(): Harness {
  const h = new Harness(all, config);
  for (const id of all) h.setPeers(id, id === "n4" ? [] : othersOf(all.slice(0, 3), id));
  for (let i = 0; i < entryCount; i += 10) {
    const paths = Array.from({ length: 10 }, (_, j) => [`certs/${i + j}.pem`, `v${i + j}`]);
    h.write("n1", Object.fromEntries(paths), 1);
  }
  h.deliverAll();
  for (const id of all) h.setPeers(id, othersOf(all, id));
  const n4 = h.node("n4");
  h.linkUp("n4", "n1");
  h.linkUp("n1", "n4");
  runUntil(h, () => n4.core.syncProgress("n1").cursorSeq !== null, 20);
  for (const peer of ["n2", "n3"]) {
    h.linkUp("n4", peer);
    h.linkUp(peer, "n4");
  }
  runUntil(h, () => ["n2", "n3"].every((p) => n4.core.syncProgress(p).caughtUp), 20);
  assert.deepEqual(h.offered("n2"), [], "n2 left n1's writes out");
  assert.ok(n4.store.all().length < entryCount / 2, "n4 still pulls from n1");
  assert.equal(n4.core.syncProgress("n1").caughtUp, false);
  return h;
}

function othersOf(ids: readonly NodeId[], id: NodeId): NodeId[] {
  return ids.filter((p) => p !== id);
}

function runUntil(h: Harness, done: () => boolean, ticksMax: number): void {
  for (let ticks = 0; !done(); ticks++) {
    assert.ok(ticks < ticksMax, `not done within ${ticksMax} ticks`);
    h.runTick();
  }
}

/** Ticks until n4 holds every entry, on a clock where a message takes a tick. */
function ticksUntilComplete(h: Harness, dead: ReadonlySet<NodeId>): number {
  const n4 = h.node("n4");
  let ticks = 0;
  while (n4.store.all().length < entryCount) {
    assert.ok(ticks < periodicDigestTicks, `n4 holds ${n4.store.all().length} after ${ticks} ticks`);
    h.runTick(dead);
    ticks++;
  }
  assert.deepEqual(h.contents("n4"), h.contents("n2"));
  return ticks;
}

/** The digest rounds `node` started from event `from` on, as "peer: reason". */
function digestRounds(node: Node, from: number): string[] {
  return node.events
    .slice(from)
    .flatMap((e) => (e.type === "round-started" && e.kind === "digest" ? [`${e.peer}: ${e.reason}`] : []));
}

function periodicRounds(node: Node): number {
  return node.events.filter((e) => e.type === "round-started" && e.reason === "periodic").length;
}

test("store sync: lost writer: a node whose writer's link goes down mid catch-up pulls the rest from the others at once", () => {
  const h = joinedThroughTheWriter();
  const n4 = h.node("n4");
  const eventsBefore = n4.events.length;
  // kill -9 of n1: nothing more goes to or comes from it, and the others see its link go down.
  const dead = new Set<NodeId>(["n1"]);
  for (const id of survivors) h.linkDown(id, "n1");
  assert.deepEqual(digestRounds(n4, eventsBefore), [
    "n2: n1 lost before we held its writes",
    "n3: n1 lost before we held its writes",
  ]);
  const ticks = ticksUntilComplete(h, dead);
  assert.ok(ticks * 20 < periodicDigestTicks, `${ticks} ticks`);
  assert.equal(periodicRounds(n4), 0, "no periodic round helped");
  // n2 and n3 held n1's writes already: they owe each other nothing.
  for (const id of ["n2", "n3"]) assert.deepEqual(digestRounds(h.node(id), 0), []);
});

test("store sync: lost writer: so does one whose writer is removed from the cluster mid catch-up", () => {
  const h = joinedThroughTheWriter();
  const n4 = h.node("n4");
  const eventsBefore = n4.events.length;
  for (const id of survivors) h.setPeers(id, othersOf(survivors, id));
  assert.deepEqual(digestRounds(n4, eventsBefore), [
    "n2: n1 lost before we held its writes",
    "n3: n1 lost before we held its writes",
  ]);
  const ticks = ticksUntilComplete(h, new Set());
  assert.ok(ticks * 20 < periodicDigestTicks, `${ticks} ticks`);
});

test("store sync: lost writer: so does one restarted with cursors while the writer stays down", () => {
  const h = joinedThroughTheWriter();
  const n4 = h.node("n4");
  // The cursors n4 saved before it crashed: into n2's and n3's logs at their heads, past n1's writes.
  n4.store.saveSyncCursors(["n1", "n2", "n3"].map((peer) => savedCursor(h, peer)));
  const dead = new Set<NodeId>(["n1"]);
  for (const id of ["n2", "n3"]) h.linkDown(id, "n1");
  h.restart("n4", all);
  for (const peer of ["n2", "n3"]) {
    h.linkUp("n4", peer);
    h.linkUp(peer, "n4");
  }
  const ticks = ticksUntilComplete(h, dead);
  assert.ok(ticks * 20 < periodicDigestTicks, `${ticks} ticks`);
  assert.deepEqual(digestRounds(n4, 0).slice(0, 2).sort(), [
    "n2: restarted with cursors",
    "n3: restarted with cursors",
  ]);
});

function savedCursor(h: Harness, peer: NodeId): PeerCursor {
  const seq = h.node("n4").core.syncProgress(peer).cursorSeq;
  assert.ok(seq !== null);
  return { peer, ...h.node(peer).store.identity(), seq };
}

test("store sync: lost writer: a node that held the lost peer's writes owes no digest round", () => {
  const h = joinedThroughTheWriter();
  const n4 = h.node("n4");
  runUntil(h, () => n4.core.syncProgress("n1").caughtUp, 1000);
  assert.equal(n4.store.all().length, entryCount);
  const eventsBefore = n4.events.length;
  h.linkDown("n4", "n1");
  assert.deepEqual(n4.events.slice(eventsBefore), []);
  assert.deepEqual(n4.core.status().roundsInFlight, []);
});

test("store sync: lost writer: an apply past a gap shows the node lacks a write it skipped, so it is owed", () => {
  const h = joinedThroughTheWriter();
  const n4 = h.node("n4");
  runUntil(h, () => n4.core.syncProgress("n1").caughtUp, 1000);
  // n1's apply of "lost" never reaches n4; n2 has it, and n4's next since round with n2 leaves it out.
  h.write("n1", { lost: "x" }, 1);
  h.deliverAll((e) => e.to === "n4");
  h.linkUp("n4", "n2");
  h.deliverAll();
  assert.equal(n4.store.get("lost"), null);
  // The next apply arrives, past the gap: n4 has heard of more of n1's log than its cursor covers.
  h.write("n1", { later: "y" }, 1);
  h.deliverAll();
  assert.equal(n4.core.syncProgress("n1").caughtUp, true, "its latest round left nothing behind");
  const eventsBefore = n4.events.length;
  h.linkDown("n4", "n1");
  assert.deepEqual(digestRounds(n4, eventsBefore), [
    "n2: n1 lost before we held its writes",
    "n3: n1 lost before we held its writes",
  ]);
  h.deliverAll((e) => e.from === "n1" || e.to === "n1");
  assert.equal(n4.store.get("lost")?.deleted, false);
});

test("store sync: lost writer: a since answer offers the writes of a peer whose link has not come up since a restart", () => {
  const h = new Harness(["n1", "n2", "n3"]);
  h.write("n1", { early: "1" }, 0);
  h.deliverAll();
  h.linkUp("n3", "n1");
  h.deliverAll();
  const n3 = h.node("n3");
  n3.store.saveSyncCursors([{ peer: "n1", ...h.node("n1").store.identity(), seq: 1 }]);
  h.restart("n3", ["n1", "n2"]);
  // n1 writes while cut off from n3, which has a cursor into n1's log but no link to it.
  h.write("n1", { late: "2" }, 0);
  h.deliverAll((e) => e.to === "n3");
  h.linkUp("n3", "n2");
  h.deliverAll();
  assert.deepEqual(h.offered("n2"), ["early", "late"], "n1's writes too: its link never came up");
  assert.equal(n3.store.get("late")?.deleted, false);
});
