import assert from "node:assert/strict";
import { test } from "node:test";
import type { JournalEntry } from "../../../src/journal/journal_db.ts";
import { JournalKey } from "../../../src/journal/journal_key.ts";
import { batchEntriesMax, openBatch, readHeader, sealBatch } from "../../../src/journal/journal_wire.ts";

function entry(id: string, keySeq: number): JournalEntry {
  return {
    id,
    origin: "n1",
    hlc: "1700000000000.3",
    type: "user.create",
    key: "user:ann",
    keySeq,
    data: JSON.stringify({ name: "ann", shell: "/bin/bash" }),
    files: ["recordings/ann-1.cast"],
  };
}

const batch = [
  entry("0b7e6a38-4f63-4c55-9f0e-5d3c2b1a0987", 7),
  entry("1c8f7b49-5074-4d66-a01f-6e4d3c2b1a98", 8),
];

test("journal wire: a sealed batch opens to the same entries; its header is readable in the clear", async () => {
  const { key } = await JournalKey.generate();
  const message = await sealBatch(batch, key);
  assert.deepEqual(readHeader(message), { v: 1, origin: "n1", ids: batch.map((e) => e.id) });
  assert.ok(!new TextDecoder().decode(message).includes("shell"), "the data is not in the clear");
  assert.deepEqual(await openBatch(message, key), { ok: true, origin: "n1", entries: batch });
});

test("journal wire: a batch is 1 to batchEntriesMax entries of one origin", async () => {
  const { key } = await JournalKey.generate();
  await assert.rejects(sealBatch([], key), RangeError);
  await assert.rejects(sealBatch([entry("a", 1), { ...entry("b", 2), origin: "n2" }], key), RangeError);
  const many = Array.from({ length: batchEntriesMax + 1 }, (_, i) => entry(`e${i}`, i + 1));
  await assert.rejects(sealBatch(many, key), RangeError);
});

test("journal wire: altered, foreign-key and malformed messages are refused whole", async () => {
  const { key } = await JournalKey.generate();
  const message = await sealBatch(batch, key);
  const text = new TextDecoder().decode(message.subarray(0, message.indexOf(0x0a)));
  const withHeader = (header: string) => {
    const bytes = new TextEncoder().encode(`${header}\n`);
    const out = new Uint8Array(bytes.length + message.length - text.length - 1);
    out.set(bytes, 0);
    out.set(message.subarray(text.length + 1), bytes.length);
    return out;
  };
  const refused = async (bytes: Uint8Array, reason: RegExp, k = key) => {
    const result = await openBatch(bytes, k);
    assert.equal(result.ok, false);
    if (!result.ok) assert.match(result.reason, reason);
  };
  await refused(withHeader(text.replace('"origin":"n1"', '"origin":"n2"')), /disagree/);
  // Dropping an id from the clear list (to hide an entry from de-duplication) is seen too.
  await refused(withHeader(JSON.stringify({ v: 1, origin: "n1", ids: [batch[0]?.id] })), /disagree/);
  const flipped = message.slice();
  flipped[flipped.length - 5] = (flipped[flipped.length - 5] ?? 0) ^ 0x10;
  await refused(flipped, /refused/);
  await refused(message, /no identity matched/, (await JournalKey.generate()).key);
  await refused(new TextEncoder().encode("no header at all"), /malformed header/);
  await refused(withHeader('{"v":2}'), /malformed header/);
});
