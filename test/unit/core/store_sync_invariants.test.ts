// The store sync core asserts its invariants after every input. Each rule is shown firing on a core driven
// into breaking it: a mutant (one private step patched the way a plausible bug would change it), state
// corrupted between inputs, or a StoreView that breaks its contract. The real core on the same inputs
// stays quiet (the other store sync tests and the store swarm run with the checks on).
import assert from "node:assert/strict";
import { test } from "node:test";
import { StoreSync } from "../../../src/core/store_sync.ts";
import { DEFAULT_STORE_SYNC_LIMITS } from "../../../src/core/store_sync_config.ts";
import {
  messageBoundProblem,
  StoreSyncInvariantError,
  type StoreSyncRule,
} from "../../../src/core/store_sync_invariants.ts";
import type {
  PersistRequest,
  SeqSpan,
  StoreEntry,
  StoreSyncConfig,
  StoreSyncLimits,
  StoreSyncMessage,
  StoreView,
} from "../../../src/core/store_sync_types.ts";
import type { NodeId } from "../../../src/core/types.ts";
import { MemoryLocalStore } from "../../support/memory_local_store.ts";

const wallMs = 1_700_000_000_000;
/** n2's store as n1's cursor names it. */
const n2Store = { storeId: 7, createdWallMs: wallMs - 1000 };

/** The private parts of StoreSync these tests bend (TypeScript's private is not enforced at run time). */
interface Internals {
  cursors: Map<NodeId, { storeId: number; createdWallMs: number; seq: number }>;
  writes: Map<string, { hostsOk: NodeId[]; resolved: boolean }>;
  linksDown: Set<NodeId>;
  roundIdNext: number;
  persistTokenNext: number;
  requestPersist(from: NodeId, entries: StoreEntry[], origin: Origin | null): number | null;
  progressWrite(write: { writeId: string; resolved: boolean }): void;
  send(to: NodeId, message: StoreSyncMessage): void;
  advanceCursorPast(peer: NodeId, seqs: SeqSpan | null): void;
  forgetPeer(peer: NodeId): boolean;
}

type Origin = { kind: "apply"; from: NodeId; writeId: string; chunk: number; seqs: SeqSpan | null };

function internals(core: StoreSync): Internals {
  return core as unknown as Internals;
}

/** Node n1 with peers n2 and n3; outputs are drained into `sent` and `persist` after every input. */
class One {
  readonly store = new MemoryLocalStore({ nodeId: "n1", bucketCount: 16 });
  readonly core: StoreSync;
  readonly sent: Array<{ to: NodeId; message: StoreSyncMessage }> = [];
  readonly persist: PersistRequest[] = [];

  constructor(
    limits: StoreSyncLimits = DEFAULT_STORE_SYNC_LIMITS,
    view?: (store: MemoryLocalStore) => StoreView,
    overrides: Partial<StoreSyncConfig> = {},
  ) {
    const config: StoreSyncConfig = {
      selfId: "n1",
      peers: ["n2", "n3"],
      writeTimeoutTicks: 10,
      antiEntropyIntervalTicks: 1000,
      roundTimeoutTicks: 50,
      digestRoundEvery: 4,
      limits,
      ...overrides,
    };
    this.core = new StoreSync(config, view?.(this.store) ?? this.store);
  }

  get bent(): Internals {
    return internals(this.core);
  }

  /** Runs one input and drains what it produced. */
  input(run: (core: StoreSync) => void): void {
    run(this.core);
    while (this.core.hasReady()) {
      const ready = this.core.ready();
      this.sent.push(...ready.messages.map(({ to, message }) => ({ to, message })));
      this.persist.push(...ready.persist);
      this.core.advance(ready);
    }
  }

  lastSent<T extends StoreSyncMessage["type"]>(type: T): Extract<StoreSyncMessage, { type: T }> {
    const found = this.sent.findLast((s) => s.message.type === type);
    assert.ok(found, `no ${type} sent`);
    return found.message as Extract<StoreSyncMessage, { type: T }>;
  }

  /** A since round with n2 that completes at once: n1's cursor into n2's log then stands at `seq`. */
  cursorIntoN2At(seq: number): void {
    this.input((c) => c.linkUp("n2"));
    const { roundId } = this.lastSent("since");
    this.input((c) =>
      c.step("n2", { type: "changes", roundId, ...n2Store, upToSeq: seq, stamps: [], more: false }),
    );
    assert.equal(this.bent.cursors.get("n2")?.seq, seq);
  }

