// startAgent in-process: a start that fails part-way stops what had started, in reverse order; a full start
// and stop leave no lock, socket or database handle behind; every log line names one component.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { pino } from "pino";
import { startAgent } from "../../../src/cli/agent.ts";
import { DataDirLock } from "../../../src/cli/data_dir_lock.ts";
import { parseConfigText, type TandemConfig } from "../../../src/config/index.ts";
import { reservePortRange } from "../../support/free_ports.ts";

const root = mkdtempSync(join(tmpdir(), "tandem-agent-start-"));
after(() => rmSync(root, { recursive: true, force: true }));
const pskEnv = "TANDEM_TEST_AGENT_PSK";
process.env[pskEnv] = randomBytes(32).toString("hex");

interface Setup {
  dir: string;
  config: TandemConfig;
  meshPort: number;
  apiPort: number;
}

async function setup(name: string, extra = ""): Promise<Setup> {
  const dir = join(root, name);
  mkdirSync(dir);
  const { base } = await reservePortRange(1);
  const text =
    `node: { id: n1 }\nlisten: 127.0.0.1:${base}\napi: { listen: 127.0.0.1:${base + 1} }\n` +
    `security: { mode: psk, psk_env: ${pskEnv} }\ntimings: { preset: local }\n${extra}`;
  const parsed = parseConfigText(text, join(dir, "tandem.yml"));
  assert.ok(parsed.ok, parsed.ok ? "" : parsed.error.format());
  return { dir, config: parsed.value, meshPort: base, apiPort: base + 1 };
}

/** Log lines as written, raw: JSON.parse would keep only the last of two equal keys. */
function memoryLogger(): { logger: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  return {
    logger: pino({ level: "debug", base: { node: "n1" } }, { write: (l: string) => lines.push(l) }),
    lines,
  };
}

/** This process's open descriptors on `path` (SQLite keeps the file open while the store is open). */
function openHandles(path: string): number {
  let count = 0;
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === path) count++;
    } catch {
      // closed between listing and reading
    }
  }
  return count;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** The lock is free when this process can take it again (it refuses a second holder in one process). */
function lockFree(dataDir: string): boolean {
  const lock = new DataDirLock(dataDir);
  try {
    lock.acquire();
  } catch {
    return false;
  }
  lock.release();
  return true;
}

test("agent: a materialiser that cannot open stops the store, cluster, mesh and lock, in reverse", async () => {
  const s = await setup("failing", "store:\n  materialise: { dir: www }\n");
  writeFileSync(join(s.dir, "www"), "a file where the directory should be");
  const { logger, lines } = memoryLogger();
  await assert.rejects(startAgent(s.config, logger), /www/);

  const stopped = lines
    .map((l) => JSON.parse(l) as { msg: string; part?: string })
    .filter((e) => e.msg === "stopped");
  assert.deepEqual(
    stopped.map((e) => e.part),
    ["tombstone sweep", "membership follower", "replicator", "sqlite", "cluster", "mesh", "data-dir lock"],
  );
  assert.equal(openHandles(join(s.config.dataDir, "store.db")), 0, "the SQLite store is closed");
  assert.ok(lockFree(s.config.dataDir), "the data-dir lock is released");
  assert.ok(await portFree(s.meshPort), "the mesh port is closed");
  assert.ok(await portFree(s.apiPort), "the API port was never opened");
});

test("agent: start and stop leave nothing open; every log line has one component", async () => {
  const s = await setup("running", "store:\n  materialise: { dir: www }\n");
  // A temp file a crash left behind: the materialiser logs its sweep at open.
  mkdirSync(join(s.dir, "www"));
  writeFileSync(join(s.dir, "www", ".a.tandem-tmp-0123456789abcdef"), "half written");
  const { logger, lines } = memoryLogger();
  const agent = await startAgent(s.config, logger);
  let stoppedAgent = false;
  try {
    const storeDb = join(s.config.dataDir, "store.db");
    assert.ok(openHandles(storeDb) > 0, "the store is open while the agent runs");
    assert.deepEqual([...agent.capabilities.keys()], ["store", "services"]);
    const health = await fetch(`http://127.0.0.1:${s.apiPort}/healthz`);
    assert.deepEqual(await health.json(), { status: "ok", node: "n1" });
    const status = (await (await fetch(`http://127.0.0.1:${s.apiPort}/api/v1/status`)).json()) as {
      node: { id: string };
      store: { readOnly: boolean; lastSeq: number };
    };
    assert.equal(status.node.id, "n1");
    assert.deepEqual(
      { readOnly: status.store.readOnly, lastSeq: status.store.lastSeq },
      { readOnly: false, lastSeq: 0 },
    );

    await agent.stop();
    stoppedAgent = true;
    assert.equal(openHandles(storeDb), 0);
    assert.ok(lockFree(s.config.dataDir));
    assert.ok(await portFree(s.meshPort));
    assert.ok(await portFree(s.apiPort));
  } finally {
    if (!stoppedAgent) await agent.stop();
  }

  for (const line of lines) {
    assert.ok((line.match(/"component":/g) ?? []).length <= 1, `one component per line: ${line}`);
  }
  const swept = lines.map((l) => JSON.parse(l) as { msg: string; component?: string });
  const sweep = swept.find((e) => e.msg === "removed leftover temp files");
  assert.equal(sweep?.component, "store.materialiser");
  assert.ok(swept.some((e) => e.msg === "agent stopped"));
});
