// The offload step on a real directory store and real files: a file is encrypted, uploaded, verified,
// recorded and only then deleted; any node reads it back decrypted; every state a crash can leave (object
// uploaded but not recorded, recorded but not deleted) is finished by running the step again; files
// outside the configured folders, or reached through a symbolic link, are left alone; a record no peer
// acknowledged keeps the file; an altered object is refused when read.
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { type TestContext, test } from "node:test";
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import { pino } from "pino";
import {
  AgeDecryptError,
  ageDecryptStream,
  BlobNode,
  BlobRecords,
  BlobStores,
  OffloadStep,
  offloadKey,
} from "../../../src/blob/index.ts";
import type { JournalEntry } from "../../../src/journal/index.ts";
import { readAllBytes } from "../../support/blob_store_contract.ts";
import { MemoryStoreService } from "../../support/memory_store_service.ts";

async function setUp(t: TestContext, options: { keepLocal?: boolean; storeRecipients?: string[] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "tandem-offload-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const recordings = join(dir, "recordings");
  mkdirSync(recordings);
  const identity = await generateX25519Identity();
  const stores = new BlobStores([
    { type: "local", name: "archive", path: join(dir, "archive"), recipients: options.storeRecipients ?? [] },
  ]);
  t.after(() => stores.close());
  const kv = new MemoryStoreService({ peers: ["n2"] });
  const records = new BlobRecords(kv, "tandem/blobs");
  const step = new OffloadStep({
    stores,
    store: "archive",
    records,
    recipients: [await identityToRecipient(identity)],
    dirs: [recordings],
    types: null,
    keepLocal: options.keepLocal ?? false,
    minAcks: () => 1,
    logger: pino({ level: "silent" }),
  });
  const node = new BlobNode({ stores, records, identities: [identity], offloadStore: "archive" });
  return { dir, recordings, stores, kv, records, step, node };
}

function entryWith(files: string[]): JournalEntry {
  return {
    id: randomUUID(),
    origin: "n1",
    key: null,
    keySeq: 0,
    hlc: "1.0",
    type: "session.recorded",
    data: "null",
    files,
  };
}

test("a file is uploaded encrypted, verified, recorded, then deleted; and reads back decrypted", async (t) => {
  const { recordings, stores, records, step, node } = await setUp(t);
  const content = randomBytes(300_000);
  const file = join(recordings, "s1.cast");
  writeFileSync(file, content);
  const entry = entryWith([file]);
  assert.equal(step.appliesTo(entry), true);
  assert.equal(step.appliesTo(entryWith([])), false);
  const result = await step.run(entry);
  assert.equal(result.ok, true, result.detail);
  assert.equal(existsSync(file), false);
  const record = records.get(entry.id, 0);
  assert.equal(record?.plainSize, content.length);
  assert.equal(record?.name, "s1.cast");
  const stored = await readAllBytes(await (await stores.get("archive")).get(offloadKey(entry, 0)));
  assert.equal(stored.subarray(0, 21).toString(), "age-encryption.org/v1");
  assert.equal(stored.indexOf(content.subarray(0, 64)), -1);
  const opened = await node.open(entry.id, 0);
  assert.deepEqual(await readAllBytes(opened?.stream as Readable), content);
  // Run again (a crash after the delete, before the journal noted the step done): nothing to do.
  assert.equal((await step.run(entry)).ok, true);
});

test("a crash between upload and record, or between record and delete, is finished by the next run", async (t) => {
  const { recordings, stores, records, step, node } = await setUp(t);
  const file = join(recordings, "s2.cast");
  const content = randomBytes(70_000);
  writeFileSync(file, content);
  const entry = entryWith([file]);
  // Uploaded (half, or whole) but never recorded: the next run uploads again over it.
  await (await stores.get("archive")).put(
    offloadKey(entry, 0),
    Readable.from([Buffer.from("half an upload")]),
  );
  assert.equal((await step.run(entry)).ok, true);
  assert.deepEqual(await readAllBytes((await node.open(entry.id, 0))?.stream as Readable), content);
  // Recorded but the file still here: the next run only deletes it.
  writeFileSync(file, content);
  assert.equal((await step.run(entry)).ok, true);
  assert.equal(existsSync(file), false);
  assert.notEqual(records.get(entry.id, 0), null);
});

test("files outside the folders, symbolic links and linked folders are refused and left alone", async (t) => {
  const { dir, recordings, step } = await setUp(t);
  const outside = join(dir, "secret.txt");
  writeFileSync(outside, "not yours");
  symlinkSync(outside, join(recordings, "link.cast"));
  symlinkSync(dir, join(recordings, "linked-folder"));
  for (const file of [
    outside,
    join(recordings, "link.cast"),
    join(recordings, "linked-folder", "secret.txt"),
    "relative.cast",
  ]) {
    const result = await step.run(entryWith([file]));
    assert.equal(result.ok, false, file);
    assert.match(result.detail, /not under blob\.offload\.dirs|not a regular file/, file);
  }
  assert.equal(readFileSync(outside, "utf8"), "not yours");
  const missing = await step.run(entryWith([join(recordings, "never.cast")]));
  assert.match(missing.detail, /missing, and never offloaded/);
});

test("the file stays until a peer holds its record; keep_local keeps it for good", async (t) => {
  const { recordings, kv, step } = await setUp(t);
  const file = join(recordings, "s3.cast");
  writeFileSync(file, "session");
  const entry = entryWith([file]);
  kv.peersAcking = new Set();
  const unacked = await step.run(entry);
  assert.equal(unacked.ok, false);
  assert.match(unacked.detail, /kept until a peer holds the record/);
  assert.equal(existsSync(file), true);
  kv.peersAcking = new Set(["n2"]);
  // Recorded already: this run deletes (the record spreads by anti-entropy in a real cluster).
  assert.equal((await step.run(entry)).ok, true);
  assert.equal(existsSync(file), false);

  const kept = await setUp(t, { keepLocal: true });
  const keptFile = join(kept.recordings, "s4.cast");
  writeFileSync(keptFile, "kept");
  assert.equal((await kept.step.run(entryWith([keptFile]))).ok, true);
  assert.equal(readFileSync(keptFile, "utf8"), "kept");
});

test("an altered object is refused when read back", async (t) => {
  const { recordings, stores, step, node } = await setUp(t);
  const file = join(recordings, "s5.cast");
  writeFileSync(file, randomBytes(200_000));
  const entry = entryWith([file]);
  assert.equal((await step.run(entry)).ok, true);
  const store = await stores.get("archive");
  const stored = await readAllBytes(await store.get(offloadKey(entry, 0)));
  stored[stored.length - 100] = (stored[stored.length - 100] as number) ^ 0xff;
  await store.put(offloadKey(entry, 0), Readable.from([stored]));
  const opened = await node.open(entry.id, 0);
  await assert.rejects(readAllBytes(opened?.stream as Readable), AgeDecryptError);
});

test("a store's own recipients can open its objects too (an offsite recovery key)", async (t) => {
  const offline = await generateX25519Identity();
  const { recordings, stores, step } = await setUp(t, {
    storeRecipients: [await identityToRecipient(offline)],
  });
  const file = join(recordings, "s6.cast");
  const content = randomBytes(100_000);
  writeFileSync(file, content);
  const entry = entryWith([file]);
  assert.equal((await step.run(entry)).ok, true);
  const sealed = await (await stores.get("archive")).get(offloadKey(entry, 0));
  assert.deepEqual(await readAllBytes(sealed.pipe(ageDecryptStream([offline]))), content);
});
