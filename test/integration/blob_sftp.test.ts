// The sftp blob store on a private OpenSSH server (test/support/sshd_server.ts): the contract every store
// meets; a server whose host key is not the pinned one, and a client key the server does not know, refused
// with a clear reason; abandoned temporary files cleared on open; a restarted server reconnected to.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { SftpBlobStore, type SftpBlobStoreOptions } from "../../src/blob/sftp_store.ts";
import { checkBlobStoreContract, readAllBytes } from "../support/blob_store_contract.ts";
import { generateSshKey, SshdServer, sshdBinary, sshKeygenBinary } from "../support/sshd_server.ts";
import { testGate } from "../support/tool_gate.ts";

const { unsupported, skip } = testGate(
  sshdBinary === undefined || sshKeygenBinary === undefined
    ? "OpenSSH's sshd and ssh-keygen (apt-get install openssh-server)"
    : undefined,
);

/** OpenSSH's fingerprint of a public key line, to compare with what the error shows. */
function fingerprintOf(publicKey: string): string {
  const blob = Buffer.from(publicKey.split(" ")[1] ?? "", "base64");
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

describe("the sftp blob store", { skip, timeout: 120_000 }, () => {
  let server: SshdServer;
  let roots = 0;

  before(async () => {
    if (unsupported) assert.fail(unsupported);
    server = await SshdServer.start();
  });
  after(() => server?.stop());

  /** Options for a store on the test's server, in a folder of its own (not there yet: open makes it). */
  function options(overrides: Partial<SftpBlobStoreOptions> = {}): SftpBlobStoreOptions {
    return {
      name: "remote",
      host: "127.0.0.1",
      port: server.port,
      username: server.username,
      privateKey: server.clientKey.privateKey,
      hostKey: server.hostKey,
      root: join(server.dir, "stores", `root${++roots}`),
      connectTimeoutMs: 10_000,
      ...overrides,
    };
  }

  it("meets the blob store contract", async (t) => {
    const store = await SftpBlobStore.open(options());
    t.after(() => store.close());
    await checkBlobStoreContract(t, store, 8 << 20);
  });

  it("concurrent calls share the one connection", async (t) => {
    const store = await SftpBlobStore.open(options());
    t.after(() => store.close());
    const keys = Array.from({ length: 12 }, (_, i) => `many/${i % 3}/obj${i}`);
    await Promise.all(keys.map((key) => store.put(key, Readable.from([Buffer.from(key.repeat(1000))]))));
    const read = await Promise.all(
      keys.map(async (key) => (await readAllBytes(await store.get(key))).toString()),
    );
    assert.deepEqual(
      read,
      keys.map((key) => key.repeat(1000)),
    );
  });

  it("refuses a server whose host key is not the pinned one, showing the key it presented", async () => {
    const other = generateSshKey(join(server.dir, `other_host_${Date.now()}`));
    await assert.rejects(SftpBlobStore.open(options({ hostKey: other.publicKey })), (error: Error) => {
      assert.match(error.message, /^blob store remote \(sftp 127\.0\.0\.1:\d+\): /);
      assert.match(error.message, /host key did not match the pinned one/);
      assert.ok(error.message.includes(fingerprintOf(server.hostKey)), error.message);
      assert.ok(error.message.includes(fingerprintOf(other.publicKey)), error.message);
      assert.ok(!error.message.includes("PRIVATE KEY"), error.message);
      return true;
    });
  });

  it("a client key the server does not know is refused with an authentication error", async () => {
    const stranger = generateSshKey(join(server.dir, `stranger_${Date.now()}`));
    await assert.rejects(SftpBlobStore.open(options({ privateKey: stranger.privateKey })), (error: Error) => {
      assert.match(
        error.message,
        /^blob store remote \(sftp 127\.0\.0\.1:\d+\): authentication as \S+ failed/,
      );
      assert.ok(!error.message.includes("PRIVATE KEY"), error.message);
      return true;
    });
  });

  it("a host_key that is not a public key line is refused before connecting", async () => {
    await assert.rejects(
      SftpBlobStore.open(options({ hostKey: "127.0.0.1 ssh-ed25519" })),
      /blob store remote \(sftp .*\): host_key is not a public key line/,
    );
  });

  it("opening clears temporary files an interrupted put abandoned, not another's upload in progress", async (t) => {
    const opts = options();
    mkdirSync(join(opts.root, ".tmp"), { recursive: true });
    const abandoned = join(opts.root, ".tmp", "abandoned.part");
    writeFileSync(abandoned, "half");
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
    utimesSync(abandoned, twoHoursAgo, twoHoursAgo);
    const uploading = join(opts.root, ".tmp", "uploading.part");
    writeFileSync(uploading, "in progress");
    const store = await SftpBlobStore.open(opts);
    t.after(() => store.close());
    assert.equal(existsSync(abandoned), false);
    assert.equal(existsSync(uploading), true);
    const keys: string[] = [];
    for await (const object of store.list("")) keys.push(object.key);
    assert.deepEqual(keys, []);
  });

  it("a put whose source fails leaves no temporary file behind", async (t) => {
    const opts = options();
    const store = await SftpBlobStore.open(opts);
    t.after(() => store.close());
    const failing = new Readable({
      read() {
        this.destroy(new Error("source broke"));
      },
    });
    await assert.rejects(store.put("x/y", failing), /source broke/);
    assert.deepEqual(readdirSync(join(opts.root, ".tmp")), []);
  });

  it("after the server restarts (its connections dropped), the next calls reconnect", async (t) => {
    const store = await SftpBlobStore.open(options());
    t.after(() => store.close());
    await store.put("before/restart", Readable.from([Buffer.from("one")]));
    await server.restart();
    assert.equal((await store.stat("before/restart"))?.size, 3);
    await server.restart();
    await store.put("after/restart", Readable.from([Buffer.from("two")]));
    assert.equal((await readAllBytes(await store.get("after/restart"))).toString(), "two");
  });

  it("errors name the store; a server that is not there is a clear connection error", async () => {
    const down = await SshdServer.start();
    const port = down.port;
    await down.stop();
    await assert.rejects(
      SftpBlobStore.open(options({ port })),
      new RegExp(`blob store remote \\(sftp 127\\.0\\.0\\.1:${port}\\): cannot connect: .*ECONNREFUSED`),
    );
  });
});
