import assert from "node:assert/strict";
import { test } from "node:test";
import { Prng } from "../../../src/core/prng.ts";
import { StoreSync, validateStoreSyncConfig } from "../../../src/core/store_sync.ts";
import { DEFAULT_STORE_SYNC_LIMITS } from "../../../src/core/store_sync_config.ts";
import type { StoreSyncLimits } from "../../../src/core/store_sync_types.ts";
import type { NodeId } from "../../../src/core/types.ts";
import { MemoryLocalStore } from "../../support/memory_local_store.ts";
import { completedRounds, Harness, nowWallMs } from "./store_sync_harness.ts";

const encoder = new TextEncoder();

test("store sync: write: acked after minAcks durable acks, never before the peer persisted", () => {
  const h = new Harness(["n1", "n2", "n3"]);
  h.node("n2").autoPersist = false;
  h.node("n3").autoPersist = false;
  const writeId = h.write("n1", { "a/x": "1" }, 1);
  h.deliverAll();
  assert.deepEqual(h.node("n1").results, [], "no result while no peer persisted");
  assert.equal(
    h.sent.some((e) => e.message.type === "apply-ack"),
    false,
  );
  h.persistHeld("n2");
  h.deliverAll();
  assert.deepEqual(h.node("n1").results, [
    {
      writeId,
      hostsOk: ["n2"],
      hostsErr: [{ host: "n3", error: "acknowledgement pending" }],
      acked: true,
      done: false,
    },
  ]);
  h.persistHeld("n3");
  h.deliverAll();
  assert.deepEqual(h.node("n1").results[1], {
    writeId,
    hostsOk: ["n2", "n3"],
    hostsErr: [],
    acked: true,
    done: true,
  });
  assert.equal(h.node("n1").core.status().writesInFlight, 0);
});

test("store sync: write: the timeout reports the missing hosts, and not before it passes", () => {
  const h = new Harness(["n1", "n2", "n3"]);
  const writeId = h.write("n1", { a: "1" }, 2);
  h.deliverAll((e) => e.to === "n3");
  h.tick("n1", 9);
  assert.deepEqual(h.node("n1").results, []);
  h.tick("n1");
  assert.deepEqual(h.node("n1").results, [
    {
      writeId,
      hostsOk: ["n2"],
      hostsErr: [{ host: "n3", error: "no acknowledgement within 10 ticks" }],
      acked: false,
      done: true,
    },
  ]);
});

test("store sync: write: a peer whose link is down is reported as such", () => {
  const h = new Harness(["n1", "n2"]);
  h.node("n1").core.linkDown("n2");
  const writeId = h.write("n1", { a: "1" }, 1);
  h.queue = [];
  h.tick("n1", 10);
  assert.deepEqual(h.node("n1").results, [
    { writeId, hostsOk: [], hostsErr: [{ host: "n2", error: "link down" }], acked: false, done: true },
  ]);
});

test('store sync: write: "all" waits for every peer; 0 resolves at once', () => {
  const h = new Harness(["n1", "n2", "n3"]);
  h.node("n3").autoPersist = false;
  const all = h.write("n1", { a: "1" }, "all");
  h.deliverAll();
  assert.deepEqual(h.node("n1").results, []);
  h.persistHeld("n3");
  h.deliverAll();
  assert.deepEqual(
    h.node("n1").results.map((r) => [r.writeId, r.acked, r.done, r.hostsOk.length]),
    [[all, true, true, 2]],
  );

  const none = h.write("n1", { b: "2" }, 0);
  assert.deepEqual(h.node("n1").results[1], {
    writeId: none,
    hostsOk: [],
    hostsErr: [
      { host: "n2", error: "acknowledgement pending" },
      { host: "n3", error: "acknowledgement pending" },
    ],
    acked: true,
    done: false,
  });
});

test("store sync: write: more acks than peers can never be reached and fails once every peer answered", () => {
  const h = new Harness(["n1", "n2"]);
  h.write("n1", { a: "1" }, 3);
  h.deliverAll();
  const [result] = h.node("n1").results;
  assert.equal(result?.acked, false);
  assert.equal(result?.done, true);
  assert.deepEqual(result?.hostsOk, ["n2"]);
});

