// Idle cost in the steady state: a 3-node cluster (default lan timings, the installed build: dist/tandem.js
// from `npm run build`, rebuilt first) and an idle 3-member etcd, started together and left alone for
// 20 minutes; the figures are taken over the second half (minute 10 to 20), when start-up and the JIT's
// compilation have faded. Then a 9-node cluster the same way for 10 minutes (minute 5 to 10). CPU is the
// utime+stime delta from /proc/<pid>/stat over the window (USER_HZ ticks from `getconf CLK_TCK`); memory is
// VmRSS from /proc/<pid>/status, sampled every second; "rss growth" is the end of the window against its
// start (flat = at most 1 MiB); read and write system calls (/proc/<pid>/io) count the messages a node
// handles, roughly one each per frame. The bench does not call the agents' API during the window (that
// would be work, not idling); it checks before and after that the leader and term did not change. Writes
// bench/results/idle.json. --quick runs each cluster 1 minute (window: its second half): not for quoting.
//
//   node bench/idle.ts [--quick] [--results-dir DIR]
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import type { Timings } from "../src/config/index.ts";
import { ClusterHarness } from "../test/support/cluster_harness.ts";
import {
  effectiveTimings,
  exitOnSignals,
  type Leadership,
  steadyLeadership,
} from "./support/bench_cluster.ts";
import { type BenchOptions, parseBenchOptions } from "./support/bench_options.ts";
import { buildCli } from "./support/cli_build.ts";
import { EtcdCluster, etcdVersion } from "./support/etcd.ts";
import { describeMachine, formatMachine, type Machine } from "./support/machine.ts";
import { type CpuTicks, clockTicksPerSecond, cpuTicks, memoryUsage } from "./support/process_usage.ts";
import { writeResult } from "./support/result_file.ts";
import { printTable } from "./support/table.ts";
import { Comparison, checkTarget, type TargetCheck, targetHeader, targetRow } from "./support/target.ts";

const MINUTE_MS = 60_000;
/** How long each cluster idles, full and --quick; the window is the second half of it. */
const RUN_MS = { full: { 3: 20 * MINUTE_MS, 9: 10 * MINUTE_MS }, quick: { 3: MINUTE_MS, 9: MINUTE_MS } };
const SAMPLE_INTERVAL_MS = 1_000;
const STEADY_TIMEOUT_MS = 60_000;
const CPU_PERCENT_OF_CORE_MAX = { 3: 1.0, 9: 1.5 };
const RSS_MIB_MAX = 80;
const RSS_GROWTH_MIB_MAX = 1;

interface ProcessIdleUsage {
  id: string;
  pid: number;
  cpuTicks: CpuTicks;
  /** Share of one core over the window: 100 = one core busy all the time. */
  cpuPercentOfCore: number;
  /** The part of it spent in the kernel (stime). */
  systemPercentOfCore: number;
  rssMiBStart: number;
  rssMiBMax: number;
  rssMiBEnd: number;
  /** VmHWM: the peak since the process started, start-up included. */
  rssPeakMiBSinceStart: number;
  readCallsPerSecond: number;
  writeCallsPerSecond: number;
}

interface SystemCalls {
  read: number;
  write: number;
}

function systemCalls(pid: number): SystemCalls {
  const io = readFileSync(`/proc/${pid}/io`, "utf8");
  const count = (key: string) => Number(new RegExp(`^${key}: (\\d+)$`, "m").exec(io)?.[1] ?? Number.NaN);
  return { read: count("syscr"), write: count("syscw") };
}

const mib = (kib: number): number => kib / 1024;

/**
 * Waits `skipMs`, then measures every process over `windowMs`: CPU ticks and system calls at both ends, RSS
 * every second. Only /proc is read: the processes are not disturbed.
 */
async function measureWindow(
  pids: ReadonlyMap<string, number>,
  skipMs: number,
  windowMs: number,
): Promise<{ windowMs: number; nodes: ProcessIdleUsage[] }> {
  await sleep(skipMs);
  const hz = clockTicksPerSecond();
  const start = new Map(
    [...pids].map(([id, pid]) => [
      id,
      { ticks: cpuTicks(pid), calls: systemCalls(pid), rssKiB: memoryUsage(pid).rssKiB },
    ]),
  );
  const rssKiBMax = new Map([...start].map(([id, s]) => [id, s.rssKiB]));
  const startedAtMs = performance.now();
  while (performance.now() - startedAtMs < windowMs) {
    await sleep(Math.min(SAMPLE_INTERVAL_MS, windowMs - (performance.now() - startedAtMs)));
    for (const [id, pid] of pids)
      rssKiBMax.set(id, Math.max(rssKiBMax.get(id) ?? 0, memoryUsage(pid).rssKiB));
  }
  const measuredMs = performance.now() - startedAtMs;
  const perSecond = (count: number) => count / (measuredMs / 1000);
  const percentOfCore = (ticks: number) => (perSecond(ticks) / hz) * 100;
  const nodes = [...pids].map(([id, pid]): ProcessIdleUsage => {
    const first = start.get(id);
    if (!first) throw new Error(`no start sample for ${id}`);
    const ticksEnd = cpuTicks(pid);
    const callsEnd = systemCalls(pid);
    const memory = memoryUsage(pid);
    const ticks = { user: ticksEnd.user - first.ticks.user, system: ticksEnd.system - first.ticks.system };
    return {
      id,
      pid,
      cpuTicks: ticks,
      cpuPercentOfCore: percentOfCore(ticks.user + ticks.system),
      systemPercentOfCore: percentOfCore(ticks.system),
      rssMiBStart: mib(first.rssKiB),
      rssMiBMax: mib(Math.max(rssKiBMax.get(id) ?? 0, memory.rssKiB)),
      rssMiBEnd: mib(memory.rssKiB),
      rssPeakMiBSinceStart: mib(memory.rssPeakKiB),
      readCallsPerSecond: perSecond(callsEnd.read - first.calls.read),
      writeCallsPerSecond: perSecond(callsEnd.write - first.calls.write),
    };
  });
  return { windowMs: measuredMs, nodes };
}

