import assert from "node:assert/strict";
import { test } from "node:test";
import {
  JournalLanes,
  JournalLanesError,
  type LaneEntry,
  watermarkAfter,
} from "../../../src/core/journal_lanes.ts";

const options = { maxAttempts: 3, retryBaseMs: 100, retryMaxMs: 250, concurrency: 4 };

function entry(id: string, key: string | null, keySeq = 0, origin = "n1"): LaneEntry {
  return { id, origin, key, keySeq };
}

const ids = (entries: LaneEntry[]) => entries.map((e) => e.id);

test("journal lanes: a lane applies in its origin's order, whatever order the entries arrive in", () => {
  const lanes = new JournalLanes(options);
  lanes.offer(entry("c", "user:ann", 3), 0);
  lanes.offer(entry("b", "user:ann", 2), 0);
  assert.deepEqual(ids(lanes.due(0)), [], "waits for keySeq 1");
  assert.deepEqual(lanes.depth(), { waiting: 2, running: 0, blocked: 2 });
  lanes.offer(entry("a", "user:ann", 1), 0);
  assert.deepEqual(ids(lanes.due(0)), ["a"]);
  assert.deepEqual(ids(lanes.due(0)), [], "one at a time in a lane");
  assert.deepEqual(lanes.outcomeOf("a", true), { kind: "applied" });
  assert.deepEqual(lanes.finished("a", true, 0), { kind: "applied" });
  assert.deepEqual(watermarkAfter(entry("a", "user:ann", 1)), { origin: "n1", key: "user:ann", done: 1 });
  assert.equal(watermarkAfter(entry("z", null)), null);
  assert.deepEqual(ids(lanes.due(0)), ["b"]);
  lanes.finished("b", true, 0);
  assert.deepEqual(ids(lanes.due(0)), ["c"]);
});

test("journal lanes: a failing entry backs off and holds back only its own lane; then it is given up", () => {
  const lanes = new JournalLanes(options);
  lanes.offer(entry("bad", "k1", 1), 0);
  lanes.offer(entry("after-bad", "k1", 2), 0);
  lanes.offer(entry("other", "k2", 1), 0);
  lanes.offer(entry("loose", null), 0);
  assert.deepEqual(ids(lanes.due(0)), ["bad", "other", "loose"]);
  assert.deepEqual(lanes.outcomeOf("bad", false), { kind: "retry" });
  assert.deepEqual(lanes.finished("bad", false, 0), { kind: "retry", attempts: 1, atMs: 100 });
  lanes.finished("other", true, 0);
  lanes.finished("loose", true, 0);
  assert.equal(lanes.nextRetryAtMs(), 100);
  assert.deepEqual(ids(lanes.due(99)), []);
  assert.deepEqual(ids(lanes.due(100)), ["bad"]);
  assert.deepEqual(lanes.finished("bad", false, 100), { kind: "retry", attempts: 2, atMs: 300 });
  assert.deepEqual(ids(lanes.due(300)), ["bad"]);
  assert.deepEqual(lanes.outcomeOf("bad", false), { kind: "dead", attempts: 3 });
  assert.deepEqual(lanes.finished("bad", false, 300), { kind: "dead", attempts: 3 });
  // Given up: its lane moves on.
  assert.deepEqual(ids(lanes.due(300)), ["after-bad"]);
  assert.equal(lanes.nextRetryAtMs(), null);
});

test("journal lanes: backoff doubles up to its cap", () => {
  const lanes = new JournalLanes({ ...options, maxAttempts: 10 });
  lanes.offer(entry("x", null), 0);
  const waits: number[] = [];
  let now = 0;
  for (let i = 0; i < 4; i++) {
    lanes.due(now);
    const result = lanes.finished("x", false, now);
    assert.equal(result.kind, "retry");
    if (result.kind === "retry") {
      waits.push(result.atMs - now);
      now = result.atMs;
    }
  }
  assert.deepEqual(waits, [100, 200, 250, 250]);
});

