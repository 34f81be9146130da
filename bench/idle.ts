// Idle cost: 3 agents with the default timings, settled, then left alone for a fixed window; measured three
// times on fresh clusters: the compiled build (dist/, rebuilt first: what the installed `tandem` binary
// runs) soon after start and again after 5 minutes, and the TypeScript source (type stripping at load, as
// `tandem dev` and the tests run it). An agent compiles a function with Maglev only after 5,000 calls
// (AGENT_NODE_FLAGS), and an idle agent handles ~25 messages a second: soon after start its heartbeat paths
// still run in the interpreter (more CPU), after minutes they are compiled (less CPU, more memory). The
// targets must hold in both build windows. CPU is the
// utime+stime delta from /proc/<pid>/stat over the wall time (in USER_HZ ticks from `getconf CLK_TCK`);
// memory is VmRSS from /proc/<pid>/status, sampled every second. The bench does not call the agents'
// API during the window (that would be work, not idling); it checks before and after that the leader and
// term did not change. Writes bench/results/idle.json.
//
//   node bench/idle.ts [--quick] [--results-dir DIR]
import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { AGENT_NODE_FLAGS } from "../src/cli/dev_cluster.ts";
import type { Timings } from "../src/config/index.ts";
import {
  CLUSTER_NODE_IDS,
  type CliEntry,
  createBenchCluster,
  effectiveTimings,
  exitOnSignals,
  type Leadership,
  waitForSteadyCluster,
} from "./support/bench_cluster.ts";
import { type BenchOptions, parseBenchOptions } from "./support/bench_options.ts";
import { buildCli } from "./support/cli_build.ts";
import { describeMachine, formatMachine, type Machine } from "./support/machine.ts";
import { type CpuTicks, clockTicksPerSecond, cpuTicks, memoryUsage } from "./support/process_usage.ts";
import { writeResult } from "./support/result_file.ts";
import { printTable } from "./support/table.ts";
import { Comparison, checkTarget, targetHeader, targetRow } from "./support/target.ts";

const WINDOW_S_FULL = 30;
const WINDOW_S_QUICK = 5;
/** After the cluster is steady: start-up work (JIT, TLS handshakes, first elections) fades out. */
const SETTLE_MS_FULL = 10_000;
const SETTLE_MS_QUICK = 2_000;
/** The build's second window: once its heartbeat paths are compiled. */
const SETTLED_MS_FULL = 300_000;
const SETTLED_MS_QUICK = 10_000;
const RSS_SAMPLE_INTERVAL_MS = 1_000;
const STEADY_TIMEOUT_MS = 30_000;
const CPU_PERCENT_OF_CORE_MAX = 2;
const RSS_MIB_MAX = 80;

interface NodeIdleUsage {
  id: string;
  pid: number;
  cpuTicks: CpuTicks;
  /** Share of one core over the window: 100 = one core busy all the time. */
  cpuPercentOfCore: number;
  /** The part of it spent in the kernel (stime). */
  systemPercentOfCore: number;
  /** First sample of the window: against the end, shows whether memory still grows while idle. */
  rssMiBStart: number;
  rssMiBMax: number;
  rssMiBEnd: number;
  /** VmHWM: the peak since the agent started, start-up included. */
  rssPeakMiBSinceStart: number;
}

interface IdleWindow {
  timings: Timings;
  settleMs: number;
  windowMs: number;
  clockTicksPerSecond: number;
  rssSamples: number;
  before: Leadership;
  after: Leadership;
  nodes: NodeIdleUsage[];
}

/** The installed form first: it is the one the targets are about. */
const builds: readonly CliEntry[] = ["build", "source"];

/** What is measured, in order: the build twice (soon after start, then settled), then the source. */
function plannedRuns(
  settleMs: number,
  settledMs: number,
): Array<Pick<IdleRun, "build" | "label" | "settleMs">> {
  const after = (ms: number) => (ms >= 60_000 ? `${ms / 60_000} min` : `${ms / 1000} s`);
  return [
    { build: "build", label: `build ${after(settleMs)}`, settleMs },
    { build: "build", label: `build ${after(settledMs)}`, settleMs: settledMs },
    { build: "source", label: "source", settleMs },
  ];
}

const buildDescriptions: Record<CliEntry, string> = {
  build: "dist/src/cli/main.js from `npm run build` (the installed tandem binary)",
  source: "src/cli/main.ts, type stripping at load (tandem dev, npm start, tests)",
};

interface IdleRun {
  build: CliEntry;
  /** The row's name: the build, and for the build how long it settled before the window. */
  label: string;
  settleMs: number;
  window: IdleWindow | null;
  abortReason: string | null;
}

function mib(kib: number): number {
  return kib / 1024;
}

