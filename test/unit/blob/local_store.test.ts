// The local blob store against the contract every store meets, on a real directory; and what a crash
// mid-put left in its .tmp folder is cleared when it opens.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { LocalBlobStore } from "../../../src/blob/index.ts";
import { checkBlobStoreContract } from "../../support/blob_store_contract.ts";

test("the local store meets the blob store contract", async (t) => {
  const root = mkdtempSync(join(tmpdir(), "tandem-blob-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  await checkBlobStoreContract(t, await LocalBlobStore.open("disk", root));
});

test("opening the local store clears temporary files an interrupted put left", async (t) => {
  const root = mkdtempSync(join(tmpdir(), "tandem-blob-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, ".tmp"));
  writeFileSync(join(root, ".tmp", "abc.part"), "half");
  const store = await LocalBlobStore.open("disk", root);
  assert.equal(existsSync(join(root, ".tmp", "abc.part")), false);
  const keys: string[] = [];
  for await (const object of store.list("")) keys.push(object.key);
  assert.deepEqual(keys, []);
});
