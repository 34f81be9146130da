import assert from "node:assert/strict";
import { test } from "node:test";
import pino from "pino";
import { DEFAULT_STORE_SYNC_LIMITS } from "../../../src/core/store_sync_config.ts";
import type { StoreSyncMessage } from "../../../src/core/store_sync_types.ts";
import type { NodeId } from "../../../src/core/types.ts";
import { Replicator, type ReplicatorOptions } from "../../../src/store/replicator.ts";
import { SqliteLocalStore } from "../../../src/store/sqlite_store.ts";
import {
  encodeStoreMessage,
  STORE_APPLY_CHANNEL,
  STORE_SYNC_CHANNEL,
  storeMessageDecoder,
} from "../../../src/store/store_wire.ts";
import {
  type LocalStore,
  ReadOnlyReplicaError,
  type StoreChange,
  type WriteOutcome,
} from "../../../src/store/types.ts";
import { StoreFlushError } from "../../../src/store/wal_flusher.ts";
import { MemoryNetwork } from "../../support/memory_mesh.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const valueBytesMax = 1024 * 1024;

interface LogLine {
  level: number;
  msg: string;
  reason?: string;
}

interface Fleet {
  network: MemoryNetwork;
  nodes: Map<NodeId, { replicator: Replicator; store: LocalStore; logs: LogLine[] }>;
  replicator(id: NodeId): Replicator;
  store(id: NodeId): LocalStore;
  close(): void;
}

/** Replicators over real SQLite stores (in memory) and the in-memory mesh, links not yet up. */
function fleet(
  ids: readonly NodeId[],
  overrides: (id: NodeId) => Partial<ReplicatorOptions> = () => ({}),
): Fleet {
  const network = new MemoryNetwork();
  const nodes = new Map<NodeId, { replicator: Replicator; store: LocalStore; logs: LogLine[] }>();
  for (const id of ids) {
    const logs: LogLine[] = [];
    const logger = pino({ level: "debug" }, { write: (line: string) => logs.push(JSON.parse(line)) });
    const options = overrides(id);
    const store = options.store ?? SqliteLocalStore.open({ path: ":memory:", nodeId: id, valueBytesMax });
    const replicator = new Replicator({
      selfId: id,
      peers: ids.filter((p) => p !== id),
      readOnly: false,
      mesh: network.join(id),
      logger,
      // Acknowledged writes never wait this long; tests of unacknowledged ones pass their own timeoutMs.
      writeTimeoutMs: 30_000,
      antiEntropyIntervalMs: 60_000,
      tickMs: 5,
      valueBytesMax,
      ...options,
      store,
    });
    replicator.start();
    nodes.set(id, { replicator, store, logs });
  }
  const node = (id: NodeId) => {
    const n = nodes.get(id);
    assert.ok(n, `no node ${id}`);
    return n;
  };
  return {
    network,
    nodes,
    replicator: (id) => node(id).replicator,
    store: (id) => node(id).store,
    close: () => {
      network.close();
      for (const n of nodes.values()) {
        n.replicator.stop();
        n.store.close();
      }
    },
  };
}