test("store sync: write: a large write travels in bounded chunks and is acked only when all arrived", () => {
  const limits: StoreSyncLimits = {
    ...DEFAULT_STORE_SYNC_LIMITS,
    entriesPerMessageMax: 2,
    valueBytesPerMessageMax: 10,
  };
  const h = new Harness(["n1", "n2"], { limits });
  const paths: Record<string, string> = { a: "1", b: "2", c: "3", big: "x".repeat(50), d: "4" };
  h.write("n1", paths, 1);
  const applies = h.queue.filter((e) => e.message.type === "apply");
  const sizes = applies.map((e) => (e.message.type === "apply" ? e.message.entries.map((x) => x.path) : []));
  assert.deepEqual(sizes, [["a", "b"], ["c"], ["big"], ["d"]]);
  // Every chunk but the last arrives and is acked: not enough.
  h.deliverAll((e) => e.message.type === "apply" && e.message.chunk === 3);
  assert.deepEqual(h.node("n1").results, []);
  h.deliver(applies[3]!);
  h.deliverAll();
  assert.equal(h.node("n1").results[0]?.acked, true);
});

test("store sync: anti-entropy: a link coming up repairs both directions, each end pulling what it lacks", () => {
  const h = new Harness(["n1", "n2"]);
  h.write("n1", { shared: "old", "only/n1": "a" }, 0);
  h.queue = [];
  h.write("n2", { shared: "new", "only/n2": "b", gone: "c" }, 0);
  h.write("n2", { gone: null }, 0);
  h.queue = [];
  assert.notDeepEqual(h.contents("n1"), h.contents("n2"));
  h.linkUp("n1", "n2");
  h.linkUp("n2", "n1");
  h.deliverAll();
  assert.deepEqual(h.contents("n1"), h.contents("n2"));
  assert.match(h.contents("n1").get("shared")!, /^new@/);
  assert.match(h.contents("n1").get("gone")!, /^<deleted>@/);
  assert.equal(completedRounds(h.node("n1")), 1);
  assert.equal(completedRounds(h.node("n2")), 1);
  assert.deepEqual(h.node("n1").store.digest(), h.node("n2").store.digest());
});

test("store sync: anti-entropy: a fresh empty node bootstraps through the same rounds", () => {
  const h = new Harness(["n1", "n2", "n3"]);
  for (let i = 0; i < 50; i++) h.write(i % 2 === 0 ? "n1" : "n2", { [`k/${i}`]: `v${i}` }, 0);
  h.deliverAll((e) => e.to === "n3");
  assert.equal(h.node("n3").store.all().length, 0);
  h.linkUp("n3", "n1");
  h.linkUp("n1", "n3");
  h.deliverAll();
  assert.equal(h.node("n3").store.all().length, 50);
  assert.deepEqual(h.contents("n3"), h.contents("n1"));
});

test("store sync: anti-entropy: a round only pulls, so no entry crosses twice when both ends start one", () => {
  const h = new Harness(["n1", "n2"]);
  h.write("n1", { a: "1" }, 0);
  h.write("n2", { b: "2" }, 0);
  h.queue = [];
  h.sent.length = 0;
  h.linkUp("n1", "n2");
  h.linkUp("n2", "n1");
  h.deliverAll();
  assert.deepEqual(h.contents("n1"), h.contents("n2"));
  const moved = h.sent.flatMap(({ from, message }) =>
    message.type === "entries" ? message.entries.map((e) => `${e.path} from ${from}`) : [],
  );
  assert.deepEqual(moved.sort(), ["a from n1", "b from n2"]);
});

test("store sync: anti-entropy: what two peers both hold is pulled from one of them, not both", () => {
  const h = new Harness(["n1", "n2", "n3"]);
  for (let i = 0; i < 20; i++) h.write("n1", { [`k/${i}`]: `v${i}` }, 0);
  h.deliverAll((e) => e.to === "n3");
  h.sent.length = 0;
  h.linkUp("n3", "n1");
  h.linkUp("n3", "n2");
  h.deliverAll();
  assert.deepEqual(h.contents("n3"), h.contents("n1"));
  const received = h.sent.flatMap(({ to, message }) =>
    to === "n3" && message.type === "entries" ? message.entries : [],
  );
  assert.equal(received.length, 20);
});