/** CPU ticks over the window, RSS every second; only /proc is read, the agents are not disturbed. */
async function measureUsage(pids: Map<string, number>, windowS: number) {
  const hz = clockTicksPerSecond();
  const rssKiBMax = new Map<string, number>();
  const rssKiBStart = new Map([...pids].map(([id, pid]) => [id, memoryUsage(pid).rssKiB]));
  const sampleRss = () => {
    for (const [id, pid] of pids)
      rssKiBMax.set(id, Math.max(rssKiBMax.get(id) ?? 0, memoryUsage(pid).rssKiB));
  };
  const ticksStart = new Map([...pids].map(([id, pid]) => [id, cpuTicks(pid)]));
  const wallStartMs = performance.now();
  sampleRss();
  let samples = 1;
  const samplesPlanned = Math.round((windowS * 1000) / RSS_SAMPLE_INTERVAL_MS);
  for (let i = 0; i < samplesPlanned; i++) {
    await sleep(RSS_SAMPLE_INTERVAL_MS);
    sampleRss();
    samples += 1;
  }
  const windowMs = performance.now() - wallStartMs;
  const percentOfCore = (ticks: number) => (ticks / hz / (windowMs / 1000)) * 100;
  const nodes: NodeIdleUsage[] = [...pids].map(([id, pid]) => {
    const end = cpuTicks(pid);
    const start = ticksStart.get(id) ?? end;
    const ticks = { user: end.user - start.user, system: end.system - start.system };
    const memory = memoryUsage(pid);
    return {
      id,
      pid,
      cpuTicks: ticks,
      cpuPercentOfCore: percentOfCore(ticks.user + ticks.system),
      systemPercentOfCore: percentOfCore(ticks.system),
      rssMiBStart: mib(rssKiBStart.get(id) ?? 0),
      rssMiBMax: mib(Math.max(rssKiBMax.get(id) ?? 0, memory.rssKiB)),
      rssMiBEnd: mib(memory.rssKiB),
      rssPeakMiBSinceStart: mib(memory.rssPeakKiB),
    };
  });
  return { clockTicksPerSecond: hz, windowMs, samples, nodes };
}

async function measureIdle(entry: CliEntry, settleMs: number, windowS: number): Promise<IdleWindow> {
  const harness = await createBenchCluster(entry);
  try {
    harness.startAll();
    const before = await waitForSteadyCluster(harness, STEADY_TIMEOUT_MS);
    await sleep(settleMs);
    const pids = new Map<string, number>(CLUSTER_NODE_IDS.map((id) => [id, harness.pid(id)]));
    const usage = await measureUsage(pids, windowS);
    const after = await waitForSteadyCluster(harness, STEADY_TIMEOUT_MS);
    return {
      timings: effectiveTimings(harness),
      settleMs,
      windowMs: usage.windowMs,
      clockTicksPerSecond: usage.clockTicksPerSecond,
      rssSamples: usage.samples,
      before,
      after,
      nodes: usage.nodes,
    };
  } finally {
    await harness.dispose();
  }
}

/** The floor every agent starts from: this Node binary, with the agents' V8 flags, running a 1 s interval. */
const NODE_FLOOR_SCRIPT = "setInterval(() => {}, 1000)";

