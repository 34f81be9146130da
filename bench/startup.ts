// Start-up with a large materialised store: 3 agents (the compiled build, rebuilt first) materialise 100,000
// entries of 1 KiB in 300 directories (written through the API, as an operator would), then one follower is
// stopped and restarted, alternately with SIGTERM and kill -9 (right after 1,000 rewrites acknowledged by
// every node, so the manifest's saved seq lags its store), several times. Each restart is timed from the
// spawn (Date.now() here) and from its "mesh listening" log line to its "agent started" and "materialiser
// resynced" lines (pino `time`, same machine clock). After each restart the node's files are checked: every
// entry present, sampled files holding their value. Prints the distribution, writes
// bench/results/startup.json.
//
//   node bench/startup.ts [--quick] [--results-dir DIR] [--entries N] [--trials N]
import { readdir, readFile } from "node:fs/promises";
import { Agent, request } from "node:http";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import type { ClusterHarness } from "../test/support/cluster_harness.ts";
import {
  CLUSTER_NODE_IDS,
  createBenchCluster,
  exitOnSignals,
  type LogRecord,
  logRecordsSince,
  waitForSteadyCluster,
} from "./support/bench_cluster.ts";
import { buildCli } from "./support/cli_build.ts";
import { type Distribution, summarize } from "./support/distribution.ts";
import { describeMachine, formatMachine } from "./support/machine.ts";
import { defaultResultsDir, writeResult } from "./support/result_file.ts";
import { printTable } from "./support/table.ts";
import { Comparison, checkTarget, targetHeader, targetRow } from "./support/target.ts";

const ENTRIES_FULL = 100_000;
const ENTRIES_QUICK = 10_000;
const TRIALS_FULL = 10;
const TRIALS_QUICK = 2;
const DIRECTORIES = 300;
const VALUE_BYTES = 1024;
const BATCH_WRITES = 1_000;
/** Entries rewritten (same values, new versions) right before each kill -9. */
const REWRITES_BEFORE_KILL = 1_000;
const STARTUP_MS_MAX = 2_000;
const STEADY_TIMEOUT_MS = 30_000;
/** Populating 100k entries includes every node writing and fsyncing 100k files. */
const MATERIALISED_TIMEOUT_MS = 20 * 60_000;
const RESTART_TIMEOUT_MS = 60_000;
const SAMPLED_FILES = 200;
/** The restarted node: a follower's restart does not move leadership between trials. */
const VICTIM = CLUSTER_NODE_IDS[2];

interface Options {
  quick: boolean;
  resultsDir: string;
  entries: number;
  trials: number;
}

interface StartupTrial {
  trial: number;
  stop: "SIGTERM" | "SIGKILL";
  /** Spawn → "mesh listening" (module loading, config, data-dir lock, TLS set-up). */
  spawnToMeshMs: number;
  /** "mesh listening" → "agent started": what the figure measured. */
  meshToStartedMs: number;
  /** "mesh listening" → "materialiser resynced" (after "agent started" when the resync runs behind it). */
  meshToResyncedMs: number;
  /** Spawn → "agent started": how long the restarted node is out of service. */
  spawnToStartedMs: number;
  /** Fields of the "materialiser resynced" line (written, removed, how long). */
  resynced: Record<string, unknown>;
  /** Fields of the "materialiser caught up" line (the lag applied before start), if any. */
  caughtUp: Record<string, unknown> | null;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      "results-dir": { type: "string", default: defaultResultsDir },
      entries: { type: "string" },
      trials: { type: "string" },
    },
  });
  const quick = values.quick;
  return {
    quick,
    resultsDir: values["results-dir"],
    entries: values.entries ? Number(values.entries) : quick ? ENTRIES_QUICK : ENTRIES_FULL,
    trials: values.trials ? Number(values.trials) : quick ? TRIALS_QUICK : TRIALS_FULL,
  };
}

function entryPath(index: number): string {
  return `startup/d${String(index % DIRECTORIES).padStart(3, "0")}/file-${index}.conf`;
}

/** A deterministic 1 KiB text value per entry, so a sampled file can be checked without keeping them. */
function entryValue(index: number): Buffer {
  const line = `# entry ${index}\nserver_name host-${index}.example.org;\n`;
  return Buffer.from(line.repeat(Math.ceil(VALUE_BYTES / line.length)).slice(0, VALUE_BYTES));
}

function materialisedDir(harness: ClusterHarness, id: string): string {
  return join(harness.dir, "materialised", id);
}