test("store sync: anti-entropy: every message stays within its bounds; a big divergence takes several rounds", () => {
  const limits: StoreSyncLimits = {
    entriesPerMessageMax: 3,
    valueBytesPerMessageMax: 1024,
    pathsPerPullMax: 4,
    valueBytesPerPullMax: 1024 * 1024,
    stampsPerMessageMax: 6,
  };
  const h = new Harness(["n1", "n2"], { limits }, 8);
  for (let i = 0; i < 40; i++) h.write("n1", { [`a/${i}`]: `v${i}` }, 0);
  for (let i = 0; i < 40; i++) h.write("n2", { [`b/${i}`]: `w${i}` }, 0);
  h.queue = [];
  h.sent.length = 0;
  h.linkUp("n1", "n2");
  h.linkUp("n2", "n1");
  h.deliverAll();
  assert.deepEqual(h.contents("n1"), h.contents("n2"));
  assert.equal(h.node("n1").store.all().length, 80);
  assert.ok(completedRounds(h.node("n1")) >= 8, `rounds: ${completedRounds(h.node("n1"))}`);
  for (const { message } of h.sent) {
    if (message.type === "entries") assert.ok(message.entries.length <= 3);
    if (message.type === "pull") assert.ok(message.paths.length <= 4);
    // Whole buckets are sent while they fit; one bucket over the bound may go alone.
    if (message.type === "stamps" && message.buckets.length > 1) assert.ok(message.stamps.length <= 6);
    // A since answer is bounded by what one pull can ask for.
    if (message.type === "changes") assert.ok(message.stamps.length <= 4);
  }
  const pulledPerRound = new Map<string, number>();
  for (const { to, message } of h.sent) {
    if (message.type === "entries") {
      const round = `${to}/${message.roundId}`;
      pulledPerRound.set(round, (pulledPerRound.get(round) ?? 0) + message.entries.length);
    }
  }
  assert.ok(Math.max(...pulledPerRound.values()) <= 4);
});

test("store sync: anti-entropy: a pull answer is bounded in value bytes; what it leaves out the next round pulls", () => {
  const limits: StoreSyncLimits = { ...DEFAULT_STORE_SYNC_LIMITS, valueBytesPerPullMax: 250 };
  const h = new Harness(["n1", "n2"], { limits });
  for (let i = 0; i < 10; i++) h.write("n1", { [`big/${i}`]: "v".repeat(100) }, 0);
  h.queue = [];
  h.sent.length = 0;
  h.linkUp("n2", "n1");
  h.deliverAll();
  assert.deepEqual(h.contents("n2"), h.contents("n1"));
  const answers = h.sent.filter((e) => e.message.type === "entries" && e.message.last).length;
  assert.equal(answers, 4, "3 entries (300 bytes, the last one crossing 250) per answer: 4 rounds");
  for (const { message } of h.sent) {
    if (message.type === "entries") assert.ok(message.entries.length <= 3);
  }
  // The cursor moved only once everything was pulled: a later round reads nothing.
  h.sent.length = 0;
  h.linkUp("n2", "n1");
  h.deliverAll();
  const changes = h.firstSent("changes");
  assert.deepEqual(changes.stamps, []);
});

