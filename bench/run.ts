// Runs every bench in sequence, each as its own child process (its output streams through), then prints
// one summary: metric, target, measured, pass/fail, with the date and the machine. Writes
// bench/results/summary.json. Exits 1 when a bench produced no fresh result or a target was missed.
//
//   node bench/run.ts [--quick] [--results-dir DIR]      (npm run bench)
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { type BenchOptions, parseBenchOptions } from "./support/bench_options.ts";
import { describeMachine, formatMachine } from "./support/machine.ts";
import { defaultResultsDir, readResultJson, resultPath, writeResult } from "./support/result_file.ts";
import { printTable } from "./support/table.ts";
import { Comparison, checkTarget, type TargetCheck, targetHeader, targetRow } from "./support/target.ts";

/** After a bench's time limit: SIGTERM (it kills its agents and exits), then SIGKILL after this grace. */
const KILL_GRACE_MS = 10_000;

interface BenchSpec {
  name: string;
  /** The script under bench/, when it is not `<name>.ts`. */
  script?: string;
  args(options: BenchOptions): string[];
  /** Where the bench writes its JSON for these options. */
  resultFile(options: BenchOptions): string;
  timeoutMs(options: BenchOptions): number;
  /** The checks in a result; benches using bench/support write them, others are read from their data. */
  targets(result: Record<string, unknown>): TargetCheck[];
}

interface BenchOutcome {
  name: string;
  exitCode: number | null;
  durationMs: number;
  /** Why there is no usable result, or null. */
  error: string | null;
  targets: TargetCheck[];
}

function recordedTargets(result: Record<string, unknown>): TargetCheck[] {
  return Array.isArray(result.targets) ? (result.targets as TargetCheck[]) : [];
}

const MESH_P50_MS_MAX = 0.3;
const MESH_REQUESTS_PER_S_MIN = 20_000;

/** bench/mesh_rtt.ts prints its targets but records only raw figures: check them here. */
function meshRttTargets(result: Record<string, unknown>): TargetCheck[] {
  const rows = Array.isArray(result.results)
    ? (result.results as Array<{
        transport: string;
        latency?: { p50Ms?: number };
        throughput?: { requestsPerSecond?: number };
      }>)
    : [];
  const mesh = rows.find((r) => r.transport.startsWith("mesh"));
  return [
    checkTarget(
      "mesh rtt p50 (64 B, 2 processes)",
      "ms",
      Comparison.AtMost,
      MESH_P50_MS_MAX,
      mesh?.latency?.p50Ms ?? null,
    ),
    checkTarget(
      "mesh throughput (64 in flight)",
      "req/s",
      Comparison.AtLeast,
      MESH_REQUESTS_PER_S_MIN,
      mesh?.throughput?.requestsPerSecond ?? null,
    ),
  ];
}

/** The options every bench of ours takes. */
const ownArgs = (options: BenchOptions): string[] => [
  ...(options.quick ? ["--quick"] : []),
  "--results-dir",
  options.resultsDir,
];

const ownBench = (name: string, fullMs: number, quickMs: number): BenchSpec => ({
  name,
  args: ownArgs,
  resultFile: (options) => resultPath(options.resultsDir, name),
  timeoutMs: (options) => (options.quick ? quickMs : fullMs),
  targets: recordedTargets,
});

const benches: BenchSpec[] = [
  ownBench("failover", 20 * 60_000, 3 * 60_000),
  {
    ...ownBench("failover_fast", 20 * 60_000, 3 * 60_000),
    script: "failover",
    args: (options) => ["--preset", "fast", ...ownArgs(options)],
  },
  ownBench("idle", 12 * 60_000, 3 * 60_000),
  ownBench("store", 10 * 60_000, 4 * 60_000),
  ownBench("startup", 30 * 60_000, 5 * 60_000),
  ownBench("membership", 20 * 60_000, 5 * 60_000),
  ownBench("services", 70 * 60_000, 15 * 60_000),
  ownBench("journal", 20 * 60_000, 8 * 60_000),
  ownBench("blob", 45 * 60_000, 15 * 60_000),
  ownBench("provision", 30 * 60_000, 10 * 60_000),
  {
    name: "mesh_rtt",
    // It has no --quick and always writes bench/results/mesh_rtt.json: a quick run overwrites the full one.
    args: (options) => (options.quick ? ["--samples", "500", "--seconds", "1"] : []),
    resultFile: () => resultPath(defaultResultsDir, "mesh_rtt"),
    timeoutMs: (options) => (options.quick ? 60_000 : 5 * 60_000),
    targets: meshRttTargets,
  },
];

function runChild(file: string, args: string[], timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file, ...args], { stdio: "inherit" });
    let grace: NodeJS.Timeout | undefined;
    const limit = setTimeout(() => {
      console.log(`run       ${file} exceeded ${timeoutMs / 1000} s: stopping it`);
      if (child.pid) process.kill(child.pid, "SIGTERM");
      grace = setTimeout(() => child.pid && process.kill(child.pid, "SIGKILL"), KILL_GRACE_MS);
    }, timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(limit);
      clearTimeout(grace);
      resolve(code);
    });
  });
}

async function runBench(spec: BenchSpec, options: BenchOptions): Promise<BenchOutcome> {
  const file = fileURLToPath(new URL(`./${spec.script ?? spec.name}.ts`, import.meta.url));
  console.log(`\n=== ${spec.name} ${"=".repeat(60)}`);
  const startedAtMs = Date.now();
  const exitCode = await runChild(file, spec.args(options), spec.timeoutMs(options));
  const durationMs = Date.now() - startedAtMs;
  const result = readResultJson(spec.resultFile(options));
  // A result file left from an earlier run must not pass for this one.
  const fresh = result !== null && Date.parse(String(result.date)) >= startedAtMs;
  const error = fresh ? null : `no result written by this run (exit code ${exitCode})`;
  const targets = result && fresh ? spec.targets(result) : [];
  return { name: spec.name, exitCode, durationMs, error, targets };
}

async function main(): Promise<void> {
  const options = parseBenchOptions();
  const machine = describeMachine();
  const date = new Date().toISOString();
  const outcomes: BenchOutcome[] = [];
  for (const spec of benches) outcomes.push(await runBench(spec, options));

  console.log(`\n=== summary ${"=".repeat(56)}`);
  console.log(`date      ${date}${options.quick ? "  (--quick smoke run: not for quoting)" : ""}`);
  console.log(`machine   ${formatMachine(machine)}`);
  console.log("");
  const rows = outcomes.flatMap((o) =>
    o.error
      ? [[o.name, "(no result)", "", o.error, "FAIL"]]
      : o.targets.map((t) => [o.name, ...targetRow(t)]),
  );
  printTable(["bench", ...targetHeader], rows);
  console.log("");
  console.log(outcomes.map((o) => `${o.name} ${(o.durationMs / 1000).toFixed(0)} s`).join(", "));

  const passed = outcomes.every((o) => o.error === null && o.targets.every((t) => t.pass));
  const path = writeResult(options.resultsDir, {
    bench: "summary",
    date,
    quick: options.quick,
    machine,
    targets: outcomes.flatMap((o) => o.targets),
    data: { benches: outcomes },
  });
  console.log(`wrote     ${path}`);
  if (!passed) process.exitCode = 1;
}

await main();
