// What every blob store must do, run against each real one (local directory, moto's S3, a local OpenSSH
// server): put and read back byte for byte with the reported size and hash, replace, stat, list by prefix,
// delete (twice), a missing key's typed error, keys that would leave the root refused, and a put whose
// source fails midway leaves nothing under the key (atomic).
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import type { TestContext } from "node:test";
import { BlobKeyError, BlobNotFoundError, type BlobStore } from "../../src/blob/index.ts";

export async function readAllBytes(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A source of `size` bytes that fails with an error after `failAfter` of them. */
function failingSource(size: number, failAfter: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= failAfter) {
        this.destroy(new Error("source broke"));
        return;
      }
      const chunk = randomBytes(Math.min(64 * 1024, size - sent));
      sent += chunk.length;
      this.push(chunk);
    },
  });
}

/**
 * Runs the contract on `store` (empty, fresh for this test); `large` is the size of one object big enough
 * to need the store's multi-part path where it has one.
 */
export async function checkBlobStoreContract(
  t: TestContext,
  store: BlobStore,
  large = 8 << 20,
): Promise<void> {
  await t.test("put then get returns the same bytes, with the size and hash put reported", async () => {
    const data = randomBytes(large + 12_345);
    const put = await store.put("rec/2026/one.cast", Readable.from([data]));
    assert.equal(put.size, data.length);
    assert.equal(put.sha256, createHash("sha256").update(data).digest("hex"));
    assert.deepEqual(await readAllBytes(await store.get("rec/2026/one.cast")), data);
    const stat = await store.stat("rec/2026/one.cast");
    assert.equal(stat?.size, data.length);
    assert.equal(stat?.key, "rec/2026/one.cast");
  });

  await t.test("an empty object, and a put replaces what was there", async () => {
    await store.put("rec/empty", Readable.from([]));
    assert.equal((await readAllBytes(await store.get("rec/empty"))).length, 0);
    await store.put("rec/empty", Readable.from([Buffer.from("now something")]));
    assert.equal((await readAllBytes(await store.get("rec/empty"))).toString(), "now something");
  });

  await t.test("list by prefix finds exactly the keys under it", async () => {
    for (const key of ["lst/a/1", "lst/a/2", "lst/ab", "lst/b/1"]) {
      await store.put(key, Readable.from([Buffer.from(key)]));
    }
    const keysOf = async (prefix: string) => {
      const keys: string[] = [];
      for await (const object of store.list(prefix)) keys.push(object.key);
      return keys.sort();
    };
    assert.deepEqual(await keysOf("lst/a/"), ["lst/a/1", "lst/a/2"]);
    assert.deepEqual(await keysOf("lst/a"), ["lst/a/1", "lst/a/2", "lst/ab"]);
    assert.deepEqual(await keysOf("lst/"), ["lst/a/1", "lst/a/2", "lst/ab", "lst/b/1"]);
    assert.deepEqual(await keysOf("nothing/"), []);
  });

  await t.test(
    "delete removes, and deleting again is no error; a missing key is BlobNotFoundError",
    async () => {
      await store.put("del/x", Readable.from([Buffer.from("x")]));
      await store.delete("del/x");
      await store.delete("del/x");
      assert.equal(await store.stat("del/x"), null);
      await assert.rejects(store.get("del/x"), BlobNotFoundError);
    },
  );

  await t.test("keys that would leave the store's root are refused", async () => {
    for (const key of ["../escape", "/abs", "a/../../b", "a//b", "", ".hidden", "a/./b", "a\\b", "a\nb"]) {
      await assert.rejects(store.put(key, Readable.from([Buffer.from("no")])), BlobKeyError, key);
      await assert.rejects(store.get(key), BlobKeyError, key);
    }
  });

  await t.test("a put whose source breaks midway leaves nothing under the key", async () => {
    await assert.rejects(store.put("broken/obj", failingSource(large * 2, large + 4096)));
    assert.equal(await store.stat("broken/obj"), null);
    const left: string[] = [];
    for await (const object of store.list("broken")) left.push(object.key);
    assert.deepEqual(left, []);
  });
}