test("store sync: duplicated and reordered messages are harmless", () => {
  const h = new Harness(["n1", "n2", "n3"]);
  h.write("n1", { a: "1", b: "2" }, 2);
  h.write("n2", { a: "3" }, 1);
  h.write("n3", { c: null }, 1);
  h.linkUp("n1", "n2");
  h.linkUp("n3", "n1");
  // Deliver everything twice, newest first, a few times over.
  for (let pass = 0; pass < 5 && h.queue.length > 0; pass++) {
    const batch = h.queue.reverse();
    h.queue = [];
    for (const envelope of batch) {
      h.deliver(envelope);
      h.deliver(envelope);
    }
  }
  h.deliverAll();
  h.linkUp("n2", "n3");
  h.deliverAll();
  assert.deepEqual(h.contents("n1"), h.contents("n2"));
  assert.deepEqual(h.contents("n2"), h.contents("n3"));
  for (const id of ["n1", "n2", "n3"]) {
    const results = h.node(id).results;
    const resolved = new Set(results.map((r) => r.writeId));
    assert.equal(resolved.size, 1, `${id}: one write`);
    assert.ok(results.every((r) => r.acked));
    assert.ok(results.length <= 2, `${id}: resolved once, finished at most once`);
    assert.equal(h.node(id).core.status().writesInFlight, 0);
  }
});

test("store sync: anti-entropy: a round with no answer is abandoned; the next periodic round repairs", () => {
  const h = new Harness(["n1", "n2"], { antiEntropyIntervalTicks: 8, roundTimeoutTicks: 3 });
  h.write("n2", { a: "1" }, 0);
  h.queue = [];
  h.linkUp("n1", "n2");
  h.deliverAll((e) => e.message.type === "changes");
  assert.deepEqual(h.node("n1").core.status().roundsInFlight, ["n2"]);
  h.tick("n1", 3);
  assert.deepEqual(h.node("n1").core.status().roundsInFlight, []);
  assert.ok(h.node("n1").events.some((e) => e.type === "round-abandoned"));
  assert.equal(h.node("n1").store.get("a"), null);
  h.tick("n1", 5);
  h.deliverAll();
  assert.equal(h.node("n1").store.get("a")?.deleted, false);
});

test("store sync: anti-entropy: periodic rounds go round robin over the peers; every Nth with a peer compares digests", () => {
  const h = new Harness(["n1", "n2", "n3"], { antiEntropyIntervalTicks: 4, digestRoundEvery: 2 });
  const roundsTo = () =>
    h.sent.flatMap((e) =>
      e.message.type === "since" || e.message.type === "digest" ? [`${e.message.type} ${e.to}`] : [],
    );
  h.tick("n1", 3);
  assert.deepEqual(roundsTo(), []);
  for (let i = 0; i < 4; i++) {
    h.tick("n1", 4);
    h.deliverAll();
  }
  assert.deepEqual(roundsTo(), ["since n2", "since n3", "digest n2", "digest n3"]);
});

/** n1 and n2 in step (n1's cursor into n2's log moved past n2's first writes), then n2 writes unseen. */
function cursorThenMissedWrites(): Harness {
  const h = new Harness(["n1", "n2"]);
  for (let i = 0; i < 30; i++) h.write("n2", { [`old/${i}`]: `v${i}` }, 0);
  h.deliverAll();
  h.linkUp("n1", "n2");
  h.deliverAll();
  h.write("n2", { "new/a": "1", "new/b": "2", "old/3": "changed" }, 0);
  h.queue = [];
  h.sent.length = 0;
  return h;
}

test("store sync: anti-entropy: a since round reads only the changes after the cursor, whatever the store's size", () => {
  const h = cursorThenMissedWrites();
  h.linkUp("n1", "n2");
  h.deliverAll();
  assert.deepEqual(h.contents("n1"), h.contents("n2"));
  const offered = h.offered();
  assert.deepEqual(offered.sort(), ["new/a", "new/b", "old/3"]);
});

test("store sync: anti-entropy: applies keep the cursor current, so a since round under steady writes reads nothing", () => {
  const h = new Harness(["n1", "n2"]);
  h.write("n1", { first: "1" }, 0);
  h.deliverAll();
  h.linkUp("n2", "n1");
  h.deliverAll();
  for (let i = 0; i < 5; i++) h.write("n1", { [`k/${i}`]: "v", [`j/${i}`]: "w" }, 1);
  h.deliverAll();
  h.sent.length = 0;
  h.linkUp("n2", "n1");
  h.deliverAll();
  const since = h.firstSent("since");
  assert.equal(since.afterSeq, h.node("n1").store.lastSeq());
  const changes = h.firstSent("changes");
  assert.deepEqual(changes.stamps, []);
});