test("journal lanes: duplicates are ignored; no more than `concurrency` run at once", () => {
  const lanes = new JournalLanes({ ...options, concurrency: 2 });
  for (const id of ["a", "b", "c"]) lanes.offer(entry(id, null), 0);
  assert.deepEqual(lanes.offer(entry("a", null), 0), { kind: "duplicate" });
  assert.deepEqual(ids(lanes.due(0)), ["a", "b"]);
  assert.deepEqual(lanes.offer(entry("a", null), 0), { kind: "duplicate" }, "running: still a duplicate");
  assert.deepEqual(ids(lanes.due(0)), []);
  lanes.finished("a", true, 0);
  assert.deepEqual(ids(lanes.due(0)), ["c"]);
});

test("journal lanes: a restart resumes each lane after its stored watermark", () => {
  const lanes = new JournalLanes(options);
  lanes.restore([{ origin: "n2", key: "k", done: 4 }]);
  lanes.offer(entry("six", "k", 6, "n2"), 0);
  assert.deepEqual(ids(lanes.due(0)), []);
  lanes.offer(entry("five", "k", 5, "n2"), 0);
  assert.deepEqual(ids(lanes.due(0)), ["five"]);
  // The same key from another origin is another lane.
  lanes.offer(entry("other-origin", "k", 1, "n3"), 0);
  assert.deepEqual(ids(lanes.due(0)), ["other-origin"]);
});

test("journal lanes: an origin that numbers a lane again (its journal lost) is followed, not stalled", () => {
  const lanes = new JournalLanes(options);
  lanes.restore([{ origin: "n2", key: "k", done: 40 }]);
  assert.deepEqual(lanes.offer(entry("new-1", "k", 1, "n2"), 0), {
    kind: "queued",
    renumbered: true,
    unordered: false,
  });
  assert.deepEqual(ids(lanes.due(0)), ["new-1"]);
  // An entry of the old numbering still waiting at a place the new one reaches applies on its own.
  lanes.offer(entry("new-3", "k", 3, "n2"), 0);
  assert.deepEqual(lanes.offer(entry("other-3", "k", 3, "n2"), 0), {
    kind: "queued",
    renumbered: false,
    unordered: true,
  });
  assert.deepEqual(ids(lanes.due(0)), ["other-3"]);
});

test("journal lanes: misuse is refused", () => {
  assert.throws(() => new JournalLanes({ ...options, maxAttempts: 0 }), RangeError);
  assert.throws(() => new JournalLanes({ ...options, concurrency: 0 }), RangeError);
  assert.throws(() => new JournalLanes({ ...options, retryMaxMs: 1 }), RangeError);
  const lanes = new JournalLanes(options);
  assert.throws(() => lanes.finished("nope", true, 0), JournalLanesError);
  assert.throws(() => lanes.offer(entry("z", "k", 0), 0), JournalLanesError);
});

test("journal lanes: a lane pruned at its origin starts at the floor unless its earlier entries wait here", () => {
  const lanes = new JournalLanes(options);
  // Joined later: keySeq 9 arrives first, then 8, both saying 1-7 were pruned.
  lanes.offer({ ...entry("i", "user:ann", 9), keyFloor: 7 }, 0);
  assert.deepEqual(ids(lanes.due(0)), [], "waits for 8, which is not pruned");
  lanes.offer({ ...entry("h", "user:ann", 8), keyFloor: 7 }, 0);
  assert.deepEqual(ids(lanes.due(0)), ["h"]);
  lanes.finished("h", true, 0);
  assert.deepEqual(ids(lanes.due(0)), ["i"]);
  // A node that received keySeq 2 before goes through it: the floor does not skip what waits here.
  lanes.offer(entry("b2", "user:bob", 2), 0);
  lanes.offer({ ...entry("b8", "user:bob", 8), keyFloor: 7 }, 0);
  assert.deepEqual(ids(lanes.due(0)), [], "still waits for keySeq 1");
  // A blocked entry right after the floor becomes ready when the floor arrives with a later one.
  lanes.offer(entry("c5", "user:cy", 5), 0);
  assert.deepEqual(ids(lanes.due(0)), []);
  lanes.offer({ ...entry("c6", "user:cy", 6), keyFloor: 4 }, 0);
  assert.deepEqual(ids(lanes.due(0)), ["c5"]);
});
