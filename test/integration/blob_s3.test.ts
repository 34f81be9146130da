// The s3 blob store against moto's S3 server, one of the test's own per test on 127.0.0.1: the contract
// every store meets (parts of 5 MiB, so its large object goes multipart and its broken put aborts one);
// a store prefix puts objects under it and list() hands keys back without it; and, with moto checking
// signatures, a wrong secret key is an error naming the store and S3's code, never the key itself.
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { before, describe, it, type TestContext } from "node:test";
import {
  CreateBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { S3BlobStore, type S3BlobStoreOptions } from "../../src/blob/s3_store.ts";
import { checkBlobStoreContract, readAllBytes } from "../support/blob_store_contract.ts";
import { motoServerPython, TestServer } from "../support/test_server.ts";
import { findBinary, testGate } from "../support/tool_gate.ts";

const missing =
  findBinary("python3") === undefined
    ? "python3 (apt-get install python3), then moto's server (pip install 'moto[server]')"
    : motoServerPython() === undefined
      ? "moto's server for python3 (pip install 'moto[server]')"
      : undefined;
const { unsupported, skip } = testGate(missing);

const region = "us-east-1";
/** moto accepts any key unless told to check them (see the wrong-key test). */
const anyKey = { accessKeyId: "tandem-test", secretAccessKey: "tandem-test-secret" };

interface Moto {
  endpoint: string;
  /** A plain client, to look at the bucket from outside the store. */
  client: S3Client;
}

/** A moto of this test's own, stopped (by its pid) when the test ends. */
async function startMoto(t: TestContext): Promise<Moto> {
  const server = await TestServer.moto();
  const endpoint = `http://127.0.0.1:${server.port}`;
  const client = new S3Client({ region, endpoint, forcePathStyle: true, credentials: anyKey });
  t.after(async () => {
    client.destroy();
    await server.stop();
  });
  return { endpoint, client };
}

async function freshBucket(moto: Moto): Promise<string> {
  const bucket = `tandem-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6)}`;
  await moto.client.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

function storeOn(t: TestContext, moto: Moto, options: Partial<S3BlobStoreOptions> & { bucket: string }) {
  const store = new S3BlobStore({
    name: "bucket",
    region,
    endpoint: moto.endpoint,
    forcePathStyle: true,
    ...anyKey,
    ...options,
  });
  t.after(() => store.close());
  return store;
}

async function keysOf(store: S3BlobStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of store.list(prefix)) keys.push(object.key);
  return keys.sort();
}

/**
 * IAM's query API, unsigned: moto routes a request by the service in its Authorization header and checks
 * nothing until /moto-api/reset-auth turns checking on.
 */
async function iam(moto: Moto, params: Record<string, string>): Promise<string> {
  const response = await fetch(`${moto.endpoint}/`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: `AWS4-HMAC-SHA256 Credential=setup/20260101/${region}/iam/aws4_request, SignedHeaders=host, Signature=0`,
    },
    body: new URLSearchParams({ ...params, Version: "2010-05-08" }),
  });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  return text;
}

function xmlField(xml: string, name: string): string {
  const value = new RegExp(`<${name}>([^<]+)</${name}>`).exec(xml)?.[1];
  assert.ok(value, `${name} in ${xml}`);
  return value;
}