/** Resolves once `done()` holds, checking after every event-loop turn; fails after `timeoutMs`. */
async function until(done: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    assert.ok(performance.now() < deadline, "condition not reached in time");
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function valueAt(f: Fleet, id: NodeId, path: string): string | null {
  const entry = f.store(id).get(path);
  return entry === null || entry.deleted ? null : decoder.decode(entry.value);
}

test("replicator: a write resolves acked once min_acks peers hold it durably, then reaches every node", async (t) => {
  const f = fleet(["n1", "n2", "n3"]);
  t.after(() => f.close());
  f.network.connectAll();
  const outcome = await f.replicator("n1").write([{ path: "certs/a.pem", value: encoder.encode("A") }], {
    minAcks: 1,
  });
  assert.equal(outcome.acked, true);
  assert.equal(outcome.hostsOk.length, 1);
  assert.equal(outcome.entries[0]?.path, "certs/a.pem");
  assert.equal(valueAt(f, outcome.hostsOk[0]!, "certs/a.pem"), "A", "the acking host holds it");
  await until(() => valueAt(f, "n2", "certs/a.pem") === "A" && valueAt(f, "n3", "certs/a.pem") === "A");

  const all = await f.replicator("n2").write([{ path: "certs/a.pem", value: null }], { minAcks: "all" });
  assert.deepEqual([...all.hostsOk].sort(), ["n1", "n3"]);
  assert.deepEqual(all.hostsErr, []);
  assert.equal(f.store("n1").get("certs/a.pem")?.deleted, true);
  assert.equal(f.store("n3").get("certs/a.pem")?.deleted, true);
});

test("replicator: a write that cannot reach min_acks says which hosts failed and stays local", async (t) => {
  const f = fleet(["n1", "n2", "n3"]);
  t.after(() => f.close());
  f.network.connect("n1", "n2");
  // n2's acknowledgement must arrive within the timeout, which a loaded machine may stretch past a short
  // one: longer timeouts are tried until it does. Whatever the timeout, the write is not acknowledged.
  let outcome: WriteOutcome | undefined;
  for (const timeoutMs of [50, 500, 5_000, 30_000]) {
    outcome = await f.replicator("n1").write([{ path: "x", value: encoder.encode("1") }], {
      minAcks: 2,
      timeoutMs,
    });
    assert.equal(outcome.acked, false);
    assert.deepEqual(
      outcome.hostsErr.map((h) => h.host),
      outcome.hostsOk.includes("n2") ? ["n3"] : ["n2", "n3"],
    );
    if (outcome.hostsOk.includes("n2")) break;
  }
  assert.deepEqual(outcome?.hostsOk, ["n2"]);
  assert.equal(valueAt(f, "n1", "x"), "1");
  assert.equal(valueAt(f, "n3", "x"), null);
});

test("replicator: a node whose link comes up converges at once, both ways", async (t) => {
  const f = fleet(["n1", "n2"]);
  t.after(() => f.close());
  await f.replicator("n1").write([{ path: "a", value: encoder.encode("from n1") }], { minAcks: 0 });
  await f.replicator("n2").write([{ path: "b", value: encoder.encode("from n2") }], { minAcks: 0 });
  assert.equal(valueAt(f, "n2", "a"), null);
  f.network.connect("n1", "n2");
  await until(() => valueAt(f, "n2", "a") === "from n1" && valueAt(f, "n1", "b") === "from n2");
  assert.deepEqual(f.store("n1").digest(), f.store("n2").digest());
});

test("replicator: a read-only replica refuses writes but receives and acknowledges remote ones", async (t) => {
  const f = fleet(["n1", "r1"], (id) => ({ readOnly: id === "r1" }));
  t.after(() => f.close());
  f.network.connectAll();
  await assert.rejects(
    f.replicator("r1").write([{ path: "a", value: encoder.encode("1") }], { minAcks: 0 }),
    ReadOnlyReplicaError,
  );
  assert.equal(f.store("r1").lastSeq(), 0, "nothing committed");
  const outcome = await f.replicator("n1").write([{ path: "a", value: encoder.encode("2") }], { minAcks: 1 });
  assert.deepEqual(outcome.hostsOk, ["r1"]);
  assert.equal(valueAt(f, "r1", "a"), "2");
});

test("replicator: onChange reports own commits and remote winners, in seq order", async (t) => {
  const f = fleet(["n1", "n2"]);
  t.after(() => f.close());
  f.network.connectAll();
  const seen = new Map<NodeId, StoreChange[]>([
    ["n1", []],
    ["n2", []],
  ]);
  for (const [id, changes] of seen) f.replicator(id).onChange((batch) => changes.push(...batch));
  const unsubscribe = f.replicator("n2").onChange(() => {
    throw new Error("a broken listener must not break replication");
  });
  await f.replicator("n1").write(
    [
      { path: "a", value: encoder.encode("1") },
      { path: "b", value: encoder.encode("2") },
    ],
    { minAcks: 1 },
  );
  unsubscribe();
  assert.deepEqual(
    seen.get("n1")!.map((c) => [c.seq, c.entry.path]),
    [
      [1, "a"],
      [2, "b"],
    ],
  );
  assert.deepEqual(
    seen.get("n2")!.map((c) => [c.seq, c.entry.path]),
    [
      [1, "a"],
      [2, "b"],
    ],
  );
  assert.ok(f.nodes.get("n2")!.logs.some((l) => l.msg === "store change listener threw"));
});

/** A real store whose flushes end only when the test says so. */
function heldFlushes(id: NodeId) {
  const store = SqliteLocalStore.open({ path: ":memory:", nodeId: id, valueBytesMax });
  const held: Array<(error: Error | null) => void> = [];
  const flushed = (callback: (error: Error | null) => void) => held.push(callback);
  const proxy = new Proxy(store, {
    get: (target, key) => {
      if (key === "flushed") return flushed;
      const value: unknown = Reflect.get(target, key);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return {
    store: proxy as LocalStore,
    get waiting() {
      return held.length;
    },
    /** Ends every flush asked for so far, with `error` or done. */
    release(error: Error | null = null) {
      for (const callback of held.splice(0)) callback(error);
    },
  };
}

/** Lets the in-memory mesh and the replicators run a few turns. */
async function turns(count = 10): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
}

test("replicator: a write is answered, and fed to watchers, only once its commit is flushed", async (t) => {
  const n1 = heldFlushes("n1");
  const f = fleet(["n1", "n2"], (id) => (id === "n1" ? { store: n1.store } : {}));
  t.after(() => f.close());
  f.network.connectAll();
  const fed: number[] = [];
  f.replicator("n1").onChange((changes) => fed.push(...changes.map((c) => c.seq)));
  let outcome: WriteOutcome | null = null;
  void f
    .replicator("n1")
    .write([{ path: "a", value: encoder.encode("1") }], { minAcks: 1 })
    .then((o) => {
      outcome = o;
    });
  await until(() => f.network.sendCount("n2", "n1", STORE_APPLY_CHANNEL) > 0);
  await turns();
  assert.equal(outcome, null, "n2 acked, but n1's own commit is not on disk yet");
  assert.equal(f.replicator("n1").lastSeq(), 0);
  assert.deepEqual(f.replicator("n1").changesSince(0, 10), []);
  assert.deepEqual(fed, []);
  n1.release();
  await until(() => outcome !== null);
  assert.equal(outcome!.acked, true);
  assert.deepEqual(outcome!.hostsOk, ["n2"]);
  await until(() => fed.length > 0);
  assert.deepEqual(fed, [1]);
  assert.equal(f.replicator("n1").lastSeq(), 1);
});

test("replicator: a peer acknowledges merged entries only once they are flushed", async (t) => {
  const n2 = heldFlushes("n2");
  const f = fleet(["n1", "n2"], (id) => (id === "n2" ? { store: n2.store } : {}));
  t.after(() => f.close());
  f.network.connectAll();
  const write = f.replicator("n1").write([{ path: "a", value: encoder.encode("1") }], { minAcks: 1 });
  await until(() => valueAt(f, "n2", "a") === "1" && n2.waiting > 0);
  await turns();
  assert.equal(f.network.sendCount("n2", "n1", STORE_APPLY_CHANNEL), 0, "no ack before the flush");
  n2.release();
  const outcome = await write;
  assert.equal(outcome.acked, true);
  assert.deepEqual(outcome.hostsOk, ["n2"]);
});

test("replicator: a failed flush fails the write and withholds the peer's ack", async (t) => {
  const n1 = heldFlushes("n1");
  const n2 = heldFlushes("n2");
  const f = fleet(["n1", "n2"], (id) => ({ store: (id === "n1" ? n1 : n2).store }));
  t.after(() => f.close());
  f.network.connectAll();
  const failing = f.replicator("n1").write([{ path: "a", value: encoder.encode("1") }], { minAcks: 0 });
  await until(() => n1.waiting > 0);
  n1.release(new StoreFlushError("fsync of the store's WAL failed: EIO"));
  await assert.rejects(failing, StoreFlushError);

  const unacked = f.replicator("n1").write([{ path: "b", value: encoder.encode("2") }], {
    minAcks: 1,
    timeoutMs: 100,
  });
  await until(() => valueAt(f, "n2", "b") === "2" && n2.waiting > 0);
  n2.release(new StoreFlushError("fsync of the store's WAL failed: EIO"));
  await until(() => n1.waiting > 0);
  n1.release();
  const outcome = await unacked;
  assert.equal(outcome.acked, false);
  assert.deepEqual(
    outcome.hostsErr.map((h) => h.host),
    ["n2"],
  );
  assert.equal(f.network.sendCount("n2", "n1", STORE_APPLY_CHANNEL), 0);
  for (const id of ["n1", "n2"]) {
    const failures = f.nodes
      .get(id)!
      .logs.filter((l) => l.msg.startsWith("store: commits could not be flushed"));
    assert.equal(failures.length, 1, `${id} says it once`);
  }
});

test("replicator: garbage from a peer is logged and dropped", async (t) => {
  const f = fleet(["n1", "n2"]);
  t.after(() => f.close());
  f.network.connectAll();
  const intruder = f.network.join("n3");
  f.network.connect("n3", "n1");
  const entry = {
    path: "../etc/passwd",
    value: new Uint8Array([1]),
    version: { wallMs: 1, counter: 0, nodeId: "n2" },
    deleted: false,
  };
  intruder.send("n1", STORE_SYNC_CHANNEL, encoder.encode("{not a store message"));
  intruder.send(
    "n1",
    STORE_APPLY_CHANNEL,
    encodeStoreMessage({ type: "apply", writeId: "w", chunk: 0, entries: [entry], seqs: null }),
  );
  const pull = encodeStoreMessage({ type: "pull", roundId: 1, paths: ["a"] });
  intruder.send("n1", STORE_SYNC_CHANNEL, pull.subarray(0, pull.byteLength - 1));
  const logs = f.nodes.get("n1")!.logs;
  await until(() => logs.filter((l) => l.msg === "dropped store message").length === 3);
  const reasons = logs.filter((l) => l.msg === "dropped store message").map((l) => l.reason);
  assert.match(reasons[0]!, /unknown message type/);
  assert.match(reasons[1]!, /invalid store path/);
  assert.match(reasons[2]!, /path: truncated/);
  assert.equal(f.store("n1").lastSeq(), 0);
});

test("replicator: entries a peer could not store (clock far ahead) are never acknowledged", async (t) => {
  const f = fleet(["n1", "n2"], (id) => ({
    // n2's wall clock is two minutes behind n1's: beyond the store's 60 s skew bound.
    nowWallMs: id === "n2" ? () => Date.now() - 120_000 : Date.now,
  }));
  t.after(() => f.close());
  f.network.connectAll();
  const outcome = await f.replicator("n1").write([{ path: "a", value: encoder.encode("1") }], {
    minAcks: 1,
    timeoutMs: 50,
  });
  assert.equal(outcome.acked, false);
  // The timeout may pass before n2 even got the entries: wait for its verdict.
  await until(() =>
    f.nodes.get("n2")!.logs.some((l) => l.msg === "remote entries skipped (clock too far ahead)"),
  );
  assert.equal(f.store("n2").get("a"), null);
});

test("replicator: a burst of applies is merged in a few transactions, not one per message", async (t) => {
  let applyRemoteCalls = 0;
  const countingStore = (store: SqliteLocalStore): SqliteLocalStore =>
    new Proxy(store, {
      get(target, key, receiver) {
        const value = Reflect.get(target, key, receiver);
        if (key !== "applyRemote" || typeof value !== "function")
          return typeof value === "function" ? value.bind(target) : value;
        return (...args: Parameters<SqliteLocalStore["applyRemote"]>) => {
          applyRemoteCalls++;
          return target.applyRemote(...args);
        };
      },
    });
  const f = fleet(["n1", "n2"], (id) =>
    id === "n2"
      ? { store: countingStore(SqliteLocalStore.open({ path: ":memory:", nodeId: "n2", valueBytesMax })) }
      : {},
  );
  t.after(() => f.close());
  f.network.connectAll();
  const writes = Array.from({ length: 100 }, (_, i) =>
    f.replicator("n1").write([{ path: `burst/${i}`, value: encoder.encode(String(i)) }], { minAcks: 1 }),
  );
  const outcomes = await Promise.all(writes);
  assert.ok(outcomes.every((o) => o.acked));
  assert.ok(applyRemoteCalls < 10, `${applyRemoteCalls} transactions for 100 applies`);
});

test("replicator: setPeers: an empty node added to one holding 20,000 entries catches up, and says so only then", async (t) => {
  // Small bounds: the catch-up takes many rounds; the periodic round is a minute away, so only the round
  // setPeers starts (the link was up before) can do it.
  const limits = { stampsPerMessageMax: 1000, pathsPerPullMax: 1000 };
  const f = fleet(["n1", "n2"], () => ({ limits }));
  t.after(() => f.close());
  for (const id of ["n1", "n2"]) f.replicator(id).setPeers([]);
  assert.equal(f.replicator("n1").peerCount, 0);
  const entryCount = 20_000;
  const writes = Array.from({ length: entryCount }, (_, i) => ({
    path: `certs/${i}.pem`,
    value: encoder.encode(`v${i}`),
  }));
  await f.replicator("n1").write(writes, { minAcks: 0 });
  f.network.connectAll();
  f.replicator("n1").setPeers(["n2"]);
  f.replicator("n2").setPeers(["n1"]);
  assert.equal(f.replicator("n2").peerCount, 1);
  assert.equal(f.replicator("n2").syncProgress("n1").caughtUp, false);
  await until(() => {
    const caughtUp = f.replicator("n2").syncProgress("n1").caughtUp;
    if (caughtUp) assert.equal(f.store("n2").list("certs/", { limit: entryCount + 1 }).length, entryCount);
    return caughtUp;
  });
  assert.equal(f.replicator("n2").syncProgress("n1").cursorSeq, entryCount);
  assert.deepEqual(f.store("n2").digest(), f.store("n1").digest());
});

test("replicator: setPeers: a write waiting on a peer that is removed resolves from the others", async (t) => {
  const f = fleet(["n1", "n2", "n3"]);
  t.after(() => f.close());
  f.network.connect("n1", "n2");
  const outcome = f.replicator("n1").write([{ path: "a", value: encoder.encode("1") }], { minAcks: "all" });
  await until(() => valueAt(f, "n2", "a") === "1");
  f.replicator("n1").setPeers(["n2"]);
  const { hostsOk, hostsErr, acked } = await outcome;
  assert.deepEqual({ hostsOk, hostsErr, acked }, { hostsOk: ["n2"], hostsErr: [], acked: true });
  assert.equal(f.replicator("n1").peerCount, 1);
  assert.throws(() => f.replicator("n1").setPeers(["n1"]), /must not include selfId/);
});

test("replicator: wire: every message type survives encode and decode; values are bytes, bounds hold", () => {
  const decode = storeMessageDecoder({
    sync: { ...DEFAULT_STORE_SYNC_LIMITS, entriesPerMessageMax: 2 },
    valueBytesMax: 300,
    messageBytesMax: 64 * 1024,
    bucketCount: 16,
  });
  const version = { wallMs: 1_700_000_000_000, counter: 3, nodeId: "n1" };
  const entry = {
    path: "a/b",
    value: Uint8Array.from({ length: 256 }, (_, i) => i),
    version,
    deleted: false,
  };
  const tombstone = { path: "c", value: new Uint8Array(0), version, deleted: true };
  const messages: StoreSyncMessage[] = [
    { type: "apply", writeId: "abc.1", chunk: 0, entries: [entry, tombstone], seqs: null },
    {
      type: "apply",
      writeId: "abc.2",
      chunk: 1,
      entries: [entry],
      seqs: { storeId: 2 ** 40, afterSeq: 99, upToSeq: 100 },
    },
    { type: "apply-ack", writeId: "abc.1", chunk: 0 },
    { type: "digest", roundId: 1, buckets: [{ bucket: 15, fingerprint: "0123456789abcdef" }] },
    { type: "stamps", roundId: 1, buckets: [3], stamps: [{ path: "c", version, deleted: true }], more: true },
    { type: "pull", roundId: 1, paths: ["a/b"] },
    { type: "entries", roundId: 1, entries: [entry], last: false },
    { type: "entries", roundId: 1, entries: [], last: true },
    {
      type: "since",
      roundId: 2,
      storeId: 2 ** 47 + 5,
      afterSeq: 12_345,
      skip: [
        { nodeId: "n1", fromWallMs: 1_700_000_000_000 },
        { nodeId: "n3", fromWallMs: 0 },
      ],
    },
    {
      type: "changes",
      roundId: 2,
      storeId: 2 ** 47 + 5,
      createdWallMs: 1_700_000_000_000,
      upToSeq: 12_400,
      stamps: [{ path: "c", version, deleted: true }],
      more: false,
    },
  ];
  for (const message of messages)
    assert.deepEqual(decode(encodeStoreMessage(message)), { ok: true, message });
  const refused: StoreSyncMessage[] = [
    { type: "entries", roundId: 1, entries: [entry, entry, entry], last: true },
    { type: "entries", roundId: 1, entries: [{ ...entry, value: new Uint8Array(301) }], last: true },
    { type: "digest", roundId: 1, buckets: [{ bucket: 16, fingerprint: "0123456789abcdef" }] },
    { type: "pull", roundId: 1, paths: ["/etc/passwd"] },
    { type: "apply", writeId: "w", chunk: 0, entries: [], seqs: { storeId: 1, afterSeq: 5, upToSeq: 4 } },
  ];
  for (const message of refused) assert.equal(decode(encodeStoreMessage(message)).ok, false, message.type);
  const pull = encodeStoreMessage({ type: "pull", roundId: 1, paths: ["ab"] });
  const hostile: Array<[string, Uint8Array, RegExp]> = [
    ["trailing bytes", Buffer.concat([pull, new Uint8Array([0])]), /unexpected bytes at the end/],
    ["invalid UTF-8", Buffer.concat([pull.subarray(0, -2), new Uint8Array([0xc3, 0x28])]), /not UTF-8/],
    ["every prefix", pull.subarray(0, 9), /truncated/],
    [
      "a count past the input",
      Buffer.concat([pull.subarray(0, 9), new Uint8Array([0, 0, 0, 100])]),
      /cannot fit/,
    ],
    ["a fractional round id", Buffer.from([5, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), /roundId/],
    ["nothing", new Uint8Array(0), /truncated/],
    ["oversize", new Uint8Array(64 * 1024 + 1), /exceeds/],
  ];
  for (const [what, bytes, reason] of hostile) {
    const decoded = decode(bytes);
    assert.ok(!decoded.ok, what);
    assert.match(decoded.reason, reason, what);
  }
  // Every truncation of a valid message is refused, never thrown.
  for (const message of [messages[0]!, messages.at(-1)!]) {
    const bytes = encodeStoreMessage(message);
    for (let end = 0; end < bytes.byteLength; end++) assert.equal(decode(bytes.subarray(0, end)).ok, false);
  }
});
