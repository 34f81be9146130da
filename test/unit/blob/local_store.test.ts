// The local blob store against the contract every store meets, on a real directory; and what a crash
// mid-put left in its .tmp folder is cleared when it opens.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
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

test("opening the local store clears its own writer's leftovers and abandoned ones, not another's upload", async (t) => {
  const root = mkdtempSync(join(tmpdir(), "tandem-blob-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, ".tmp"));
  writeFileSync(join(root, ".tmp", "n1.abc.part"), "n1's, cut off by a crash");
  writeFileSync(join(root, ".tmp", "n2.def.part"), "n2's, in progress");
  writeFileSync(join(root, ".tmp", "n3.ghi.part"), "n3's, abandoned two hours ago");
  const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
  utimesSync(join(root, ".tmp", "n3.ghi.part"), twoHoursAgo, twoHoursAgo);
  const store = await LocalBlobStore.open("disk", root, "n1");
  assert.deepEqual(readdirSync(join(root, ".tmp")), ["n2.def.part"]);
  assert.equal(existsSync(join(root, ".tmp", "n1.abc.part")), false);
  const keys: string[] = [];
  for await (const object of store.list("")) keys.push(object.key);
  assert.deepEqual(keys, []);
});