  /** n2's write `writeId` of one entry, continuing its change log after `afterSeq`. */
  applyFromN2(writeId: string, afterSeq: number, upToSeq = afterSeq + 1): void {
    const entry = n2Entry(writeId);
    const seqs = { storeId: n2Store.storeId, afterSeq, upToSeq };
    this.input((c) => c.step("n2", { type: "apply", writeId, chunk: 0, entries: [entry], seqs }));
  }

  lastPersistToken(): number {
    const request = this.persist.at(-1);
    assert.ok(request);
    return request.token;
  }

  /** A local write of one entry, sent to n2 and n3. */
  write(writeId: string, minAcks: number): void {
    const firstSeq = this.store.lastSeq() + 1;
    const entries = this.store.writeLocal([{ path: writeId, value: new Uint8Array([1]) }], wallMs);
    this.input((c) => c.localCommitted(writeId, entries, minAcks, undefined, firstSeq));
  }
}

function n2Entry(path: string): StoreEntry {
  return { path, value: new Uint8Array([2]), version: { wallMs, counter: 0, nodeId: "n2" }, deleted: false };
}

function assertViolates(rule: StoreSyncRule, run: () => void): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof StoreSyncInvariantError, String(error));
    assert.ok(error.rules.includes(rule), error.message);
    assert.match(error.message, new RegExp(`on n1: .*${rule}`));
    return true;
  });
}

test("store sync: invariants: cursor-monotonic: a cursor moved back or dropped is caught at the next input", () => {
  const one = new One();
  one.cursorIntoN2At(10);
  one.bent.cursors.set("n2", { ...n2Store, seq: 4 });
  assertViolates("cursor-monotonic", () => one.core.tick());

  const other = new One();
  other.cursorIntoN2At(10);
  other.bent.cursors.delete("n2");
  assertViolates("cursor-monotonic", () => other.core.tick());
});

test("store sync: invariants: cursor-monotonic: setPeers drops the cursors of the peers it removes, no others", () => {
  const real = new One();
  real.cursorIntoN2At(10);
  real.input((c) => c.setPeers(["n3"]));
  assert.equal(real.bent.cursors.has("n2"), false);

  const mutant = new One();
  mutant.cursorIntoN2At(10);
  const forgetPeer = mutant.bent.forgetPeer.bind(mutant.core);
  mutant.bent.forgetPeer = (peer) => {
    mutant.bent.cursors.delete("n2");
    return forgetPeer(peer);
  };
  assertViolates("cursor-monotonic", () => mutant.core.setPeers(["n2", "n4"]));
});

test("store sync: invariants: peer-set: a removed peer's cursor, round or write tally kept is caught", () => {
  const mutant = new One();
  mutant.cursorIntoN2At(10);
  mutant.input((c) => c.linkUp("n2"));
  mutant.write("w1", 2);
  mutant.bent.forgetPeer = () => false;
  assert.throws(
    () => mutant.core.setPeers(["n3"]),
    (error: unknown) => {
      assert.ok(error instanceof StoreSyncInvariantError, String(error));
      const details = error.violations.filter((v) => v.rule === "peer-set").map((v) => v.detail);
      assert.deepEqual(details, [
        "cursor kept into n2, not a peer",
        "round in flight with n2, not a peer",
        "write w1 still counts n2",
      ]);
      return true;
    },
  );
});

test("store sync: invariants: cursor-monotonic: an apply whose seq span runs backwards leaves the cursor alone", () => {
  // The wire refuses such a span; the core, fed directly, must still not move back on it.
  const one = new One();
  one.cursorIntoN2At(10);
  one.applyFromN2("w1", 10, 4);
  one.input((c) => c.persisted(one.lastPersistToken()));
  assert.equal(one.bent.cursors.get("n2")?.seq, 10);
  assert.deepEqual(one.lastSent("apply-ack"), { type: "apply-ack", writeId: "w1", chunk: 0 });
});

