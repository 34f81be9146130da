// Backup and restore of a data directory with a real, busy SQLite store: the snapshot is consistent while
// writes go on, the restore is byte-for-byte what the manifest says, with a fresh store identity, without
// the vote, key material set aside; a non-empty target, an altered object and another key are refused.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { type TestContext, test } from "node:test";
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import {
  AgeDecryptError,
  LocalBlobStore,
  parseBackupKey,
  RestoreError,
  restoreBackup,
  takeBackup,
} from "../../../src/blob/index.ts";
import { SqliteLocalStore } from "../../../src/store/index.ts";
import { readAllBytes } from "../../support/blob_store_contract.ts";

async function setUp(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), "tandem-backup-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const dataDir = join(dir, "data");
  mkdirSync(dataDir);
  const store = SqliteLocalStore.open({
    path: join(dataDir, "store.db"),
    nodeId: "n1",
    valueBytesMax: 1 << 20,
  });
  t.after(() => store.close());
  writeFileSync(join(dataDir, "election-state.json"), '{"term":7,"votedFor":"n2"}');
  writeFileSync(join(dataDir, "agent.lock"), "");
  const identity = await generateX25519Identity();
  const blobs = await LocalBlobStore.open("archive", join(dir, "archive"));
  return { dir, dataDir, store, identity, recipient: await identityToRecipient(identity), blobs };
}

const write = (store: SqliteLocalStore, from: number, count: number) =>
  store.writeLocal(
    Array.from({ length: count }, (_, i) => ({
      path: `k/${from + i}`,
      value: new TextEncoder().encode(`v${from + i}`),
    })),
    Date.now(),
  );

test("a backup taken while the store is written restores into a consistent data directory", async (t) => {
  const { dir, dataDir, store, identity, recipient, blobs } = await setUp(t);
  write(store, 0, 5_000);
  const keyFile = join(dir, "journal.key");
  writeFileSync(keyFile, `${identity}\n`);
  // Writes keep landing while the snapshot is taken.
  let next = 5_000;
  const writer = setInterval(() => {
    write(store, next, 100);
    next += 100;
  }, 1);
  const phases = new Set<string>();
  const result = await takeBackup({
    dataDir,
    nodeId: "n1",
    clusterName: "c1",
    version: "test",
    store: blobs,
    prefix: "backups",
    recipients: [recipient],
    keyFiles: [keyFile],
    onProgress: (p) => phases.add(p.phase),
  }).finally(() => clearInterval(writer));
  assert.deepEqual([...phases], ["snapshot", "upload"]);
  assert.match(result.key, /^backups\/n1\/n1-\d{8}T\d{6}Z\.tar\.gz\.age$/);
  assert.deepEqual(parseBackupKey(result.key)?.id, result.id);
  assert.deepEqual(result.manifest.files.map((f) => f.name).sort(), [
    "election-state.json",
    "keys/journal.key",
    "store.db",
  ]);
  assert.equal(
    readdirSync(dataDir).some((name) => name.startsWith("backup-tmp")),
    false,
  );

  const target = join(dir, "restored");
  const manifest = await restoreBackup({
    store: blobs,
    key: result.key,
    identities: [identity],
    dataDir: target,
  });
  assert.equal(manifest.node, "n1");
  assert.deepEqual(readdirSync(target).sort(), ["keys-from-backup", "store.db"]);
  assert.equal(readFileSync(join(target, "keys-from-backup", "journal.key"), "utf8"), `${identity}\n`);
  const restored = SqliteLocalStore.open({
    path: join(target, "store.db"),
    nodeId: "n1",
    valueBytesMax: 1 << 20,
  });
  t.after(() => restored.close());
  // A prefix of the writes, in order: everything up to some point, nothing after it.
  const held = restored.list("k/", { limit: 1_000_000 }).map((e) => Number(e.path.slice(2)));
  assert.ok(held.length >= 5_000 && held.length % 100 === 0, `${held.length} entries`);
  assert.deepEqual(
    held.sort((a, b) => a - b),
    Array.from({ length: held.length }, (_, i) => i),
  );
  assert.notEqual(restored.identity().storeId, store.identity().storeId);
});

test("restore refuses a non-empty directory, an altered backup and one for another key", async (t) => {
  const { dir, dataDir, identity, recipient, blobs } = await setUp(t);
  const result = await takeBackup({
    dataDir,
    nodeId: "n1",
    clusterName: "c1",
    version: "test",
    store: blobs,
    prefix: "backups",
    recipients: [recipient],
    keyFiles: [],
  });
  const request = (over: Partial<Parameters<typeof restoreBackup>[0]>) =>
    restoreBackup({
      store: blobs,
      key: result.key,
      identities: [identity],
      dataDir: join(dir, "r"),
      ...over,
    });
  await assert.rejects(request({ dataDir }), /is not empty/);
  await assert.rejects(request({ identities: [await generateX25519Identity()] }), /encrypted to another key/);
  await assert.rejects(request({ key: "backups/n1/n1-20200101T000000Z.tar.gz.age" }), RestoreError);
  const bytes = await readAllBytes(await blobs.get(result.key));
  bytes[bytes.length - 50] = (bytes[bytes.length - 50] as number) ^ 1;
  await blobs.put(result.key, Readable.from([bytes]));
  await assert.rejects(request({}), AgeDecryptError);
  assert.deepEqual(
    readdirSync(dir).filter((n) => n.startsWith("r")),
    [],
    "nothing left of a failed restore",
  );
});

test("backup keys parse back to their node and time; other objects do not", () => {
  const parsed = parseBackupKey("nightly/n2/n2-20261207T030000Z.tar.gz.age");
  assert.deepEqual(parsed, {
    id: "n2-20261207T030000Z",
    node: "n2",
    createdMs: Date.parse("2026-12-07T03:00:00Z"),
  });
  assert.equal(parseBackupKey("nightly/n2/other.tar"), null);
});
