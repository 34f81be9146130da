// Backups across real agents (processes, CLI, config files): n3 is backed up while writes go on, through
// `tandem backup`; the API refuses a request naming a path or an unknown target; a kill -9 in the middle
// of a backup leaves no temporary files and the next backup succeeds. Then n3 loses its disk: `tandem
// restore` rebuilds its data directory, n3 is removed and rejoins as a new member, and ends holding every
// acknowledged write, those made after the backup included.
import assert from "node:assert/strict";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { runTandem } from "../support/cli_run.ts";
import { ClusterHarness } from "../support/cluster_harness.ts";
import {
  describeRun,
  memberCommand,
  StoreWriter,
  waitForMembers,
  waitUntilHeld,
} from "../support/membership_cluster.ts";
import { waitFor } from "../support/wait_for.ts";

const ids = ["n1", "n2", "n3"];

describe("backup and restore: three agents", { timeout: 300_000 }, () => {
  let harness: ClusterHarness;
  let writer: StoreWriter | undefined;
  after(async () => {
    await writer?.stop();
    await harness?.dispose();
  });

  it("a node backed up online is restored after losing its disk, rejoins and catches up", async () => {
    harness = await ClusterHarness.create({ nodes: 3 });
    const keyFile = join(harness.dir, "cluster.key");
    assert.equal((await runTandem(["journal", "keygen", "--out", keyFile])).code, 0);
    const archive = join(harness.dir, "archive");
    for (const id of ids) {
      harness.editConfig(id, (config) => {
        config.blob = {
          key_file: keyFile,
          stores: { archive: { type: "local", path: archive } },
          backups: { targets: { nightly: { store: "archive" } } },
        };
      });
    }
    harness.startAll();
    await harness.waitForAgreedLeader(ids);
    const n3 = harness.node("n3");
    const cli = (args: string[]) => runTandem([...args, "--api", n3.apiUrl], {}, 60_000);

    // Big values, so a backup takes long enough to be killed in the middle (below).
    const big = "x".repeat(64 * 1024);
    for (let batch = 0; batch < 20; batch++) {
      const writes = Array.from({ length: 50 }, (_, i) => ({
        path: `big/${batch}-${i}`,
        value: Buffer.from(`${big}${batch}-${i}`).toString("base64"),
      }));
      const response = await fetch(`${harness.node("n1").apiUrl}/api/v1/store`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ writes, minAcks: "all" }),
      });
      assert.equal(response.status, 200, await response.text());
    }
    writer = new StoreWriter(harness, ["n1", "n2"], "load");
    await writer.ackedAtLeast(20, "before the backup");

    // Only configured targets; a body cannot name a path.
    for (const body of [{ target: "../../etc" }, { path: "/tmp/x" }, { target: "offsite" }]) {
      const response = await fetch(`${n3.apiUrl}/api/v1/backups`, {
        method: "POST",
        body: JSON.stringify(body),
        headers: { "content-type": "application/json" },
      });
      assert.equal(response.status, 400, JSON.stringify(body));
    }

    // A kill -9 mid-backup: the snapshot folder appears in n3's data directory; kill then.
    const dataDir = join(harness.dir, "data", "n3");
    const interrupted = cli(["backup"]);
    await waitFor(
      "n3's backup under way",
      async () => (readdirSync(dataDir).some((name) => name.startsWith("backup-tmp")) ? true : undefined),
      () => harness.dumpLogs(),
    );
    await harness.kill("n3");
    assert.notEqual((await interrupted).code, 0);
    await harness.restart("n3");
    await harness.waitForAgreedLeader(ids);
    await waitFor(
      "n3's leftovers cleared",
      async () => (readdirSync(dataDir).some((name) => name.startsWith("backup-tmp")) ? undefined : true),
      () => harness.dumpLogs(),
    );

    const backedUp = writer.acked.length;
    const backup = await cli(["backup"]);
    assert.equal(backup.code, 0, describeRun(backup));
    const id = backup.stdout.trim();
    assert.match(id, /^n3-\d{8}T\d{6}Z$/);
    assert.match(backup.stderr, new RegExp(`backup ${id} to nightly: backups/n3/${id}\\.tar\\.gz\\.age`));
    const listed = await cli(["backups"]);
    assert.match(listed.stdout, new RegExp(`^${id} +node +n3 `, "m"));
    assert.deepEqual(readdirSync(join(archive, ".tmp")), [], "no half upload in the archive");
    await writer.ackedAtLeast(backedUp + 20, "after the backup");

    // n3 loses its disk; its data directory is rebuilt from the backup.
    await harness.kill("n3");
    rmSync(dataDir, { recursive: true, force: true });
    const restore = await runTandem(
      ["restore", id, "--data-dir", dataDir, "--config", n3.configPath],
      {},
      60_000,
    );
    assert.equal(restore.code, 0, describeRun(restore));
    assert.match(restore.stdout, /tandem member remove n3/);
    assert.equal(existsSync(join(dataDir, "store.db")), true);
    assert.equal(existsSync(join(dataDir, "election-state.json")), false, "the vote is not restored");

    // It rejoins as a new member and catches up with everything, before and after the backup.
    const removal = await memberCommand(harness, "n1", ["remove", "n3"]);
    assert.equal(removal.code, 0, describeRun(removal));
    harness.start("n3", ["--join", `127.0.0.1:${harness.node("n1").meshPort}`]);
    await waitForMembers(harness, "n1", "n3 voting again", (doc) =>
      doc.members.find((m) => m.id === "n3")?.voting === true ? doc : undefined,
    );
    await writer.ackedMore(10, "with n3 back");
    await writer.stop();
    const acked = writer.acked;
    writer = undefined;
    assert.ok(acked.length > backedUp + 20);
    await waitUntilHeld(harness, "n3", "load", acked);
    const bigOnes = Array.from({ length: 1000 }, (_, n) => {
      const tag = `${Math.floor(n / 50)}-${n % 50}`;
      return { path: `big/${tag}`, value: `${big}${tag}` };
    });
    await waitUntilHeld(harness, "n3", "big", bigOnes);
  });
});
