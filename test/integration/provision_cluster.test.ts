// Provisioning across real agents (processes, CLI, config files) and throwaway PostgreSQL clusters, in
// mode sync: the leader's passes make a database created on the primary appear on the replica with its
// rows, and the primary wait for it; every node shows the same status; the leader is killed with kill -9 and the next leader's passes carry on (a
// database created meanwhile arrives too), leaving one subscription and one slot per database.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { runTandem } from "../support/cli_run.ts";
import { ClusterHarness } from "../support/cluster_harness.ts";
import { describeRun } from "../support/membership_cluster.ts";
import { PgCluster, pgClusterUnsupported } from "../support/pg_cluster.ts";
import { testGate } from "../support/tool_gate.ts";
import { waitFor } from "../support/wait_for.ts";

const { unsupported, skip } = testGate(pgClusterUnsupported);
const ids = ["n1", "n2", "n3"];

describe("provisioning: three agents, a primary and a replica", { skip, timeout: 300_000 }, () => {
  let harness: ClusterHarness | undefined;
  let primary: PgCluster | undefined;
  let replica: PgCluster | undefined;
  after(async () => {
    await harness?.dispose();
    await primary?.dispose();
    await replica?.dispose();
  });

  it("databases reach the replica through kill -9 of the leader, once each", async () => {
    if (unsupported) assert.fail(unsupported);
    primary = await PgCluster.create({ name: "primary" });
    replica = await PgCluster.create({ name: "replica" });
    harness = await ClusterHarness.create({ nodes: 3 });
    const h = harness;
    const p = primary;
    const r = replica;
    const keyFile = join(h.dir, "cluster.key");
    assert.equal((await runTandem(["journal", "keygen", "--out", keyFile])).code, 0);
    const followerFile = join(h.dir, "follower.pass");
    writeFileSync(followerFile, "follower-Secret-1\n", { mode: 0o600 });
    for (const id of ids) {
      h.editConfig(id, (config) => {
        config.provision = {
          targets: {
            main: {
              primary: { url: p.url("postgres") },
              replicas: [{ name: "r1", url: r.url("postgres") }],
              interval: "1s",
              exclude: ["*_copy"],
              mode: "sync",
              follower: { password_file: followerFile },
            },
          },
        };
        config.blob = {
          key_file: keyFile,
          stores: { archive: { type: "local", path: join(h.dir, "archive") } },
          backups: { targets: { nightly: { store: "archive" } } },
        };
      });
    }
    h.startAll();
    const first = await h.waitForAgreedLeader(ids);
    const dump = () => `${h.dumpLogs()}\n--- primary\n${p.logTail(10)}\n--- replica\n${r.logTail(10)}`;
    const rows = async (database: string) =>
      r.query<{ n: number }>(database, "SELECT count(*)::int AS n FROM orders").then(
        (result) => result[0]?.n ?? 0,
        () => 0,
      );

    await p.query("postgres", "CREATE DATABASE shop");
    await p.query("shop", "CREATE TABLE orders (id int PRIMARY KEY, total numeric)");
    await p.query("shop", "INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 1000) g");
    await waitFor(
      "shop's 1,000 rows on the replica",
      async () => ((await rows("shop")) === 1000 ? true : undefined),
      dump,
    );

    // Every node serves the leader's last pass.
    const follower = ids.find((id) => id !== first.leaderId) as string;
    const status = await waitFor(
      "shop streaming in the status a follower serves",
      async () => {
        const run = await runTandem(["provision", "status", "--api", h.node(follower).apiUrl]);
        return /r1\s+shop\s+streaming/.test(run.stdout) ? run : undefined;
      },
      dump,
    );
    assert.match(status.stdout, new RegExp(`by ${first.leaderId} \\(term ${first.term}\\)`));
    // mode sync: the primary waits for the replica's subscription.
    assert.match(status.stdout, /the primary waits for: ANY 1 \("tandem_r1_shop_[0-9a-f]+"\)/);
    // A database's backup, taken through any node (dumped from the streaming replica), restored as a copy.
    const backup = await runTandem(
      ["backup", "--database", "shop", "--api", h.node(follower).apiUrl],
      {},
      60_000,
    );
    assert.equal(backup.code, 0, describeRun(backup));
    const id = backup.stdout.trim();
    assert.match(id, /^shop-\d{8}T\d{6}Z$/);
    const restored = await runTandem(
      ["restore", id, "--database", "shop_copy", "--config", h.node(follower).configPath],
      {},
      60_000,
    );
    assert.equal(restored.code, 0, describeRun(restored));
    const copy = await p.query<{ n: number; total: string }>(
      "shop_copy",
      "SELECT count(*)::int AS n, sum(total)::text AS total FROM orders",
    );
    const original = await p.query<{ n: number; total: string }>(
      "shop",
      "SELECT count(*)::int AS n, sum(total)::text AS total FROM orders",
    );
    assert.deepEqual(copy, original);
    const prune = await runTandem(["provision", "prune", "main", "--yes", "--api", h.node(follower).apiUrl]);
    assert.equal(prune.code, 1, "prune runs on the leader only");
    assert.match(prune.stderr, new RegExp(`the leader is ${first.leaderId}`), describeRun(prune));

    // The leader dies; a database created meanwhile arrives through the next leader's passes.
    await h.kill(first.leaderId);
    await p.query("postgres", "CREATE DATABASE billing");
    await p.query("billing", "CREATE TABLE orders (id int PRIMARY KEY, total numeric)");
    await p.query("billing", "INSERT INTO orders SELECT g, g FROM generate_series(1, 1000) g");
    await p.query("shop", "INSERT INTO orders SELECT g, g FROM generate_series(1001, 1500) g");
    const rest = ids.filter((id) => id !== first.leaderId);
    const second = await h.waitForAgreedLeader(rest);
    assert.notEqual(second.leaderId, first.leaderId);
    await waitFor(
      "billing's rows and shop's new ones on the replica",
      async () => ((await rows("billing")) === 1000 && (await rows("shop")) === 1500 ? true : undefined),
      dump,
    );
    const subscriptions = await r.query<{ n: number }>(
      "postgres",
      "SELECT count(*)::int AS n FROM pg_subscription",
    );
    const slots = await p.query<{ n: number }>(
      "postgres",
      "SELECT count(*)::int AS n FROM pg_replication_slots",
    );
    assert.equal(subscriptions[0]?.n, 2, "one subscription per database");
    assert.equal(slots[0]?.n, 2, "one slot per database");

    // Retiring a database: released (the primary may then drop it), orphaned, pruned on the replica.
    const api = h.node(second.leaderId).apiUrl;
    const release = await runTandem(["provision", "release", "main", "billing", "--api", api], {}, 60_000);
    assert.equal(release.code, 0, describeRun(release));
    await p.query("postgres", "DROP DATABASE billing");
    await waitFor(
      "billing reported orphaned",
      async () => {
        const run = await runTandem(["provision", "status", "--api", api]);
        return /r1\s+billing\s+orphaned/.test(run.stdout) ? true : undefined;
      },
      dump,
    );
    const pruned = await runTandem(["provision", "prune", "main", "--yes", "--api", api], {}, 60_000);
    assert.equal(pruned.code, 0, describeRun(pruned));
    assert.match(pruned.stdout, /dropped billing on r1/);
    const left = await r.query<{ datname: string }>(
      "postgres",
      "SELECT datname FROM pg_database WHERE datname = 'billing'",
    );
    assert.deepEqual(left, []);
    assert.equal(await rows("shop"), 1500, "shop untouched");
  });
});