function nodeIds(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `n${i + 1}`);
}

function waitForSteady(harness: ClusterHarness, ids: string[]): Promise<Leadership> {
  return harness.waitFor(
    "a steady cluster (agreed leader, every peer alive)",
    ids,
    (statuses) => steadyLeadership(statuses, ids),
    STEADY_TIMEOUT_MS,
  );
}

interface TandemWindow {
  nodeCount: number;
  timings: Timings;
  runMs: number;
  windowMs: number;
  before: Leadership;
  after: Leadership;
  nodes: ProcessIdleUsage[];
}

interface EtcdWindow {
  version: string;
  runMs: number;
  windowMs: number;
  members: ProcessIdleUsage[];
}

/** A tandem cluster of `count` nodes, and optionally an etcd started with it, idle for `runMs`. */
async function measureIdle(
  count: number,
  runMs: number,
  withEtcd: boolean,
): Promise<{ tandem: TandemWindow; etcd: EtcdWindow | string | null }> {
  const ids = nodeIds(count);
  const harness = await ClusterHarness.create({ nodes: count, entry: "build" });
  let etcd: EtcdCluster | null = null;
  try {
    harness.startAll();
    const version = withEtcd ? etcdVersion() : null;
    const etcdStarting = version === null ? null : EtcdCluster.start();
    const startedAtMs = performance.now();
    const before = await waitForSteady(harness, ids);
    etcd = etcdStarting === null ? null : await etcdStarting;
    // The window is the second half of the run, counted from the start of both clusters.
    const windowMs = runMs / 2;
    const skipMs = Math.max(0, runMs - windowMs - (performance.now() - startedAtMs));
    const pids = new Map(ids.map((id) => [id, harness.pid(id)]));
    etcd?.members.forEach((member, index) => {
      pids.set(member.name, etcd?.pid(index) ?? 0);
    });
    const usage = await measureWindow(pids, skipMs, windowMs);
    const after = await waitForSteady(harness, ids);
    const isTandem = (n: ProcessIdleUsage) => ids.includes(n.id);
    return {
      tandem: {
        nodeCount: count,
        timings: effectiveTimings(harness),
        runMs,
        windowMs: usage.windowMs,
        before,
        after,
        nodes: usage.nodes.filter(isTandem),
      },
      etcd:
        etcd && version
          ? { version, runMs, windowMs: usage.windowMs, members: usage.nodes.filter((n) => !isTandem(n)) }
          : withEtcd
            ? "no etcd binary here"
            : null,
    };
  } finally {
    etcd?.dispose();
    await harness.dispose();
  }
}

interface IdleRun {
  nodeCount: 3 | 9;
  label: string;
  tandem: TandemWindow | null;
  etcd: EtcdWindow | string | null;
  abortReason: string | null;
}

function firstLine(error: unknown): string {
  return error instanceof Error ? (error.message.split("\n")[0] ?? error.name) : String(error);
}

async function main(): Promise<void> {
  const options = parseBenchOptions();
  const runMs = options.quick ? RUN_MS.quick : RUN_MS.full;
  const machine = describeMachine();
  console.log(`idle      ${new Date().toISOString()}${options.quick ? "  (--quick: not for quoting)" : ""}`);
  console.log(`machine   ${formatMachine(machine)}`);
  console.log(
    `setup     agents on 127.0.0.1 (mtls), default timings, dist/tandem.js; 3 nodes with a 3-member etcd ` +
      `for ${runMs[3] / MINUTE_MS} min, then 9 nodes for ${runMs[9] / MINUTE_MS} min; each measured over ` +
      "the second half of its run",
  );
  exitOnSignals();
  buildCli();
  const runs: IdleRun[] = [];
  for (const count of [3, 9] as const) {
    const run: IdleRun = {
      nodeCount: count,
      label: `${count} nodes`,
      tandem: null,
      etcd: null,
      abortReason: null,
    };
    try {
      Object.assign(run, await measureIdle(count, runMs[count], count === 3));
    } catch (error) {
      run.abortReason = firstLine(error);
      process.exitCode = 1;
    }
    runs.push(run);
  }
  report(options, machine, runs);
}

