// Streaming age: round trips across chunk boundaries, interoperability with the standard `age` CLI both
// ways, and refusals: another key, an altered byte anywhere, a stream cut at a chunk boundary, not age.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, type Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { test } from "node:test";
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import { AgeDecryptError, ageDecryptStream, ageEncryptStream } from "../../../src/blob/index.ts";
import { findBinary, testGate } from "../../support/tool_gate.ts";

const CHUNK = 64 * 1024;

async function collect(source: Readable, transform: Transform): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await pipeline(source, transform, async (stream: AsyncIterable<Buffer>) => {
    for await (const chunk of stream) chunks.push(chunk);
  });
  return Buffer.concat(chunks);
}

/** `data` split into pieces of awkward sizes, as a file or socket would deliver it. */
function pieces(data: Buffer): Readable {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const size = [1, 7000, 65_535, 65_537, 200_000][i % 5] as number;
    out.push(data.subarray(at, at + size));
    at += size;
  }
  return Readable.from(out);
}

async function keyPair(): Promise<{ identity: string; recipient: string }> {
  const identity = await generateX25519Identity();
  return { identity, recipient: await identityToRecipient(identity) };
}

const encrypt = async (data: Buffer, recipient: string) =>
  collect(pieces(data), await ageEncryptStream([recipient]));
const decrypt = (sealed: Buffer, identity: string) => collect(pieces(sealed), ageDecryptStream([identity]));

test("what is encrypted decrypts to the same bytes, at every size around the 64 KiB chunks", async () => {
  const { identity, recipient } = await keyPair();
  for (const size of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 17, 1_000_003]) {
    const data = randomBytes(size);
    const sealed = await encrypt(data, recipient);
    const chunks = Math.max(1, Math.ceil(size / CHUNK));
    assert.ok(sealed.length > size + chunks * 16, `size ${size}`);
    assert.deepEqual(await decrypt(sealed, identity), data, `size ${size}`);
  }
});

test("any of several recipients can decrypt", async () => {
  const a = await keyPair();
  const b = await keyPair();
  const data = randomBytes(100_000);
  const sealed = await collect(Readable.from([data]), await ageEncryptStream([a.recipient, b.recipient]));
  assert.deepEqual(await decrypt(sealed, b.identity), data);
  assert.deepEqual(await decrypt(sealed, a.identity), data);
});

test("refused: another key, an altered byte in the header or the payload, a cut at a chunk boundary", async () => {
  const { identity, recipient } = await keyPair();
  const other = await keyPair();
  const data = randomBytes(3 * CHUNK);
  const sealed = await encrypt(data, recipient);
  await assert.rejects(decrypt(sealed, other.identity), /encrypted to another key/);
  const headerEnd = sealed.indexOf("\n--- ") - 5;
  for (const at of [headerEnd, sealed.length - 3 * (CHUNK + 16) + 5, sealed.length - 1]) {
    const altered = Buffer.from(sealed);
    altered[at] = (altered[at] as number) ^ 0x01;
    await assert.rejects(decrypt(altered, identity), AgeDecryptError, `byte ${at}`);
  }
  // Dropping the last chunk leaves a full chunk last, sealed as not-last: refused, not a shorter file.
  await assert.rejects(decrypt(sealed.subarray(0, sealed.length - (CHUNK + 16)), identity), AgeDecryptError);
  await assert.rejects(decrypt(Buffer.from("plain text, not age"), identity), /not an age file/);
});

const ageCli = findBinary("age");
const gate = testGate(
  ageCli === undefined ? "the age CLI is not installed (apt-get install age)" : undefined,
);

test("interoperates with the age CLI both ways", { skip: gate.skip }, async (t) => {
  if (gate.unsupported) assert.fail(gate.unsupported);
  const dir = mkdtempSync(join(tmpdir(), "tandem-age-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { identity, recipient } = await keyPair();
  writeFileSync(join(dir, "key.txt"), `${identity}\n`);
  const data = randomBytes(5 * CHUNK + 999);
  writeFileSync(join(dir, "ours.age"), await encrypt(data, recipient));
  execFileSync(ageCli as string, [
    "-d",
    "-i",
    join(dir, "key.txt"),
    "-o",
    join(dir, "ours.out"),
    join(dir, "ours.age"),
  ]);
  assert.deepEqual(readFileSync(join(dir, "ours.out")), data);
  writeFileSync(join(dir, "plain"), data);
  execFileSync(ageCli as string, ["-r", recipient, "-o", join(dir, "theirs.age"), join(dir, "plain")]);
  assert.deepEqual(await decrypt(readFileSync(join(dir, "theirs.age")), identity), data);
});
