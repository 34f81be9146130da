import assert from "node:assert/strict";
import { test } from "node:test";
import pino from "pino";
import { versionKey } from "../../../src/core/lww.ts";
import type { NodeId } from "../../../src/core/types.ts";
import { Replicator } from "../../../src/store/replicator.ts";
import { SqliteLocalStore } from "../../../src/store/sqlite_store.ts";
import { STORE_APPLY_CHANNEL } from "../../../src/store/store_wire.ts";
import type { LocalStore } from "../../../src/store/types.ts";
import { MemoryNetwork } from "../../support/memory_mesh.ts";

const encoder = new TextEncoder();
const valueBytesMax = 1024;

interface GroupFleet {
  network: MemoryNetwork;
  replicator: Replicator;
  store: LocalStore;
  /** writeLocal calls on n1: one per transaction (fsync). */
  localCommits(): number;
  close(): void;
}

/** n1 writes through a store that counts its local commits; peers n2, n3; links not yet up. */
function groupFleet(): GroupFleet {
  const network = new MemoryNetwork();
  const ids: NodeId[] = ["n1", "n2", "n3"];
  let localCommits = 0;
  const closers: Array<() => void> = [network.close.bind(network)];
  let writer: { replicator: Replicator; store: LocalStore } | undefined;
  for (const id of ids) {
    const opened = SqliteLocalStore.open({ path: ":memory:", nodeId: id, valueBytesMax });
    const store =
      id === "n1"
        ? new Proxy(opened, {
            get(target, key, receiver) {
              const member = Reflect.get(target, key, receiver);
              if (typeof member !== "function") return member;
              if (key !== "writeLocal") return member.bind(target);
              return (...args: Parameters<LocalStore["writeLocal"]>) => {
                localCommits++;
                return target.writeLocal(...args);
              };
            },
          })
        : opened;
    const replicator = new Replicator({
      selfId: id,
      peers: ids.filter((p) => p !== id),
      readOnly: false,
      store,
      mesh: network.join(id),
      logger: pino({ level: "silent" }),
      writeTimeoutMs: 2000,
      antiEntropyIntervalMs: 60_000,
      tickMs: 5,
      valueBytesMax,
    });
    replicator.start();
    closers.push(() => {
      replicator.stop();
      opened.close();
    });
    if (id === "n1") writer = { replicator, store };
  }
  assert.ok(writer);
  return {
    network,
    ...writer,
    localCommits: () => localCommits,
    close: () => {
      for (const close of closers) close();
    },
  };
}

test("replicator: group commit: writes of one turn share one transaction and one apply per peer", async (t) => {
  const f = groupFleet();
  t.after(() => f.close());
  f.network.connectAll();
  const outcomes = await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      f.replicator.write(
        [
          { path: `group/${i}/a`, value: encoder.encode(`${i}a`) },
          { path: `group/${i}/b`, value: null },
        ],
        { minAcks: 1 },
      ),
    ),
  );
  assert.equal(f.localCommits(), 1);
  assert.equal(f.network.sendCount("n1", "n2", STORE_APPLY_CHANNEL), 1);
  outcomes.forEach((outcome, i) => {
    assert.equal(outcome.acked, true);
    // Each request gets back its own entries, in its own order.
    assert.deepEqual(
      outcome.entries.map((e) => [e.path, e.deleted]),
      [
        [`group/${i}/a`, false],
        [`group/${i}/b`, true],
      ],
    );
  });
  const versions = outcomes.flatMap((o) => o.entries.map((e) => versionKey(e.version)));
  assert.deepEqual(versions, [...versions].sort(), "versions follow arrival order");
});

test("replicator: group commit: requests with different min_acks in one transaction are tallied apart", async (t) => {
  const f = groupFleet();
  t.after(() => f.close());
  f.network.connect("n1", "n2");
  const [one, all] = await Promise.all([
    f.replicator.write([{ path: "one", value: encoder.encode("1") }], { minAcks: 1 }),
    f.replicator.write([{ path: "all", value: encoder.encode("2") }], { minAcks: "all", timeoutMs: 50 }),
  ]);
  assert.equal(f.localCommits(), 1);
  assert.equal(one?.acked, true);
  assert.equal(all?.acked, false);
  assert.deepEqual(
    all?.hostsErr.map((h) => h.host),
    ["n3"],
  );
  assert.deepEqual([one?.entries[0]?.path, all?.entries[0]?.path], ["one", "all"]);
});

test("replicator: group commit: a failed commit fails every request of the group and stores nothing", async (t) => {
  const f = groupFleet();
  t.after(() => f.close());
  f.network.connectAll();
  const results = await Promise.allSettled([
    f.replicator.write([{ path: "fine", value: encoder.encode("ok") }], { minAcks: 1 }),
    f.replicator.write([{ path: "huge", value: new Uint8Array(valueBytesMax + 1) }], { minAcks: 1 }),
  ]);
  assert.deepEqual(
    results.map((r) => r.status),
    ["rejected", "rejected"],
  );
  const reasons = results.map((r) => (r.status === "rejected" ? String(r.reason) : ""));
  assert.equal(reasons[0], reasons[1]);
  assert.equal(f.store.get("fine"), null);
  // The next turn's write commits on its own.
  const later = await f.replicator.write([{ path: "fine", value: encoder.encode("ok") }], { minAcks: 1 });
  assert.equal(later.acked, true);
});