function post(url: string, body: string, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: "POST", agent, headers: { "content-type": "application/json" } },
      (res) => {
        res.resume();
        res.once("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.once("error", reject);
    req.end(body);
  });
}

/** Writes entries [first, end) with their values through node 1's API. */
async function writeRange(
  harness: ClusterHarness,
  range: { first: number; end: number },
  minAcks: number | "all",
  agent: Agent,
): Promise<void> {
  const url = `${harness.node(CLUSTER_NODE_IDS[0]).apiUrl}/api/v1/store`;
  const writes = [];
  for (let i = range.first; i < range.end; i++)
    writes.push({ path: entryPath(i), value: entryValue(i).toString("base64") });
  const status = await post(url, JSON.stringify({ writes, minAcks }), agent);
  if (status !== 200) throw new Error(`batch at ${range.first} answered HTTP ${status}`);
}

async function populate(harness: ClusterHarness, entries: number): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  let next = 0;
  const writer = async () => {
    while (next < entries) {
      const first = next;
      next = Math.min(entries, next + BATCH_WRITES);
      await writeRange(harness, { first, end: next }, 1, agent);
    }
  };
  await Promise.all(Array.from({ length: 4 }, writer));
  agent.destroy();
}

/** Regular files under `dir` with the entries' names (the manifest and temp files left out). */
async function countEntryFiles(dir: string): Promise<number> {
  const found = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return found.filter((e) => e.isFile() && e.name.startsWith("file-") && e.name.endsWith(".conf")).length;
}

async function waitForMaterialised(harness: ClusterHarness, ids: readonly string[], entries: number) {
  const deadline = Date.now() + MATERIALISED_TIMEOUT_MS;
  for (;;) {
    const counts = await Promise.all(ids.map((id) => countEntryFiles(materialisedDir(harness, id))));
    if (counts.every((c) => c === entries)) return;
    if (Date.now() > deadline)
      throw new Error(`materialised files ${counts.join("/")} of ${entries} after the deadline`);
    await sleep(2_000);
  }
}

/** Every entry is on disk and sampled files hold exactly their value. */
async function checkFiles(dir: string, entries: number, trial: number): Promise<void> {
  const count = await countEntryFiles(dir);
  if (count !== entries) throw new Error(`trial ${trial}: ${count} files of ${entries} after the restart`);
  for (let s = 0; s < SAMPLED_FILES; s++) {
    const index = Math.floor((s * entries) / SAMPLED_FILES) + (trial % 7);
    if (index >= entries) continue;
    const content = await readFile(join(dir, ...entryPath(index).split("/")));
    if (!content.equals(entryValue(index))) throw new Error(`trial ${trial}: ${entryPath(index)} differs`);
  }
}

async function waitForLine(harness: ClusterHarness, id: string, fromLine: number, msg: string) {
  const deadline = Date.now() + RESTART_TIMEOUT_MS;
  for (;;) {
    const record = logRecordsSince(harness, id, fromLine).find((r) => r.msg === msg);
    if (record) return record;
    if (Date.now() > deadline) throw new Error(`no "${msg}" from ${id}\n${harness.dumpLogs()}`);
    await sleep(20);
  }
}

async function restartTrial(harness: ClusterHarness, trial: number, entries: number): Promise<StartupTrial> {
  const stop = trial % 2 === 0 ? "SIGTERM" : "SIGKILL";
  if (stop === "SIGKILL") {
    const agent = new Agent({ keepAlive: false });
    const first = (trial * REWRITES_BEFORE_KILL) % Math.max(1, entries - REWRITES_BEFORE_KILL);
    await writeRange(harness, { first, end: Math.min(entries, first + REWRITES_BEFORE_KILL) }, "all", agent);
  }
  await harness.kill(VICTIM, stop);
  const fromLine = harness.logLines(VICTIM).length;
  const spawnAtMs = Date.now();
  harness.start(VICTIM);
  const mesh = await waitForLine(harness, VICTIM, fromLine, "mesh listening");
  const started = await waitForLine(harness, VICTIM, fromLine, "agent started");
  const resynced = await waitForLine(harness, VICTIM, fromLine, "materialiser resynced");
  const caughtUp = logRecordsSince(harness, VICTIM, fromLine).find((r) => r.msg === "materialiser caught up");
  await checkFiles(materialisedDir(harness, VICTIM), entries, trial);
  return {
    trial,
    stop,
    spawnToMeshMs: mesh.time - spawnAtMs,
    meshToStartedMs: started.time - mesh.time,
    meshToResyncedMs: resynced.time - mesh.time,
    spawnToStartedMs: started.time - spawnAtMs,
    resynced: logFields(resynced),
    caughtUp: caughtUp ? logFields(caughtUp) : null,
  };
}