describe("blob store on S3 (moto)", { skip, timeout: 180_000 }, () => {
  before(() => {
    if (unsupported) assert.fail(unsupported);
  });

  it("meets the blob store contract, large objects in multipart uploads", async (t) => {
    const moto = await startMoto(t);
    const bucket = await freshBucket(moto);
    const store = storeOn(t, moto, { bucket, partSizeBytes: 5 << 20 });
    await checkBlobStoreContract(t, store, 8 << 20);
    // The broken put began a multipart upload (more than one part was read): it was aborted, not left.
    const uploads = await moto.client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    assert.deepEqual(uploads.Uploads ?? [], []);
  });

  it("puts objects under its prefix, and list() gives keys without it", async (t) => {
    const moto = await startMoto(t);
    const bucket = await freshBucket(moto);
    await moto.client.send(new PutObjectCommand({ Bucket: bucket, Key: "other/x", Body: "not ours" }));
    await moto.client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: "tandem/node-a/",
        Body: new Uint8Array(0),
        ContentLength: 0,
      }),
    );
    const store = storeOn(t, moto, { bucket, prefix: "tandem/node-a/" });

    await store.put("rec/one", Readable.from([Buffer.from("one")]));
    await store.put("rec/two", Readable.from([Buffer.from("two")]));
    const head = await moto.client.send(
      new HeadObjectCommand({ Bucket: bucket, Key: "tandem/node-a/rec/one" }),
    );
    assert.equal(head.ContentLength, 3);

    // The folder marker a console leaves ("tandem/node-a/") is no key, and other/x is outside the prefix.
    assert.deepEqual(await keysOf(store, ""), ["rec/one", "rec/two"]);
    assert.deepEqual(await keysOf(store, "rec/t"), ["rec/two"]);
    assert.equal((await store.stat("rec/one"))?.key, "rec/one");
    assert.equal((await readAllBytes(await store.get("rec/two"))).toString(), "two");
    assert.equal(await store.stat("other/x"), null);

    await store.delete("rec/one");
    await assert.rejects(
      moto.client.send(new HeadObjectCommand({ Bucket: bucket, Key: "tandem/node-a/rec/one" })),
      { name: "NotFound" },
    );
    assert.throws(
      () => storeOn(t, moto, { bucket, prefix: "tandem" }),
      /prefix "tandem" is not folder names/,
    );
  });

  it("with a wrong secret key, fails naming the store and S3's code, not the key", async (t) => {
    const moto = await startMoto(t);
    const bucket = await freshBucket(moto);
    await iam(moto, { Action: "CreateUser", UserName: "tandem" });
    const policy = { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "s3:*", Resource: "*" }] };
    await iam(moto, {
      Action: "PutUserPolicy",
      UserName: "tandem",
      PolicyName: "blobs",
      PolicyDocument: JSON.stringify(policy),
    });
    const created = await iam(moto, { Action: "CreateAccessKey", UserName: "tandem" });
    const accessKeyId = xmlField(created, "AccessKeyId");
    const secretAccessKey = xmlField(created, "SecretAccessKey");
    // From here on moto checks every request's signature against IAM's keys.
    const reset = await fetch(`${moto.endpoint}/moto-api/reset-auth`, { method: "POST", body: "0" });
    assert.equal(reset.status, 200);

    // The right key works: the failure below is the wrong key's, not moto refusing everything.
    const good = storeOn(t, moto, { name: "good", bucket, accessKeyId, secretAccessKey });
    await good.put("auth/ok", Readable.from([Buffer.from("ok")]));
    assert.equal((await readAllBytes(await good.get("auth/ok"))).toString(), "ok");

    const wrongSecret = `${secretAccessKey.slice(0, -4)}XXXX`;
    const bad = storeOn(t, moto, { name: "bad", bucket, accessKeyId, secretAccessKey: wrongSecret });
    const clear = (error: unknown, code: RegExp) => {
      assert.ok(error instanceof Error);
      assert.match(error.message, new RegExp(`^blob store bad \\(s3, bucket ${bucket}\\): `));
      assert.match(error.message, code);
      for (const secret of [secretAccessKey, wrongSecret, accessKeyId]) {
        assert.ok(!error.message.includes(secret), error.message);
      }
      return true;
    };
    await assert.rejects(bad.put("auth/no", Readable.from([Buffer.from("no")])), (e) =>
      clear(e, /put auth\/no: SignatureDoesNotMatch \(HTTP 403\)/),
    );
    await assert.rejects(bad.get("auth/ok"), (e) => clear(e, /get auth\/ok: SignatureDoesNotMatch/));
    await assert.rejects(keysOf(bad, "auth/"), (e) => clear(e, /list auth\/: SignatureDoesNotMatch/));
    // A HEAD's 403 has no body to name the code, but it is an error, not "no such object".
    await assert.rejects(bad.stat("auth/ok"), (e) => clear(e, /stat auth\/ok: .*HTTP 403/));
    assert.equal(await good.stat("auth/no"), null);
  });
});