test("store sync: invariants: cursor-durable: a cursor moved on receipt of an apply, before it is persisted, is caught", () => {
  const real = new One();
  real.cursorIntoN2At(10);
  real.applyFromN2("w1", 10);
  assert.equal(real.bent.cursors.get("n2")?.seq, 10, "the real core waits for the persist");
  real.input((c) => c.persisted(real.lastPersistToken()));
  assert.equal(real.bent.cursors.get("n2")?.seq, 11);

  const mutant = new One();
  mutant.cursorIntoN2At(10);
  const requestPersist = mutant.bent.requestPersist.bind(mutant.core);
  mutant.bent.requestPersist = (from, entries, origin) => {
    if (origin?.kind === "apply") mutant.bent.advanceCursorPast(from, origin.seqs);
    return requestPersist(from, entries, origin);
  };
  assertViolates("cursor-durable", () => mutant.applyFromN2("w1", 10));
});

test("store sync: invariants: cursor-durable: a cursor set from nowhere is caught", () => {
  const one = new One();
  one.bent.cursors.set("n3", { storeId: 9, createdWallMs: 0, seq: 100 });
  assertViolates("cursor-durable", () => one.core.tick());
});

test("store sync: invariants: ack-after-durable: an apply-ack sent on receipt is caught", () => {
  const mutant = new One();
  const requestPersist = mutant.bent.requestPersist.bind(mutant.core);
  mutant.bent.requestPersist = (from, entries, origin) => {
    if (origin?.kind === "apply") {
      mutant.bent.send(from, { type: "apply-ack", writeId: origin.writeId, chunk: origin.chunk });
    }
    return requestPersist(from, entries, origin);
  };
  assertViolates("ack-after-durable", () => mutant.applyFromN2("w1", 0));

  const real = new One();
  real.applyFromN2("w1", 0);
  assert.equal(
    real.sent.some((s) => s.message.type === "apply-ack"),
    false,
  );
  real.input((c) => c.persisted(real.lastPersistToken()));
  assert.equal(real.lastSent("apply-ack").writeId, "w1");
});

test("store sync: invariants: write-kept: a write forgotten once resolved, before every peer acked, is caught", () => {
  const mutant = new One();
  const progressWrite = mutant.bent.progressWrite.bind(mutant.core);
  mutant.bent.progressWrite = (write) => {
    progressWrite(write);
    if (write.resolved) mutant.bent.writes.delete(write.writeId);
  };
  mutant.write("w1", 1);
  // n2's ack resolves the write; n3's is still to come, and so is the final result.
  const ack: StoreSyncMessage = { type: "apply-ack", writeId: "w1", chunk: 0 };
  assertViolates("write-kept", () => mutant.core.step("n2", ack));

  const corrupted = new One();
  corrupted.write("w1", 1);
  corrupted.bent.writes.delete("w1");
  assertViolates("write-kept", () => corrupted.core.tick());
});

test("store sync: invariants: write-result: a host reported ok without acking every chunk is caught", () => {
  const one = new One();
  one.write("w1", 1);
  one.bent.writes.get("w1")?.hostsOk.push("n3");
  assertViolates("write-result", () => one.core.step("n2", { type: "apply-ack", writeId: "w1", chunk: 0 }));
});

test("store sync: invariants: ids-monotonic: a round id or persist token issued twice is caught", () => {
  const rounds = new One();
  rounds.input((c) => c.linkUp("n2"));
  rounds.bent.roundIdNext = 1;
  assertViolates("ids-monotonic", () => rounds.core.linkUp("n3"));

  const tokens = new One();
  tokens.applyFromN2("w1", 0);
  tokens.bent.persistTokenNext = 1;
  assertViolates("ids-monotonic", () => tokens.applyFromN2("w2", 1));
});

test("store sync: invariants: round-bounds: a round continued with a peer whose link is down is caught", () => {
  // A link marked down without abandoning its round: the round's continuation then starts on a dead link.
  const one = new One();
  one.input((c) => c.linkUp("n2"));
  const { roundId } = one.lastSent("since");
  one.bent.linksDown.add("n2");
  const changes: StoreSyncMessage = {
    type: "changes",
    roundId,
    ...n2Store,
    upToSeq: 5,
    stamps: [],
    more: true,
  };
  assertViolates("round-bounds", () => one.core.step("n2", changes));
});

