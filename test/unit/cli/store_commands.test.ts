import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { Command } from "commander";
import { registerStatusCommand } from "../../../src/cli/commands/status.ts";
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

/** Raw control characters a terminal acts on (C0, DEL, C1), bidi overrides and line separators. */
function hasTerminalControl(text: string): boolean {
  return [...text].some((c) => {
    const n = c.codePointAt(0) ?? 0;
    return (
      n < 0x20 || (n >= 0x7f && n <= 0x9f) || (n >= 0x2028 && n <= 0x202e) || (n >= 0x2066 && n <= 0x2069)
    );
  });
}

test("cli store: a refused path is echoed with its control characters escaped, and nothing is sent", async (t) => {
  const service = new MemoryStoreService();
  const api = await startStoreServer(service);
  const dir = await mkdtemp(join(tmpdir(), "tandem-cli-store-"));
  t.after(async () => {
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });
  await writeFile(join(dir, "v"), "v");
  const cases: Array<[string, RegExp]> = [
    ["next\u0085line", /"next\\u0085line": path contains a control character \(U\+0085\)/],
    ["csi\u009b2Jx", /"csi\\u009b2Jx"/],
    ["esc\u001b[31mred", /"esc\\u001b\[31mred"/],
    ["new\nline", /"new\\nline"/],
    ["invoice\u202efdp.exe", /"invoice\\u202efdp\.exe": path contains a bidirectional formatting character/],
  ];
  for (const [path, echoed] of cases) {
    for (const args of [
      ["put", path, join(dir, "v")],
      ["get", path],
      ["rm", path],
    ]) {
      const run = await tandem(registerStoreCommands, [...args, "--api", api.base]);
      assert.equal(run.exitCode, 1, JSON.stringify(args));
      assert.match(run.stderr, echoed, JSON.stringify(args));
      assert.ok(!hasTerminalControl(run.stderr.slice(0, -1)), JSON.stringify(run.stderr));
    }
  }
  assert.equal(service.writeCalls.length, 0);
});

test("cli store and status: a server's message is printed with its control characters escaped", async (t) => {
  const hostile = "denied\u001b[2J\u009b31m\u202eevil\r\nforged line";
  const server = createServer((_req, res) => {
    const body = JSON.stringify({ error: { code: "forbidden", message: hostile } });
    res.writeHead(403, { "content-type": "application/json" }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const escaped = "denied\\u001b[2J\\u009b31m\\u202eevil\\r\\nforged line";
  const ls = await tandem(registerStoreCommands, ["ls", "--api", base]);
  assert.equal(ls.exitCode, 1);
  assert.equal(ls.stderr, `tandem ls: ${escaped}\n`);
  let stderr = "";
  const write = process.stderr.write;
  process.stderr.write = ((text: string) => {
    stderr += text;
    return true;
  }) as typeof process.stderr.write;
  try {
    const status = await tandem(registerStatusCommand, ["status", "--api", base]);
    assert.equal(status.exitCode, 1);
  } finally {
    process.stderr.write = write;
  }
  assert.equal(stderr, `tandem status: ${escaped}\n`);
});
