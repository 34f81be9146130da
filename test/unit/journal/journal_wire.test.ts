import assert from "node:assert/strict";
import { test } from "node:test";
import type { JournalEntry } from "../../../src/journal/journal_db.ts";
import { JournalKey } from "../../../src/journal/journal_key.ts";
import { openMessage, readHeader, sealMessage } from "../../../src/journal/journal_wire.ts";

const entry: JournalEntry = {
  id: "0b7e6a38-4f63-4c55-9f0e-5d3c2b1a0987",
  origin: "n1",
  hlc: "1700000000000.3",
  type: "user.create",
  key: "user:ann",
  keySeq: 7,
  data: JSON.stringify({ name: "ann", shell: "/bin/bash" }),
  files: ["recordings/ann-1.cast"],
};

test("journal wire: a sealed message opens to the same entry; its header is readable in the clear", async () => {
  const { key } = await JournalKey.generate();
  const message = await sealMessage(entry, key);
  assert.deepEqual(readHeader(message), { v: 1, id: entry.id, origin: "n1", key: "user:ann" });
  assert.ok(!new TextDecoder().decode(message).includes("shell"), "the payload is not in the clear");
  assert.deepEqual(await openMessage(message, key), { ok: true, entry });
});

test("journal wire: altered, foreign-key and malformed messages are refused", async () => {
  const { key } = await JournalKey.generate();
  const message = await sealMessage(entry, key);
  const text = new TextDecoder().decode(message.subarray(0, message.indexOf(0x0a)));
  const withHeader = (header: string) => {
    const bytes = new TextEncoder().encode(`${header}\n`);
    const out = new Uint8Array(bytes.length + message.length - text.length - 1);
    out.set(bytes, 0);
    out.set(message.subarray(text.length + 1), bytes.length);
    return out;
  };
  const refused = async (bytes: Uint8Array, reason: RegExp, k = key) => {
    const result = await openMessage(bytes, k);
    assert.equal(result.ok, false);
    if (!result.ok) assert.match(result.reason, reason);
  };
  await refused(withHeader(text.replace('"user:ann"', '"user:bob"')), /disagree/);
  await refused(withHeader(text.replace('"origin":"n1"', '"origin":"n2"')), /disagree/);
  const flipped = message.slice();
  flipped[flipped.length - 5] = (flipped[flipped.length - 5] ?? 0) ^ 0x10;
  await refused(flipped, /refused/);
  await refused(message, /no identity matched/, (await JournalKey.generate()).key);
  await refused(new TextEncoder().encode("no header at all"), /malformed header/);
  await refused(withHeader('{"v":2}'), /malformed header/);
});
