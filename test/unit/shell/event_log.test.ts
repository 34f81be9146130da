import assert from "node:assert/strict";
import { test } from "node:test";
import { EventLog } from "../../../src/shell/index.ts";

test("event log: keeps the last `capacity` events with ids of this node and run; says when some are gone", () => {
  const log = new EventLog("n1", 3, 1_700_000_000_000);
  let woken = 0;
  const unsubscribe = log.onEvent(() => woken++);
  for (let i = 1; i <= 5; i++) log.emit("drain", { node: `n${i}` });
  unsubscribe();
  log.emit("drain", { node: "n6" });
  assert.equal(woken, 5);
  const all = log.after(0);
  assert.equal(all.lost, true, "events 1 to 3 are gone");
  assert.deepEqual(
    all.events.map((e) => [e.id, e.kind, e.node]),
    [
      ["n1.1700000000000:4", "drain", "n4"],
      ["n1.1700000000000:5", "drain", "n5"],
      ["n1.1700000000000:6", "drain", "n6"],
    ],
  );
  assert.deepEqual(log.after(3), { events: all.events, lost: false });
  assert.deepEqual(log.after(6), { events: [], lost: false });
  assert.equal(log.seqOf("n1.1700000000000:5"), 5);
  assert.equal(log.seqOf("n1.1699999999999:5"), null, "an earlier run of the agent");
  assert.equal(log.seqOf("n2.1700000000000:5"), null, "another node");
  assert.equal(log.seqOf("garbage"), null);
  // A field never overrides what the log sets.
  log.emit("leader", { id: "forged", kind: "forged", leader: "n2" });
  const last = log.after(6).events[0];
  assert.deepEqual([last?.id, last?.kind, last?.leader], ["n1.1700000000000:7", "leader", "n2"]);
});
