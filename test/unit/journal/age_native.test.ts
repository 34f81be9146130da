// The journal's age files made with node:crypto (src/journal/age_native.ts) against age's own
// implementations, both ways: age-encryption and the age CLI open what it seals, it opens what they
// encrypt to the key (one chunk, several, empty); a file for another key, an altered one or a malformed
// one is refused.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { Decrypter, Encrypter, generateX25519Identity, identityToRecipient } from "age-encryption";
import { AgeFormatError, AgeX25519Key } from "../../../src/journal/age_native.ts";
import { findBinary, testGate } from "../../support/tool_gate.ts";

/** Sizes around the 64 KiB chunk: empty, small, exactly one chunk, one byte over, several. */
const sizes = [0, 300, 64 * 1024, 64 * 1024 + 1, 200_000];

async function keyPair(): Promise<{ identity: string; recipient: string; key: AgeX25519Key }> {
  const identity = await generateX25519Identity();
  return { identity, recipient: await identityToRecipient(identity), key: new AgeX25519Key(identity) };
}

test("age native: age-encryption opens what it seals, and it opens what age-encryption encrypts", async () => {
  const { identity, recipient, key } = await keyPair();
  assert.equal(key.recipient, recipient, "the same public key as the library derives");
  const decrypter = new Decrypter();
  decrypter.addIdentity(identity);
  const encrypter = new Encrypter();
  encrypter.addRecipient(recipient);
  for (const size of sizes) {
    const plain = randomBytes(size);
    assert.deepEqual(Buffer.from(await decrypter.decrypt(key.seal(plain))), plain, `sealed ${size} bytes`);
    assert.deepEqual(key.open(await encrypter.encrypt(plain)), plain, `opened ${size} bytes`);
  }
  assert.notDeepEqual(key.seal(Buffer.from("x")), key.seal(Buffer.from("x")), "a fresh file key each time");
});

test("age native: another key's file, an altered file, and what is not age are refused", async () => {
  const mine = await keyPair();
  const other = await keyPair();
  const sealed = other.key.seal(Buffer.from("for the other key"));
  assert.throws(() => mine.key.open(sealed), /no identity matched/);
  const own = mine.key.seal(randomBytes(70_000));
  // In the stanza's share, its body, the MAC, the nonce, the first chunk and the last byte.
  for (const at of [40, 95, 140, 160, 200, own.length - 1]) {
    const altered = Buffer.from(own);
    altered[at] = (altered[at] ?? 0) ^ 0x01;
    assert.throws(() => mine.key.open(altered), AgeFormatError, `byte ${at}`);
  }
  assert.throws(() => mine.key.open(own.subarray(0, own.length - 20)), AgeFormatError, "truncated");
  assert.throws(() => mine.key.open(Buffer.from("not age at all")), /not an age file/);
  const header = Buffer.from(own.subarray(0, 200)).toString("latin1");
  const share = header.split("\n")[1] ?? "";
  const zeroShare = Buffer.from(own)
    .toString("latin1")
    .replace(share, "-> X25519 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  assert.throws(
    () => mine.key.open(Buffer.from(zeroShare, "latin1")),
    /invalid X25519 stanza/,
    "a low-order share",
  );
  assert.throws(() => new AgeX25519Key(mine.recipient), /not an age X25519 identity/);
});

const age = findBinary("age");
const gate = testGate(age === undefined ? "the age CLI (apt-get install age)" : undefined);

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "tandem-age-native-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("age native: the age CLI opens what it seals and encrypts what it opens (interop)", {
  skip: gate.skip,
}, async (t) => {
  if (gate.unsupported !== undefined) assert.fail(gate.unsupported);
  const dir = tempDir(t);
  const { identity, recipient, key } = await keyPair();
  writeFileSync(join(dir, "key"), `${identity}\n`, { mode: 0o600 });
  for (const size of sizes) {
    const plain = randomBytes(size);
    writeFileSync(join(dir, "sealed.age"), key.seal(plain));
    const opened = execFileSync(age as string, [
      "--decrypt",
      "--identity",
      join(dir, "key"),
      join(dir, "sealed.age"),
    ]);
    assert.deepEqual(opened, plain, `the CLI opened ${size} bytes`);
    writeFileSync(join(dir, "plain"), plain);
    const encrypted = execFileSync(age as string, [
      "--encrypt",
      "--recipient",
      recipient,
      join(dir, "plain"),
    ]);
    assert.deepEqual(key.open(encrypted), plain, `opened the CLI's ${size} bytes`);
  }
});
