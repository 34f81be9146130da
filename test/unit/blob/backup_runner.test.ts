// The backup runner on a real data directory and a real directory store: a request names a configured
// target (or the only one), one backup runs at a time, progress is kept per job; a schedule (every second
// here) backs up and then prunes this node's backups that its retention does not keep, and never another
// node's.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { type TestContext, test } from "node:test";
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import { pino } from "pino";
import { BackupRequestError, BackupRunner, BlobStores } from "../../../src/blob/index.ts";
import type { BackupScheduleConfig } from "../../../src/config/index.ts";
import { SqliteLocalStore } from "../../../src/store/index.ts";
import { waitFor } from "../../support/wait_for.ts";

async function setUp(t: TestContext, schedules: BackupScheduleConfig[] = []) {
  const dir = mkdtempSync(join(tmpdir(), "tandem-runner-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const dataDir = join(dir, "data");
  mkdirSync(dataDir);
  const store = SqliteLocalStore.open({
    path: join(dataDir, "store.db"),
    nodeId: "n1",
    valueBytesMax: 1 << 20,
  });
  store.writeLocal([{ path: "a", value: new Uint8Array([1]) }], Date.now());
  store.close();
  writeFileSync(join(dataDir, "election-state.json"), "{}");
  const stores = new BlobStores([
    { type: "local", name: "archive", path: join(dir, "archive"), recipients: [] },
  ]);
  t.after(() => stores.close());
  const runner = new BackupRunner({
    nodeId: "n1",
    clusterName: "c1",
    version: "test",
    dataDir,
    stores,
    targets: [
      { name: "nightly", store: "archive", prefix: "backups" },
      { name: "weekly", store: "archive", prefix: "weekly" },
    ],
    schedules,
    recipients: [await identityToRecipient(await generateX25519Identity())],
    keyMaterial: [],
    logger: pino({ level: "silent" }),
  });
  t.after(() => runner.stop());
  return { runner, stores };
}

test("a request names a configured target; one backup at a time; its progress is kept", async (t) => {
  const { runner } = await setUp(t);
  assert.throws(() => runner.begin(undefined, false), /name a target: nightly, weekly/);
  assert.throws(() => runner.begin("offsite", false), /no backup target offsite/);
  const job = runner.begin("nightly", false);
  assert.throws(
    () => runner.begin("weekly", false),
    (error: unknown) => error instanceof BackupRequestError && error.conflict,
  );
  const done = await waitFor(
    "the backup done",
    async () => (runner.job(job.id)?.state === "done" ? runner.job(job.id) : undefined),
    () => JSON.stringify(runner.job(job.id)),
  );
  assert.equal(done?.phase, "upload");
  assert.ok((done?.bytesDone ?? 0) > 0 && done?.bytesDone === done?.bytesTotal);
  assert.match(done?.key ?? "", /^backups\/n1\/n1-\d{8}T\d{6}Z\.tar\.gz\.age$/);
  const listed = await runner.list("nightly");
  assert.deepEqual(
    listed.map((b) => b.id),
    [job.id],
  );
});

test("a schedule backs up, then keeps only what its retention keeps of this node's backups", async (t) => {
  const { runner, stores } = await setUp(t, [
    {
      target: "nightly",
      cron: "* * * * * *",
      timezone: "UTC",
      keep: { last: 2, daily: 0, weekly: 0 },
      withKeys: false,
      databases: null,
    },
  ]);
  // Another node's backup in the same target: never this node's to prune.
  const archive = await stores.get("archive");
  await archive.put("backups/n2/n2-20260101T000000Z.tar.gz.age", Readable.from([Buffer.from("n2's")]));
  runner.start();
  const seen = new Set<string>();
  await waitFor(
    "four scheduled backups, pruned to the newest two",
    async () => {
      const ours = (await runner.list("nightly")).filter((b) => b.node === "n1");
      for (const b of ours) seen.add(b.id);
      return seen.size >= 4 && ours.length === 2 ? ours : undefined;
    },
    () => `seen ${[...seen].join(", ")}`,
  );
  await runner.stop();
  const all = await runner.list("nightly");
  assert.equal(all.filter((b) => b.node === "n2").length, 1);
  const ours = all.filter((b) => b.node === "n1").map((b) => b.id);
  // Stopped after the last run's pruning: the newest two of every backup it made.
  assert.deepEqual(ours, [...new Set([...seen, ...ours])].sort().reverse().slice(0, 2));
});

test("a database schedule backs up each matching database and keeps per database what retention says", async (t) => {
  const { runner } = await setUp(t, [
    {
      target: "nightly",
      cron: "* * * * * *",
      timezone: "UTC",
      keep: { last: 1, daily: 0, weekly: 0 },
      withKeys: false,
      databases: ["shop*"],
    },
  ]);
  // What provisioning hands over: its databases, and a dump of one (here: a few bytes naming it).
  const dumped: string[] = [];
  runner.useDatabaseDumps({
    databases: async () => ["shop", "shop_eu", "crm"],
    dump: async (database) => {
      dumped.push(database);
      return { stream: Readable.from([Buffer.from(`dump of ${database}`)]), server: "r1" };
    },
  });
  runner.start();
  await waitFor(
    "two rounds of both shop databases, one backup of each kept",
    async () => {
      const listed = (await runner.list("nightly")).filter((b) => b.kind === "database");
      const rounds = dumped.filter((d) => d === "shop").length;
      return rounds >= 2 && listed.length === 2 ? listed : undefined;
    },
    () => `dumped ${dumped.join(", ")}`,
  );
  await runner.stop();
  assert.equal(dumped.includes("crm"), false, "crm matches no pattern");
  const listed = (await runner.list("nightly")).filter((b) => b.kind === "database");
  assert.deepEqual(listed.map((b) => b.node).sort(), ["shop", "shop_eu"]);
  assert.ok(
    listed.every((b) => /^backups\/databases\/(shop|shop_eu)\/\1-\d{8}T\d{6}Z\.pgdump\.age$/.test(b.key)),
  );
});