async function measureNodeFloor(settleMs: number, windowS: number): Promise<NodeIdleUsage> {
  const child = spawn(process.execPath, [...AGENT_NODE_FLAGS, "-e", NODE_FLOOR_SCRIPT], {
    stdio: "ignore",
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error("could not start the node floor process");
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const killOnExit = () => process.kill(pid, "SIGKILL");
  process.once("exit", killOnExit);
  try {
    await sleep(settleMs);
    const usage = await measureUsage(new Map([["node", pid]]), windowS);
    const floor = usage.nodes[0];
    if (!floor) throw new Error("no usage for the node floor process");
    return floor;
  } finally {
    process.kill(pid, "SIGKILL");
    process.off("exit", killOnExit);
    await exited;
  }
}

function firstLine(error: unknown): string {
  return error instanceof Error ? (error.message.split("\n")[0] ?? error.name) : String(error);
}

async function main(): Promise<void> {
  const options = parseBenchOptions();
  const windowS = options.quick ? WINDOW_S_QUICK : WINDOW_S_FULL;
  const settleMs = options.quick ? SETTLE_MS_QUICK : SETTLE_MS_FULL;
  const settledMs = options.quick ? SETTLED_MS_QUICK : SETTLED_MS_FULL;
  const machine = describeMachine();
  console.log(`idle      ${new Date().toISOString()}${options.quick ? "  (--quick: not for quoting)" : ""}`);
  console.log(`machine   ${formatMachine(machine)}`);
  console.log(
    `setup     3 agents on 127.0.0.1 (mtls), default timings; settle ${settleMs / 1000} s (the build also ` +
      `${settledMs / 1000} s), then ${windowS} s idle`,
  );
  for (const build of builds) console.log(`          ${build}: ${buildDescriptions[build]}`);
  console.log(
    `          node floor: \`node ${AGENT_NODE_FLAGS.join(" ")} -e "${NODE_FLOOR_SCRIPT}"\`, for reference`,
  );
  exitOnSignals();

  const runs: IdleRun[] = [];
  let built = false;
  for (const planned of plannedRuns(settleMs, settledMs)) {
    const run: IdleRun = { ...planned, window: null, abortReason: null };
    try {
      if (planned.build === "build" && !built) {
        buildCli();
        built = true;
      }
      run.window = await measureIdle(planned.build, planned.settleMs, windowS);
    } catch (error) {
      run.abortReason = firstLine(error);
    }
    runs.push(run);
  }
  if (runs.some((r) => r.abortReason !== null)) process.exitCode = 1;
  // A reference, not a target: how much of an agent's footprint is Node itself.
  const nodeFloor = await measureNodeFloor(settleMs, windowS).catch((error: unknown) => firstLine(error));
  report(options, machine, runs, nodeFloor);
}

function maxOf(run: IdleRun, pick: (n: NodeIdleUsage) => number): number | null {
  const nodes = run.window?.nodes ?? [];
  return nodes.length > 0 ? Math.max(...nodes.map(pick)) : null;
}

type UsageFigures = Pick<
  NodeIdleUsage,
  | "cpuPercentOfCore"
  | "systemPercentOfCore"
  | "rssMiBStart"
  | "rssMiBMax"
  | "rssMiBEnd"
  | "rssPeakMiBSinceStart"
>;

function usageCells(n: UsageFigures) {
  return [
    n.cpuPercentOfCore.toFixed(2),
    n.systemPercentOfCore.toFixed(2),
    n.rssMiBStart.toFixed(1),
    n.rssMiBMax.toFixed(1),
    n.rssMiBEnd.toFixed(1),
    n.rssPeakMiBSinceStart.toFixed(1),
  ];
}

function report(
  options: BenchOptions,
  machine: Machine,
  runs: IdleRun[],
  nodeFloor: NodeIdleUsage | string,
): void {
  console.log("");
  const rows = runs.flatMap((run) => {
    if (!run.window) return [[run.label, "-", "aborted"]];
    const leaderId = run.window.before.leaderId;
    const max: UsageFigures = {
      cpuPercentOfCore: maxOf(run, (n) => n.cpuPercentOfCore) ?? 0,
      systemPercentOfCore: maxOf(run, (n) => n.systemPercentOfCore) ?? 0,
      rssMiBStart: maxOf(run, (n) => n.rssMiBStart) ?? 0,
      rssMiBMax: maxOf(run, (n) => n.rssMiBMax) ?? 0,
      rssMiBEnd: maxOf(run, (n) => n.rssMiBEnd) ?? 0,
      rssPeakMiBSinceStart: maxOf(run, (n) => n.rssPeakMiBSinceStart) ?? 0,
    };
    return [
      ...run.window.nodes.map((n) => [
        run.label,
        n.id === leaderId ? `${n.id} (leader)` : n.id,
        ...usageCells(n),
      ]),
      [run.label, "max", ...usageCells(max)],
    ];
  });
  printTable(
    [
      "build",
      "node",
      "cpu % of a core",
      "of it kernel %",
      "rss MiB start",
      "rss MiB max",
      "rss MiB end",
      "rss MiB peak since start",
    ],
    [
      ...rows,
      typeof nodeFloor === "string"
        ? ["node floor", "-", `not measured: ${nodeFloor}`]
        : ["node floor", "(no agent)", ...usageCells(nodeFloor)],
    ],
  );
  console.log("");
  for (const run of runs) {
    if (run.window) {
      const { before, after, windowMs } = run.window;
      console.log(
        `${run.label.padEnd(11)} window ${(windowMs / 1000).toFixed(1)} s; leader ${before.leaderId} term ${before.term} ` +
          `before, ${after.leaderId} term ${after.term} after`,
      );
    } else console.log(`${run.label.padEnd(11)} aborted: ${run.abortReason}`);
  }
  console.log("");

  const measuredRuns = runs.filter((r) => r.window !== null);
  const newTerms =
    measuredRuns.length === runs.length
      ? measuredRuns.reduce((sum, r) => sum + ((r.window?.after.term ?? 0) - (r.window?.before.term ?? 0)), 0)
      : null;
  // The targets are about the installed binary (the build); the source run is in the table for reference.
  const targets = [
    ...runs
      .filter((run) => run.build === "build")
      .flatMap((run) => [
        checkTarget(
          `idle cpu per node, max (3 nodes, ${run.label})`,
          "% of a core",
          Comparison.Below,
          CPU_PERCENT_OF_CORE_MAX,
          maxOf(run, (n) => n.cpuPercentOfCore),
        ),
        checkTarget(
          `idle rss per node, max (3 nodes, ${run.label})`,
          "MiB",
          Comparison.Below,
          RSS_MIB_MAX,
          maxOf(run, (n) => n.rssMiBMax),
        ),
      ]),
    checkTarget("new terms while idle (elections)", "terms", Comparison.AtMost, 0, newTerms),
  ];
  printTable(targetHeader, targets.map(targetRow));

  const path = writeResult(options.resultsDir, {
    bench: "idle",
    date: new Date().toISOString(),
    quick: options.quick,
    machine,
    targets,
    data: {
      nodes: CLUSTER_NODE_IDS.length,
      security: "mtls",
      builds: buildDescriptions,
      runs,
      nodeFloor: { script: NODE_FLOOR_SCRIPT, usage: nodeFloor },
    },
  });
  console.log(`wrote     ${path}`);
}

await main();