function maxOf(nodes: readonly ProcessIdleUsage[], pick: (n: ProcessIdleUsage) => number): number | null {
  return nodes.length > 0 ? Math.max(...nodes.map(pick)) : null;
}

function usageCells(n: ProcessIdleUsage): string[] {
  return [
    n.cpuPercentOfCore.toFixed(2),
    n.systemPercentOfCore.toFixed(2),
    n.rssMiBStart.toFixed(1),
    n.rssMiBMax.toFixed(1),
    n.rssMiBEnd.toFixed(1),
    (n.rssMiBEnd - n.rssMiBStart).toFixed(1),
    n.rssPeakMiBSinceStart.toFixed(1),
    n.readCallsPerSecond.toFixed(1),
    n.writeCallsPerSecond.toFixed(1),
  ];
}

function tableRows(run: IdleRun): string[][] {
  if (!run.tandem) return [[run.label, "-", `aborted: ${run.abortReason}`]];
  const leaderId = run.tandem.before.leaderId;
  const rows = run.tandem.nodes.map((n) => [
    run.label,
    n.id === leaderId ? `${n.id} (leader)` : n.id,
    ...usageCells(n),
  ]);
  if (typeof run.etcd === "string") rows.push(["etcd", "-", `not measured: ${run.etcd}`]);
  else if (run.etcd) for (const m of run.etcd.members) rows.push([run.etcd.version, m.id, ...usageCells(m)]);
  return rows;
}

function targetsOf(run: IdleRun): TargetCheck[] {
  const count = run.nodeCount;
  const nodes = run.tandem?.nodes ?? [];
  const cpuMax = maxOf(nodes, (n) => n.cpuPercentOfCore);
  const targets = [
    checkTarget(
      `idle cpu per node, max (${count} nodes)`,
      "% of a core",
      Comparison.Below,
      CPU_PERCENT_OF_CORE_MAX[count],
      cpuMax,
    ),
    checkTarget(
      `idle rss per node, max (${count} nodes)`,
      "MiB",
      Comparison.AtMost,
      RSS_MIB_MAX,
      maxOf(nodes, (n) => n.rssMiBMax),
    ),
  ];
  if (count === 3) {
    targets.push(
      checkTarget(
        "idle rss growth over the window, max (3 nodes)",
        "MiB",
        Comparison.AtMost,
        RSS_GROWTH_MIB_MAX,
        maxOf(nodes, (n) => n.rssMiBEnd - n.rssMiBStart),
      ),
    );
    const etcdCpuMax =
      run.etcd && typeof run.etcd !== "string" ? maxOf(run.etcd.members, (n) => n.cpuPercentOfCore) : null;
    targets.push(
      etcdCpuMax === null
        ? checkTarget(
            "idle cpu per node, max, below etcd's (etcd not measured)",
            "% of a core",
            Comparison.Below,
            0,
            null,
          )
        : checkTarget(
            "idle cpu per node, max, below etcd's max (3 nodes)",
            "% of a core",
            Comparison.Below,
            etcdCpuMax,
            cpuMax,
          ),
    );
  }
  const newTerms = run.tandem ? run.tandem.after.term - run.tandem.before.term : null;
  targets.push(checkTarget(`new terms while idle (${count} nodes)`, "terms", Comparison.AtMost, 0, newTerms));
  return targets;
}

function report(options: BenchOptions, machine: Machine, runs: IdleRun[]): void {
  console.log("");
  printTable(
    [
      "cluster",
      "node",
      "cpu % of a core",
      "of it kernel %",
      "rss MiB start",
      "rss MiB max",
      "rss MiB end",
      "rss growth MiB",
      "rss MiB peak since start",
      "reads/s",
      "writes/s",
    ],
    runs.flatMap(tableRows),
  );
  console.log("");
  for (const run of runs) {
    if (!run.tandem) continue;
    const { before, after, windowMs, runMs } = run.tandem;
    console.log(
      `${run.label.padEnd(8)} window ${(windowMs / 1000).toFixed(0)} s ending ${(runMs / 1000).toFixed(0)} s ` +
        `after start; leader ${before.leaderId} term ${before.term} before, ${after.leaderId} term ${after.term} after`,
    );
  }
  console.log("");
  const targets = runs.flatMap(targetsOf);
  printTable(targetHeader, targets.map(targetRow));
  const path = writeResult(options.resultsDir, {
    bench: "idle",
    date: new Date().toISOString(),
    quick: options.quick,
    machine,
    targets,
    data: { security: "mtls", entry: "dist/tandem.js (npm run build)", runs },
  });
  console.log(`wrote     ${path}`);
}

await main();
