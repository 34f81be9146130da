// The journal key's X25519 stanza made with node:crypto (src/journal/native_x25519.ts) against age's own
// implementations: age-encryption's X25519 recipient and identity in both directions, and the age CLI
// encrypting to the same key; a file for another key opens to nothing, a malformed stanza is refused.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Decrypter, Encrypter, generateX25519Identity, identityToRecipient, Stanza } from "age-encryption";
import { NativeX25519Identity, NativeX25519Recipient } from "../../../src/journal/native_x25519.ts";
import { findBinary, testGate } from "../../support/tool_gate.ts";

const text = new TextEncoder().encode('{"type":"user.create","data":{"name":"ann"}}');

async function keyPair(): Promise<{ identity: string; recipient: string }> {
  const identity = await generateX25519Identity();
  return { identity, recipient: await identityToRecipient(identity) };
}

test("native X25519: what it seals, the library's identity opens, and what the library seals, it opens", async () => {
  const { identity, recipient } = await keyPair();
  const native = new Encrypter();
  native.addRecipient(new NativeX25519Recipient(recipient));
  const library = new Decrypter();
  library.addIdentity(identity);
  assert.deepEqual(await library.decrypt(await native.encrypt(text)), text);

  const libraryEncrypter = new Encrypter();
  libraryEncrypter.addRecipient(recipient);
  const nativeDecrypter = new Decrypter();
  nativeDecrypter.addIdentity(new NativeX25519Identity(identity));
  assert.deepEqual(await nativeDecrypter.decrypt(await libraryEncrypter.encrypt(text)), text);
});

test("native X25519: a file key wrapped to another key opens to nothing; a malformed stanza is refused", async () => {
  const mine = await keyPair();
  const other = await keyPair();
  const identity = new NativeX25519Identity(mine.identity);
  const [stanza] = new NativeX25519Recipient(other.recipient).wrapFileKey(new Uint8Array(16).fill(7));
  assert.ok(stanza !== undefined);
  assert.equal(identity.unwrapFileKey([stanza]), null);
  assert.equal(
    identity.unwrapFileKey([new Stanza(["scrypt", "c2FsdA", "18"], stanza.body)]),
    null,
    "not ours",
  );

  const [good] = new NativeX25519Recipient(mine.recipient).wrapFileKey(new Uint8Array(16).fill(7));
  assert.ok(good !== undefined);
  assert.deepEqual(new Uint8Array(identity.unwrapFileKey([stanza, good]) ?? []), new Uint8Array(16).fill(7));
  const flipped = good.body.slice();
  flipped[3] = (flipped[3] ?? 0) ^ 1;
  assert.equal(
    identity.unwrapFileKey([new Stanza(good.args, flipped)]),
    null,
    "an altered body opens to nothing",
  );
  assert.throws(() => identity.unwrapFileKey([new Stanza(["X25519"], good.body)]), /invalid X25519 stanza/);
  assert.throws(
    () => identity.unwrapFileKey([new Stanza(good.args, good.body.subarray(1))]),
    /invalid X25519 stanza/,
  );
  // A low-order share (here the all-zero point) makes an all-zero secret: refused, as the spec requires.
  const zeroShare = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  assert.throws(() => identity.unwrapFileKey([new Stanza(["X25519", zeroShare], good.body)]));
  assert.throws(() => new NativeX25519Recipient("age1nope"));
  assert.throws(() => new NativeX25519Identity(mine.recipient));
});

const age = findBinary("age");
const gate = testGate(age === undefined ? "the age CLI (apt-get install age)" : undefined);

test("native X25519: a file the age CLI encrypted to the key opens (interop)", {
  skip: gate.skip,
}, async (t) => {
  if (gate.unsupported !== undefined) assert.fail(gate.unsupported);
  const dir = mkdtempSync(join(tmpdir(), "tandem-x25519-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { identity, recipient } = await keyPair();
  writeFileSync(join(dir, "entry"), text);
  const sealed = execFileSync(age as string, ["--encrypt", "--recipient", recipient, join(dir, "entry")]);
  const decrypter = new Decrypter();
  decrypter.addIdentity(new NativeX25519Identity(identity));
  assert.deepEqual(await decrypter.decrypt(new Uint8Array(sealed)), text);
});
