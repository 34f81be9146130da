import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { Command } from "commander";
import { registerStoreCommands } from "../../../src/cli/commands/store.ts";
import { registerSyncCommand } from "../../../src/cli/commands/sync.ts";
import { MemoryStoreService } from "../../support/memory_store_service.ts";
import { startStoreServer } from "../api/store_http.ts";
import { runCli } from "./harness.ts";

/** Runs a command and returns its exit status, including the exitCode an action sets (then cleared). */
async function tandem(register: (program: Command) => void, args: string[]) {
  const run = await runCli(register, args);
  const exitCode = run.exitCode || Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { ...run, exitCode };
}

test("cli store: put from a file, get --out, ls, rm", async (t) => {
  const service = new MemoryStoreService({ peers: ["n2"] });
  const api = await startStoreServer(service);
  const dir = await mkdtemp(join(tmpdir(), "tandem-cli-store-"));
  t.after(async () => {
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });
  await writeFile(join(dir, "web.pem"), "PEM DATA");
  const put = await tandem(registerStoreCommands, [
    "put",
    "certs/web.pem",
    join(dir, "web.pem"),
    "--api",
    api.base,
  ]);
  assert.equal(put.exitCode, 0, put.stderr);
  assert.match(put.stdout, /put certs\/web\.pem \(8 bytes\): acknowledged \(n2; min_acks=1\)/);

  const out = join(dir, "copy.pem");
  const get = await tandem(registerStoreCommands, ["get", "certs/web.pem", "--out", out, "--api", api.base]);
  assert.equal(get.exitCode, 0, get.stderr);
  assert.equal(await readFile(out, "utf8"), "PEM DATA");

  const ls = await tandem(registerStoreCommands, ["ls", "certs/", "--api", api.base]);
  assert.match(ls.stdout, /^\s+8 {2}\S+Z {2}n1 +certs\/web\.pem\n$/);

  const removed = await tandem(registerStoreCommands, ["rm", "certs/web.pem", "--api", api.base]);
  assert.equal(removed.exitCode, 0);
  const missing = await tandem(registerStoreCommands, ["get", "certs/web.pem", "--api", api.base]);
  assert.equal(missing.exitCode, 1);
  assert.match(missing.stderr, /no entry at certs\/web\.pem/);
});

test("cli store: an unacknowledged write says so and exits 2; a refused one exits 1 with the reason", async (t) => {
  const service = new MemoryStoreService({ peers: ["n2", "n3"], peersAcking: new Set(["n2"]) });
  const api = await startStoreServer(service);
  const dir = await mkdtemp(join(tmpdir(), "tandem-cli-store-"));
  t.after(async () => {
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });
  await writeFile(join(dir, "v"), "v");
  const args = ["put", "a", join(dir, "v"), "--min-acks", "all", "--api", api.base];
  const partial = await tandem(registerStoreCommands, args);
  assert.equal(partial.exitCode, 2);
  assert.match(partial.stderr, /NOT acknowledged: 1 peer\(s\) hold it, min_acks=all asked \(n3: timed out\)/);
  const refused = await tandem(registerStoreCommands, ["put", "../etc/x", join(dir, "v"), "--api", api.base]);
  assert.equal(refused.exitCode, 1);
  assert.match(refused.stderr, /tandem put: /);
  const badFlag = await tandem(registerStoreCommands, ["rm", "a", "--min-acks", "most", "--api", api.base]);
  assert.notEqual(badFlag.exitCode, 0);
});

test("cli sync: dry run plans, a run uploads what changed and --delete removes what vanished", async (t) => {
  const service = new MemoryStoreService();
  const api = await startStoreServer(service);
  const dir = await mkdtemp(join(tmpdir(), "tandem-cli-sync-"));
  t.after(async () => {
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });
  await mkdir(join(dir, "web"), { recursive: true });
  await writeFile(join(dir, "web", "a.pem"), "A");
  await writeFile(join(dir, "b.pem"), "B");
  await service.write(
    [
      { path: "certs/b.pem", value: Buffer.from("B") },
      { path: "certs/old.pem", value: Buffer.from("old") },
      { path: "certs2/keep", value: Buffer.from("not ours") },
    ],
    { minAcks: 0 },
  );
  const base = ["sync", dir, "certs", "--api", api.base, "--min-acks", "0"];
  const dry = await tandem(registerSyncCommand, [...base, "--delete", "--dry-run"]);
  assert.equal(dry.exitCode, 0, dry.stderr);
  assert.equal(
    dry.stdout,
    "upload  certs/web/a.pem (1 bytes)\ndelete  certs/old.pem\n1 to upload, 1 to delete, 1 unchanged (dry run)\n",
  );
  assert.equal(service.writeCalls.length, 1, "a dry run writes nothing");

  const run = await tandem(registerSyncCommand, base);
  assert.equal(run.exitCode, 0, run.stderr);
  assert.equal(service.get("certs/web/a.pem")?.deleted, false);
  assert.equal(service.get("certs/old.pem")?.deleted, false, "without --delete nothing is removed");
  const withDelete = await tandem(registerSyncCommand, [...base, "--delete"]);
  assert.equal(withDelete.stdout, "0 to upload, 1 to delete, 2 unchanged: done\n");
  assert.equal(service.get("certs/old.pem")?.deleted, true);
  assert.equal(service.get("certs2/keep")?.deleted, false, "a sibling prefix is not the sync's");
  const again = await tandem(registerSyncCommand, [...base, "--delete"]);
  assert.equal(again.stdout, "0 to upload, 0 to delete, 2 unchanged\n");
});

test("cli sync: a file whose path breaks the rules stops the sync before anything is sent", async (t) => {
  const service = new MemoryStoreService();
  const api = await startStoreServer(service);
  const dir = await mkdtemp(join(tmpdir(), "tandem-cli-sync-"));
  t.after(async () => {
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });
  await writeFile(join(dir, "ok"), "x");
  await writeFile(join(dir, "bad\\name"), "x");
  const run = await tandem(registerSyncCommand, ["sync", dir, "certs", "--api", api.base]);
  assert.equal(run.exitCode, 1);
  assert.match(run.stderr, /backslash/);
  assert.equal(service.writeCalls.length, 0);
});

test("cli store: put --json prints the outcome alone and still exits 2 when not acknowledged", async (t) => {
  const service = new MemoryStoreService({ peers: ["n2"], peersAcking: new Set() });
  const api = await startStoreServer(service);
  const dir = await mkdtemp(join(tmpdir(), "tandem-cli-store-"));
  t.after(async () => {
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });
  await writeFile(join(dir, "v"), "v");
  const run = await tandem(registerStoreCommands, ["put", "a", join(dir, "v"), "--json", "--api", api.base]);
  assert.equal(run.exitCode, 2);
  const outcome = JSON.parse(run.stdout);
  assert.equal(outcome.acked, false);
  assert.deepEqual(outcome.hostsErr, [{ host: "n2", error: "timed out" }]);
});