test("store sync: anti-entropy: an apply after a lost one leaves the cursor before the gap", () => {
  const h = new Harness(["n1", "n2"]);
  h.write("n1", { first: "1" }, 0);
  h.deliverAll();
  h.linkUp("n2", "n1");
  h.deliverAll();
  h.write("n1", { lost: "x" }, 0);
  h.queue = [];
  h.write("n1", { arrived: "y" }, 0);
  h.deliverAll();
  assert.equal(h.node("n2").store.get("lost"), null);
  h.sent.length = 0;
  h.linkUp("n2", "n1");
  h.deliverAll();
  const changes = h.firstSent("changes");
  assert.deepEqual(
    changes.stamps.map((s) => s.path),
    ["lost", "arrived"],
  );
  assert.deepEqual(h.contents("n2"), h.contents("n1"));
});

test("store sync: anti-entropy: a since answer leaves out the writes of peers the asker reads directly", () => {
  /** n2 reads n1's log, then asks n3 (its link to n1 up or down): what does n3 offer? */
  const offeredByN3 = (linkToN1: "up" | "down") => {
    const h = new Harness(["n1", "n2", "n3"]);
    for (let i = 0; i < 10; i++) h.write("n1", { [`n1/${i}`]: "x" }, 0);
    h.write("n3", { "n3/a": "y" }, 0);
    h.deliverAll();
    h.linkUp("n2", "n1");
    h.deliverAll();
    if (linkToN1 === "down") h.node("n2").core.linkDown("n1");
    h.sent.length = 0;
    h.linkUp("n2", "n3");
    h.deliverAll();
    return h.offered("n3");
  };
  assert.deepEqual(offeredByN3("up"), ["n3/a"]);
  // Cut off from n1, n2 needs n3 to relay n1's writes.
  assert.equal(offeredByN3("down").length, 11);
});

test("store sync: anti-entropy: cursors are saved once per interval when they moved; a restart resumes from them", () => {
  const config = { antiEntropyIntervalTicks: 4 };
  const h = new Harness(["n1", "n2"], config);
  for (let i = 0; i < 5; i++) h.write("n1", { [`k/${i}`]: "v" }, 0);
  h.deliverAll();
  h.linkUp("n2", "n1");
  h.deliverAll();
  const n2 = h.node("n2");
  assert.deepEqual(n2.store.syncCursors(), []);
  h.tick("n2", 3);
  assert.deepEqual(n2.store.syncCursors(), []);
  h.tick("n2");
  const { storeId, createdWallMs } = h.node("n1").store.identity();
  const seq = h.node("n1").store.lastSeq();
  assert.deepEqual(n2.store.syncCursors(), [{ peer: "n1", storeId, createdWallMs, seq }]);
  // A new core on the same store (a restart) asks for the changes after the saved cursor only.
  const restarted = new StoreSync(
    {
      selfId: "n2",
      peers: ["n1"],
      writeTimeoutTicks: 10,
      antiEntropyIntervalTicks: 4,
      roundTimeoutTicks: 5,
      digestRoundEvery: 4,
      limits: DEFAULT_STORE_SYNC_LIMITS,
    },
    n2.store,
  );
  restarted.linkUp("n1");
  const since = restarted.ready().messages.find((e) => e.message.type === "since")?.message;
  assert.equal(since?.type, "since");
  assert.deepEqual([since.storeId, since.afterSeq], [storeId, seq]);
});