test("store sync: invariants: message-bounds: a store view that ignores the since limit is caught", () => {
  const limits = { ...DEFAULT_STORE_SYNC_LIMITS, stampsPerMessageMax: 2 };
  const overflowing = (store: MemoryLocalStore): StoreView =>
    Object.assign(Object.create(store) as MemoryLocalStore, {
      stampsSince: (afterSeq: number, query: { limit: number; seqSpanMax: number }) =>
        store.stampsSince(afterSeq, { ...query, limit: query.limit + 1 }),
    });
  const one = new One(limits, overflowing);
  for (let i = 0; i < 3; i++) one.write(`k${i}`, 0);
  const { storeId } = one.store.identity();
  const since: StoreSyncMessage = { type: "since", roundId: 1, storeId, afterSeq: 0, skip: [] };
  assertViolates("message-bounds", () => one.core.step("n2", since));

  const real = new One(limits);
  for (let i = 0; i < 3; i++) real.write(`k${i}`, 0);
  real.input((c) => c.step("n2", since));
  assert.equal(real.lastSent("changes").stamps.length, 2);
});

test("store sync: invariants: an input whose store view threw is not judged; the next starts from what it left", () => {
  // The tick that times the write out also starts a digest round, whose digest() fails half-way through.
  let failing = true;
  const flaky = (store: MemoryLocalStore): StoreView =>
    Object.assign(Object.create(store) as MemoryLocalStore, {
      digest: () => {
        if (failing) throw new Error("disk I/O error");
        return store.digest();
      },
    });
  const overrides = { writeTimeoutTicks: 10, antiEntropyIntervalTicks: 10, digestRoundEvery: 1 };
  const one = new One(DEFAULT_STORE_SYNC_LIMITS, flaky, overrides);
  one.write("w1", 1);
  for (let i = 0; i < 9; i++) one.input((c) => c.tick());
  assert.throws(() => one.core.tick(), /disk I\/O error/);
  failing = false;
  for (let i = 0; i < 12; i++) one.input((c) => c.tick());
  assert.equal(one.core.status().writesInFlight, 0);
});

test("store sync: invariants: message bounds, case by case", () => {
  const limits: StoreSyncLimits = {
    entriesPerMessageMax: 2,
    valueBytesPerMessageMax: 10,
    pathsPerPullMax: 3,
    valueBytesPerPullMax: 100,
    stampsPerMessageMax: 4,
  };
  const entry = (bytes: number): StoreEntry => ({ ...n2Entry("p"), value: new Uint8Array(bytes) });
  const stamp = { path: "p", version: { wallMs, counter: 0, nodeId: "n2" }, deleted: false };
  const apply = (entries: StoreEntry[]): StoreSyncMessage => ({
    type: "apply",
    writeId: "w",
    chunk: 0,
    entries,
    seqs: null,
  });
  const cases: Array<[string, StoreSyncMessage, RegExp | null]> = [
    ["apply within bounds", apply([entry(5), entry(5)]), null],
    ["apply of too many entries", apply([entry(1), entry(1), entry(1)]), /entriesPerMessageMax/],
    ["apply of too many bytes", apply([entry(6), entry(6)]), /valueBytesPerMessageMax/],
    ["one large entry travels alone", apply([entry(50)]), null],
    [
      "entries of too many",
      { type: "entries", roundId: 1, entries: [entry(1), entry(1), entry(1)], last: true },
      /entries/,
    ],
    ["pull of too many paths", { type: "pull", roundId: 1, paths: ["a", "b", "c", "d"] }, /pathsPerPullMax/],
    [
      "changes past the pull bound",
      {
        type: "changes",
        roundId: 1,
        storeId: 1,
        createdWallMs: 0,
        upToSeq: 1,
        stamps: Array(4).fill(stamp),
        more: false,
      },
      /stamps > 3/,
    ],
    [
      "stamps of several buckets past the bound",
      { type: "stamps", roundId: 1, buckets: [1, 2], stamps: Array(5).fill(stamp), more: false },
      /stampsPerMessageMax/,
    ],
    [
      "stamps of one large bucket",
      { type: "stamps", roundId: 1, buckets: [1], stamps: Array(5).fill(stamp), more: false },
      null,
    ],
  ];
  for (const [name, message, expected] of cases) {
    const problem = messageBoundProblem(message, limits);
    if (expected === null) assert.equal(problem, null, name);
    else assert.match(problem ?? "", expected, name);
  }
});

test("store sync: invariants: the error names the node and every broken rule", () => {
  const error = new StoreSyncInvariantError("n1", [
    { rule: "cursor-monotonic", detail: "a" },
    { rule: "write-kept", detail: "b" },
  ]);
  assert.equal(error.name, "StoreSyncInvariantError");
  assert.equal(error.message, "store sync invariant violated on n1: cursor-monotonic: a; write-kept: b");
  assert.deepEqual(error.rules, ["cursor-monotonic", "write-kept"]);
});
