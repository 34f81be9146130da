import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { JournalKey, JournalKeyError, SealedPayloadError } from "../../../src/journal/journal_key.ts";
import { findBinary, testGate } from "../../support/tool_gate.ts";

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "tandem-key-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const text = new TextEncoder().encode('{"type":"user.create","data":{"name":"ann"}}');

test("journal key: a sealed payload opens with the key's file, and with no other key", async (t) => {
  const dir = tempDir(t);
  const { key, fileText } = await JournalKey.generate(new Date(0));
  assert.match(
    fileText,
    /^# created: 1970-01-01T00:00:00.000Z\n# public key: age1[0-9a-z]+\nAGE-SECRET-KEY-1[0-9A-Z]+\n$/,
  );
  writeFileSync(join(dir, "key"), fileText);
  const loaded = await JournalKey.load(join(dir, "key"));
  assert.equal(loaded.recipient, key.recipient);
  const sealed = await key.seal(text);
  assert.deepEqual(await loaded.open(sealed), text);
  assert.notDeepEqual(await key.seal(text), sealed, "a fresh file key each time");
  const other = (await JournalKey.generate()).key;
  await assert.rejects(other.open(sealed), SealedPayloadError);
});

test("journal key: a payload altered anywhere is refused", async () => {
  const { key } = await JournalKey.generate();
  const sealed = await key.seal(text);
  for (const at of [20, sealed.length - 40, sealed.length - 1]) {
    const tampered = sealed.slice();
    tampered[at] = (tampered[at] ?? 0) ^ 0x01;
    await assert.rejects(key.open(tampered), SealedPayloadError, `byte ${at}`);
  }
  await assert.rejects(key.open(new TextEncoder().encode("not age at all")), SealedPayloadError);
});

test("journal key: a key file that is not one X25519 identity is refused without echoing its content", async (t) => {
  const dir = tempDir(t);
  const { fileText } = await JournalKey.generate();
  const secret = fileText.split("\n")[2] ?? "";
  const files: Array<[string, string]> = [
    ["two", `${secret}\n${secret}\n`],
    ["garbage", "AGE-SECRET-KEY-1nope lowercase\n"],
    ["empty", "# only a comment\n"],
  ];
  for (const [name, content] of files) {
    writeFileSync(join(dir, name), content);
    await assert.rejects(JournalKey.load(join(dir, name)), (error: Error) => {
      assert.ok(error instanceof JournalKeyError);
      assert.ok(!error.message.includes(secret), "the secret is not in the message");
      return true;
    });
  }
  await assert.rejects(JournalKey.load(join(dir, "missing")), /cannot read the age key file/);
});

const age = findBinary("age");
const gate = testGate(age === undefined ? "the age CLI (apt-get install age)" : undefined);

test("journal key: the age CLI decrypts a sealed payload with the same key file (interop)", {
  skip: gate.skip,
}, async (t) => {
  if (gate.unsupported !== undefined) assert.fail(gate.unsupported);
  const dir = tempDir(t);
  const { key, fileText } = await JournalKey.generate();
  writeFileSync(join(dir, "key"), fileText, { mode: 0o600 });
  writeFileSync(join(dir, "entry.age"), await key.seal(text));
  const out = execFileSync(age as string, [
    "--decrypt",
    "--identity",
    join(dir, "key"),
    join(dir, "entry.age"),
  ]);
  assert.deepEqual(new Uint8Array(out), text);
});