test("store sync: anti-entropy: rounds that end where the cursor stands save nothing (an idle node writes nothing)", () => {
  const config = { antiEntropyIntervalTicks: 4 };
  const h = new Harness(["n1", "n2"], config);
  h.write("n1", { "k/a": "v" }, 0);
  h.deliverAll();
  h.linkUp("n2", "n1");
  h.deliverAll();
  const n2 = h.node("n2");
  let saves = 0;
  const save = n2.store.saveSyncCursors.bind(n2.store);
  n2.store.saveSyncCursors = (cursors) => {
    saves += 1;
    save(cursors);
  };
  const rounds = () => n2.events.filter((e) => e.type === "round-completed").length;
  const roundsBefore = rounds();
  for (let i = 0; i < 5; i++) {
    h.tick("n2", 4);
    h.deliverAll();
  }
  assert.ok(rounds() >= roundsBefore + 4, "the periodic rounds ran");
  assert.equal(saves, 1, "the first cursor, then nothing while n1 writes nothing");
  h.write("n1", { "k/b": "v" }, 0);
  h.deliverAll();
  h.tick("n2", 4);
  h.deliverAll();
  assert.equal(saves, 2, "a moved cursor is saved at the next interval");
});

test("store sync: anti-entropy: a cursor into another store (wiped, replaced) reads the log from the start", () => {
  const h = cursorThenMissedWrites();
  const n2 = h.node("n2");
  const { storeId } = n2.store.identity();
  n2.core.step("n1", { type: "since", roundId: 7, storeId: storeId + 1, afterSeq: 30, skip: [] });
  h.drain(n2);
  const answer = h.firstSent("changes");
  assert.equal(answer.storeId, storeId);
  assert.equal(answer.stamps.length, 32);
});

test("store sync: anti-entropy: a since answer leaves out what the asker wrote itself with its current store", () => {
  const h = new Harness(["n1", "n2"]);
  for (let i = 0; i < 10; i++) h.write("n1", { [`n1/${i}`]: "x" }, 0);
  h.write("n2", { "n2/a": "y" }, 0);
  h.deliverAll();
  h.sent.length = 0;
  h.linkUp("n1", "n2");
  h.deliverAll();
  const offered = h.offered();
  assert.deepEqual(offered, ["n2/a"]);
});

test("store sync: messages from nodes that are not peers change nothing", () => {
  const h = new Harness(["n1", "n2"]);
  const stranger = new MemoryLocalStore({ nodeId: "n9" });
  const entries = stranger.writeLocal([{ path: "evil", value: encoder.encode("x") }], nowWallMs);
  h.node("n1").core.step("n9", { type: "apply", writeId: "w", chunk: 0, entries, seqs: null });
  h.drain(h.node("n1"));
  assert.equal(h.node("n1").store.get("evil"), null);
  assert.deepEqual(h.queue, []);
  assert.equal(h.node("n1").events[0]?.type, "message-ignored");
});

test("store sync: a failed persist sends no ack and fails the round it served", () => {
  const h = new Harness(["n1", "n2"]);
  h.node("n2").autoPersist = false;
  h.write("n1", { a: "1" }, 1);
  h.deliverAll();
  const n2 = h.node("n2");
  const [request] = n2.held.splice(0);
  n2.core.persistFailed(request!.token, "disk full");
  h.drain(n2);
  h.deliverAll();
  assert.equal(h.sent.filter((e) => e.message.type === "apply-ack").length, 0);
  assert.equal(n2.core.status().persistsInFlight, 0);
});

/** One random input to a random node of `h`: a write, a delivered, dropped or duplicated message, a link event. */
function randomInput(h: Harness, rng: Prng, ids: readonly NodeId[]): void {
  const id = rng.pick(ids);
  const node = h.node(id);
  const roll = rng.next();
  if (roll < 0.2) {
    const minAcks = rng.chance(0.2) ? "all" : rng.intBetween(0, ids.length);
    h.write(id, { [`k/${rng.intBetween(0, 20)}`]: rng.chance(0.2) ? null : `v${rng.next()}` }, minAcks);
  } else if (roll < 0.7 && h.queue.length > 0) {
    const envelope = h.queue.splice(rng.intBetween(0, Math.min(3, h.queue.length - 1)), 1)[0]!;
    if (rng.chance(0.9)) h.deliver(envelope);
    if (rng.chance(0.05)) h.queue.push(envelope);
  } else if (roll < 0.8) {
    node.autoPersist = rng.chance(0.7);
    h.persistHeld(id);
  } else if (roll < 0.9 && ids.length > 1) {
    const peer = rng.pick(ids.filter((p) => p !== id));
    if (rng.chance(0.5)) h.linkUp(id, peer);
    else {
      node.core.linkDown(peer);
      h.drain(node);
    }
  } else {
    h.tick(id, rng.intBetween(1, 3));
  }
}