function logFields(record: LogRecord): Record<string, unknown> {
  const {
    time: _time,
    msg: _msg,
    level: _level,
    pid: _pid,
    hostname: _host,
    node: _node,
    ...fields
  } = record;
  return fields;
}

function row(label: string, d: Distribution): string[] {
  return [label, d.p50.toFixed(0), d.p90.toFixed(0), d.max.toFixed(0)];
}

async function main(): Promise<void> {
  exitOnSignals();
  const options = parseOptions();
  buildCli();
  const harness = await createBenchCluster("build");
  try {
    for (const id of CLUSTER_NODE_IDS)
      harness.editConfig(id, (config) => {
        config.store = { materialise: { dir: `materialised/${id}` } };
      });
    harness.startAll();
    await waitForSteadyCluster(harness, STEADY_TIMEOUT_MS);
    const populateStartMs = Date.now();
    await populate(harness, options.entries);
    const writtenMs = Date.now() - populateStartMs;
    await waitForMaterialised(harness, CLUSTER_NODE_IDS, options.entries);
    const materialisedMs = Date.now() - populateStartMs;
    console.log(
      `populate  ${options.entries} entries written in ${(writtenMs / 1000).toFixed(1)} s, ` +
        `materialised on every node after ${(materialisedMs / 1000).toFixed(1)} s`,
    );

    const trials: StartupTrial[] = [];
    for (let trial = 0; trial < options.trials; trial++) {
      const result = await restartTrial(harness, trial, options.entries);
      trials.push(result);
      console.log(
        `trial ${String(trial).padStart(2)} ${result.stop.padEnd(7)} spawn→mesh ${result.spawnToMeshMs} ms, ` +
          `mesh→started ${result.meshToStartedMs} ms, mesh→resynced ${result.meshToResyncedMs} ms, ` +
          `spawn→started ${result.spawnToStartedMs} ms; caught up ${JSON.stringify(result.caughtUp)}; ` +
          `resynced ${JSON.stringify(result.resynced)}`,
      );
    }

    const machine = describeMachine();
    const of = (pick: (t: StartupTrial) => number) => summarize(trials.map(pick));
    const spawnToStarted = of((t) => t.spawnToStartedMs);
    const meshToStarted = of((t) => t.meshToStartedMs);
    const meshToResynced = of((t) => t.meshToResyncedMs);
    const spawnToMesh = of((t) => t.spawnToMeshMs);
    console.log(
      `\ndate      ${new Date().toISOString()}${options.quick ? "  (--quick: not for quoting)" : ""}`,
    );
    console.log(`machine   ${formatMachine(machine)}`);
    console.log(
      `store     ${options.entries} entries × ${VALUE_BYTES} B in ${DIRECTORIES} directories, ${trials.length} restarts of ${VICTIM}\n`,
    );
    printTable(
      ["interval (ms)", "p50", "p90", "max"],
      [
        row("spawn → mesh listening", spawnToMesh),
        row("mesh listening → agent started", meshToStarted),
        row("mesh listening → materialiser resynced", meshToResynced),
        row("spawn → agent started", spawnToStarted),
      ],
    );
    const targets = [
      checkTarget(
        `start-up p50, ${options.entries} entries (spawn → agent started)`,
        "ms",
        Comparison.Below,
        STARTUP_MS_MAX,
        spawnToStarted.p50,
      ),
      checkTarget(
        `start-up max, ${options.entries} entries (spawn → agent started)`,
        "ms",
        Comparison.Below,
        STARTUP_MS_MAX,
        spawnToStarted.max,
      ),
    ];
    console.log("");
    printTable([...targetHeader], targets.map(targetRow));
    const path = writeResult(options.resultsDir, {
      bench: "startup",
      date: new Date().toISOString(),
      quick: options.quick,
      machine,
      targets,
      data: {
        entries: options.entries,
        valueBytes: VALUE_BYTES,
        directories: DIRECTORIES,
        populate: { writtenMs, materialisedMs },
        spawnToMesh,
        meshToStarted,
        meshToResynced,
        spawnToStarted,
        trials,
      },
    });
    console.log(`wrote     ${path}`);
    if (!targets.every((t) => t.pass)) process.exitCode = 1;
  } finally {
    await harness.dispose();
  }
}

await main();
