// Offload across real agents (processes, CLI, config files, the mesh): n1 records session entries that
// carry recordings; each recording is encrypted to the cluster's key, uploaded to the shared archive (a
// directory every node mounts, as a NAS would be), recorded in the store and deleted on n1. n1 is killed
// with kill -9 while it uploads, and restarted: in the end every recording is gone from n1 and fetched,
// decrypted and byte-identical, with `tandem blob get` on n3; nothing is left half-written in the archive.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { runTandem } from "../support/cli_run.ts";
import { ClusterHarness } from "../support/cluster_harness.ts";
import { waitFor } from "../support/wait_for.ts";

const ids = ["n1", "n2", "n3"];
const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

describe("blob offload: three agents", { timeout: 300_000 }, () => {
  let harness: ClusterHarness;
  after(() => harness?.dispose());

  it("recordings leave n1 through kill -9 and restart, and any node fetches them back", async () => {
    harness = await ClusterHarness.create({ nodes: 3 });
    const keyFile = join(harness.dir, "journal.key");
    assert.equal((await runTandem(["journal", "keygen", "--out", keyFile])).code, 0);
    const archive = join(harness.dir, "archive");
    for (const id of ids) {
      mkdirSync(join(harness.dir, "rec", id), { recursive: true });
      harness.editConfig(id, (config) => {
        config.journal = {
          key_file: keyFile,
          retry_base_ms: 100,
          retry_max_ms: 1_000,
          handlers: { "session.recorded": { exec: ["true"] } },
        };
        config.blob = {
          stores: { archive: { type: "local", path: archive } },
          offload: { store: "archive", dirs: [join(harness.dir, "rec", id)] },
        };
      });
    }
    harness.startAll();
    await harness.waitForAgreedLeader(ids);
    const api = (id: string) => harness.node(id).apiUrl;

    // Six recordings of 24 MiB, recorded while n1's peers are stopped: nothing ships, so nothing is
    // offloaded yet, however slowly the recording goes on a busy machine.
    await harness.kill("n2", "SIGTERM");
    await harness.kill("n3", "SIGTERM");
    const recordings = new Map<string, { file: string; sha256: string; size: number }>();
    for (let i = 0; i < 6; i++) {
      const file = join(harness.dir, "rec", "n1", `session-${i}.cast`);
      const data = randomBytes(24 << 20);
      writeFileSync(file, data);
      const recorded = await runTandem([
        "journal",
        "record",
        "session.recorded",
        "--api",
        api("n1"),
        "--file",
        file,
      ]);
      assert.equal(recorded.code, 0, recorded.stderr);
      recordings.set(recorded.stdout.trim(), { file, sha256: sha256(data), size: data.length });
    }
    const files = [...recordings.values()].map((r) => r.file);
    assert.ok(
      files.every((file) => existsSync(file)),
      "nothing offloaded before it shipped",
    );
    // The peers return, the entries ship, the uploads begin: n1 is killed while one is being written
    // (its temporary object in the archive's .tmp).
    await harness.restart("n2");
    await harness.restart("n3");
    const uploading = () =>
      existsSync(join(archive, ".tmp")) && readdirSync(join(archive, ".tmp")).length > 0;
    const deadline = Date.now() + 120_000;
    while (!uploading()) {
      assert.ok(Date.now() < deadline, `no upload seen within 120 s\n${harness.dumpLogs()}`);
      await sleep(2);
    }
    await harness.kill("n1");
    const leftAtKill = files.filter((file) => existsSync(file)).length;
    harness.start("n1");
    await waitFor(
      "every recording gone from n1",
      async () => (files.every((file) => !existsSync(file)) ? true : undefined),
      () => harness.dumpLogs(),
    );

    for (const [entry, recording] of recordings) {
      const out = join(harness.dir, `fetched-${entry}`);
      // n3 learns where it went through the store's replication: it may take a moment.
      const fetched = await waitFor(
        `entry ${entry} fetched on n3`,
        async () => {
          const run = await runTandem(["blob", "get", entry, "--api", api("n3"), "--out", out]);
          return run.code === 0 ? run : undefined;
        },
        () => harness.dumpLogs(),
      );
      assert.match(fetched.stderr, new RegExp(`${recording.size} bytes`));
      assert.equal(sha256(readFileSync(out)), recording.sha256, entry);
    }
    const listing = await runTandem(["blob", "ls", [...recordings.keys()][0] as string, "--api", api("n2")]);
    assert.match(listing.stdout, /session-0\.cast {2}25165824 bytes {2}archive:offload\/n1\//);
    assert.deepEqual(readdirSync(join(archive, ".tmp")), [], "no half upload left in the archive");
    assert.ok(leftAtKill > 0, "killed while an upload ran, so its file was still there");
  });
});
