// The mesh transport's sending to one peer, against a fake mesh whose answers the test releases: several
// full batches in flight (a short one waits for those, and for the gap after the last batch), the cursor moved only through answered batches at
// the front, and after a failure a fresh start from the cursor once the others settled.
import assert from "node:assert/strict";
import { test } from "node:test";
import { pino } from "pino";
import {
  MeshTransport,
  meshBatchMax,
  meshInFlightMax,
  type SealedBatch,
  type TransportIo,
} from "../../../src/queue/index.ts";

/**
 * An outbox of `size` entries in batches of `limit` (the mesh's 256; the message is the batch's first seq),
 * the last one short unless `size` is a multiple.
 */
function outbox(size: number | (() => number)) {
  const cursors = new Map<string, number>();
  const shipped: number[] = [];
  const io: TransportIo = {
    outboxAfter: async (seq: number, limit: number, fullOnly?: boolean): Promise<SealedBatch | null> => {
      const last = Math.min(typeof size === "number" ? size : size(), seq + limit);
      if (last <= seq || (fullOnly === true && last - seq < limit)) return null;
      return { firstSeq: seq + 1, lastSeq: last, message: new Uint8Array([seq / limit + 1]) };
    },
    deliver: async () => {},
    shipped: (seq) => shipped.push(seq),
    cursor: (name) => cursors.get(name) ?? 0,
    setCursor: (name, seq) => cursors.set(name, seq),
    dropCursor: (name) => cursors.delete(name),
  };
  return { io, cursors, shipped };
}

/** Requests to n2 wait until the test answers or fails them. */
function heldMesh() {
  const held: Array<{ seq: number; answer: () => void; fail: (error: Error) => void }> = [];
  const mesh = {
    request: (_peer: string, _channel: string, payload: Uint8Array) =>
      new Promise<Uint8Array>((resolve, reject) => {
        held.push({ seq: payload[0] as number, answer: () => resolve(new Uint8Array()), fail: reject });
      }),
    onRequest: () => () => {},
    on: () => () => {},
  };
  return { mesh, held };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

test("mesh transport: up to meshInFlightMax full batches in flight; the cursor moves through the answered front", async () => {
  const { io, cursors, shipped } = outbox(10 * meshBatchMax);
  const { mesh, held } = heldMesh();
  const transport = new MeshTransport({ mesh, peers: ["n2"], logger: pino({ level: "silent" }) });
  transport.start(io);
  await settle();
  assert.equal(meshInFlightMax, 4);
  assert.deepEqual(
    held.map((h) => h.seq),
    [1, 2, 3, 4],
    "four sent before any answer",
  );
  held[1]?.answer();
  await settle();
  assert.equal(cursors.get("peer:n2"), undefined, "an answer behind an unanswered batch moves nothing");
  held[0]?.answer();
  await settle();
  assert.equal(cursors.get("peer:n2"), 2 * meshBatchMax);
  assert.equal(shipped.at(-1), 2 * meshBatchMax);
  assert.deepEqual(
    held.map((h) => h.seq),
    [1, 2, 3, 4, 5, 6],
    "two more sent as two settled",
  );
  await transport.stop();
});

test("mesh transport: behind a batch in flight, one not full waits", async () => {
  const { io, cursors } = outbox(meshBatchMax + 10);
  const { mesh, held } = heldMesh();
  const transport = new MeshTransport({
    mesh,
    peers: ["n2"],
    logger: pino({ level: "silent" }),
    batchGapMs: 0,
  });
  transport.start(io);
  await settle();
  assert.deepEqual(
    held.map((h) => h.seq),
    [1],
  );
  held[0]?.answer();
  await settle();
  assert.equal(cursors.get("peer:n2"), meshBatchMax);
  assert.deepEqual(
    held.map((h) => h.seq),
    [1, 2],
    "then it goes alone",
  );
  await transport.stop();
});

test("mesh transport: a failed batch stops the sending; once the rest settled, it starts over from the cursor", async () => {
  const { io, cursors } = outbox(6 * meshBatchMax);
  const { mesh, held } = heldMesh();
  const transport = new MeshTransport({ mesh, peers: ["n2"], logger: pino({ level: "silent" }) });
  transport.start(io);
  await settle();
  held[0]?.answer();
  held[1]?.fail(new Error("link cut"));
  held[2]?.answer();
  await settle();
  assert.equal(cursors.get("peer:n2"), meshBatchMax);
  assert.deepEqual(
    held.map((h) => h.seq),
    [1, 2, 3, 4],
    "nothing more sent while a failure settles",
  );
  held[3]?.answer();
  await settle();
  assert.equal(cursors.get("peer:n2"), meshBatchMax, "never past the failed batch");
  // After the backoff (0.2 s), from the cursor: 2 again, and 3 and 4 though they were answered.
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual(
    held.slice(4).map((h) => h.seq),
    [2, 3, 4, 5],
  );
  for (const h of held.slice(4)) h.answer();
  await settle();
  assert.equal(cursors.get("peer:n2"), 5 * meshBatchMax);
  assert.deepEqual(transport.status(), {
    peers: { n2: { cursor: 5 * meshBatchMax, inFlight: 1, runsJournal: true, lastError: null } },
  });
  await transport.stop();
});

/**
 * A transport with `batchGapMs` over an outbox of 10 entries whose size the test sets, its first batch sent
 * and answered; then 10 more entries recorded.
 */
async function afterFirstBatch(batchGapMs: number) {
  let size = 10;
  const { io } = outbox(() => size);
  const { mesh, held } = heldMesh();
  const transport = new MeshTransport({ mesh, peers: ["n2"], logger: pino({ level: "silent" }), batchGapMs });
  transport.start(io);
  await settle();
  assert.equal(held.length, 1, "the first goes at once");
  held[0]?.answer();
  size = 20;
  transport.recorded();
  await settle();
  const grow = (to: number) => {
    size = to;
    transport.recorded();
  };
  return { transport, held, grow };
}

test("mesh transport: after a batch, one not full waits out the gap; a full one goes at once", async () => {
  const { transport, held, grow } = await afterFirstBatch(600_000);
  assert.equal(held.length, 1, "10 more wait: the gap has not passed");
  grow(10 + meshBatchMax + 10);
  await settle();
  assert.equal(held.length, 2, "a full batch does not wait");
  await transport.stop();
});

test("mesh transport: what the gap held back goes when it ends", async () => {
  const { transport, held } = await afterFirstBatch(50);
  const deadline = Date.now() + 30_000;
  while (held.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(held.length, 2, "sent after the gap");
  await transport.stop();
});