test("store sync: ticksUntilTimer: on random histories, no tick before the one it names does anything", () => {
  let slept = 0;
  let actedOnTime = 0;
  for (let seed = 0; seed < 60; seed++) {
    const rng = new Prng(`ticks-until-timer-${seed}`);
    const ids = ["n1", "n2", "n3"].slice(0, rng.intBetween(1, 3));
    const h = new Harness(ids, {
      writeTimeoutTicks: rng.intBetween(1, 30),
      antiEntropyIntervalTicks: rng.intBetween(1, 40),
      roundTimeoutTicks: rng.intBetween(1, 20),
      digestRoundEvery: rng.intBetween(1, 4),
    });
    for (let step = 0; step < 300; step++) {
      randomInput(h, rng, ids);
      if (!rng.chance(0.2)) continue;
      const node = h.node(rng.pick(ids));
      const ticks = node.core.ticksUntilTimer();
      assert.ok(ticks >= 1);
      const quiet = Number.isFinite(ticks) ? ticks - 1 : 100;
      for (let i = 0; i < quiet; i++) {
        node.core.tick();
        assert.ok(!node.core.hasReady(), `seed ${seed}: ${node.id} acted ${i + 1} ticks in, before ${ticks}`);
      }
      if (quiet > 0) slept++;
      if (!Number.isFinite(ticks)) continue;
      node.core.tick();
      if (node.core.hasReady()) actedOnTime++;
      h.drain(node);
    }
  }
  // Not vacuous: the bound let nodes sleep, and was often exact.
  assert.ok(slept > 500, `slept ${slept} times`);
  assert.ok(actedOnTime > 500, `acted on the named tick ${actedOnTime} times`);
});

test("store sync: ticksUntilTimer: an idle node sleeps until its next periodic round; with no peer up, for good", () => {
  const h = new Harness(["n1", "n2"], { antiEntropyIntervalTicks: 40, roundTimeoutTicks: 5 });
  const n1 = h.node("n1");
  assert.equal(n1.core.ticksUntilTimer(), 40);
  h.tick("n1", 39);
  assert.equal(n1.core.ticksUntilTimer(), 1);
  h.tick("n1");
  // A round in flight: its timeout comes first.
  assert.deepEqual(n1.core.status().roundsInFlight, ["n2"]);
  assert.equal(n1.core.ticksUntilTimer(), 5);
  h.deliverAll();
  assert.equal(n1.core.ticksUntilTimer(), 40);
  // A pending write: its timeout.
  h.write("n1", { a: "1" }, 1, 12);
  assert.equal(n1.core.ticksUntilTimer(), 12);
  h.deliverAll();
  assert.equal(n1.core.ticksUntilTimer(), 40);
  n1.core.linkDown("n2");
  h.drain(n1);
  // The cursor the round moved is still to be saved; after that, nothing.
  h.tick("n1", n1.core.ticksUntilTimer());
  assert.equal(n1.store.syncCursors().length, 1);
  assert.equal(n1.core.ticksUntilTimer(), Number.POSITIVE_INFINITY);
});

test("store sync: config: impossible settings are refused", () => {
  const problems = validateStoreSyncConfig({
    selfId: "n1",
    peers: ["n1", "n2", "n2"],
    writeTimeoutTicks: 0,
    antiEntropyIntervalTicks: 1,
    roundTimeoutTicks: 1.5,
    digestRoundEvery: 0,
    limits: { ...DEFAULT_STORE_SYNC_LIMITS, pathsPerPullMax: 0 },
  });
  assert.deepEqual(
    problems.map((p) => p.key),
    [
      "writeTimeoutTicks",
      "digestRoundEvery",
      "roundTimeoutTicks",
      "limits.pathsPerPullMax",
      "peers",
      "peers",
    ],
  );
});
