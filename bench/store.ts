// The replicated store under load, side by side with etcd 3.4: 3 nodes on loopback, 1 KiB values,
// min_acks=1, through the real HTTP API of compiled agents (rebuilt first). Tandem runs twice, with the
// agent's V8 flags (AGENT_NODE_FLAGS: no optimising compilers) and without, then etcd (3 members, `etcd3`
// client) runs the same workloads, from bench/store_workloads.ts:
// - batched writes: closed loop, BATCH_CONCURRENCY requests of BATCH_ENTRIES writes in flight (etcd: one
//   transaction per 128 puts, its --max-txn-ops);
// - single writes: closed loop, SINGLE_CONCURRENCY PUTs in flight over keep-alive connections;
// - replication lag at LAG_RATE_PER_S writes/s: ack of a PUT on node 0 → the change on a watch of node 2
//   (SSE /api/v1/store-watch; etcd: a watch on member 2);
// - convergence: node 2 stopped (SIGSTOP) while CONVERGENCE_ENTRIES entries are written, resumed (SIGCONT)
//   after its peers called it down; time until its listing (paths, versions, hashes) equals node 0's
//   (etcd: member 2's revision equals member 0's). A stopped process, not a network partition: its
//   sockets stay open, so bytes queued in the kernel before the peers gave up still arrive on resume.
// One client process drives everything on the same cores as the agents. Writes bench/results/store.json.
//
//   node bench/store.ts [--quick] [--results-dir DIR]
import { AGENT_NODE_FLAGS } from "../src/cli/dev_cluster.ts";
import { EtcdTarget } from "./store_etcd.ts";
import { TandemTarget } from "./store_tandem.ts";
import {
  type Convergence,
  type CpuShare,
  closedLoop,
  convergence,
  type Lag,
  patternValue,
  replicationLag,
  type StoreTarget,
  type Throughput,
  withCpu,
} from "./store_workloads.ts";
import { exitOnSignals } from "./support/bench_cluster.ts";
import { type BenchOptions, parseBenchOptions } from "./support/bench_options.ts";
import { buildCli } from "./support/cli_build.ts";
import { etcdVersion } from "./support/etcd.ts";
import { describeMachine, formatMachine } from "./support/machine.ts";
import { writeResult } from "./support/result_file.ts";
import { printTable } from "./support/table.ts";
import { Comparison, checkTarget, type TargetCheck, targetHeader, targetRow } from "./support/target.ts";

const VALUE_BYTES = 1024;
const BATCH_ENTRIES = 1000;
const BATCH_CONCURRENCY = 4;
const SINGLE_CONCURRENCY = 64;
const LAG_RATE_PER_S = 2000;
const CONVERGENCE_ENTRIES = 10_000;
const CONVERGENCE_CHECK_INTERVAL_MS = 20;
/** Longer than the default peer-down timeout (1 s), so the peers stop sending to the paused node. */
const CONVERGENCE_PAUSED_MS = 3_000;
const CONVERGENCE_WAIT_MS = 30_000;
const LAG_WAIT_MS = 10_000;
/** Between workloads: the previous one's replication and compaction settle. */
const SETTLE_MS = 1_000;

const BATCH_WRITES_PER_S_MIN = 20_000;
const SINGLE_WRITES_PER_S_MIN = 3_000;
const LAG_P50_MS_MAX = 5;
const LAG_P99_MS_MAX = 50;
const CONVERGENCE_MS_MAX = 2_000;

interface Durations {
  throughputMs: number;
  lagWrites: number;
}

const durationsFull: Durations = { throughputMs: 10_000, lagWrites: 20_000 };
const durationsQuick: Durations = { throughputMs: 2_000, lagWrites: 2_000 };

interface SystemResult {
  system: string;
  /** What ran: agent V8 flags or the etcd version. */
  variant: string;
  batched: (Throughput & { cpu: CpuShare }) | null;
  single: (Throughput & { cpu: CpuShare }) | null;
  lag: (Lag & { cpu: CpuShare }) | null;
  convergence: (Convergence & { cpu: CpuShare }) | null;
  error: string | null;
}

async function measure(
  system: string,
  variant: string,
  target: StoreTarget,
  d: Durations,
): Promise<SystemResult> {
  const settle = () => new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  const batchValues = (index: number) =>
    Array.from({ length: BATCH_ENTRIES }, (_, i) => ({
      key: `batch/${index}/${i}`,
      value: patternValue(VALUE_BYTES, index + i),
    }));
  console.log(`${system} (${variant}): batched writes`);
  const batched = await withCpu(target.pids(), () =>
    closedLoop(BATCH_CONCURRENCY, d.throughputMs, (i) => target.writeBatch(batchValues(i))),
  );
  await settle();
  console.log(`${system} (${variant}): single writes`);
  const single = await withCpu(target.pids(), () =>
    closedLoop(SINGLE_CONCURRENCY, d.throughputMs, async (i) =>
      (await target.writeOne({ key: `single/${i}`, value: patternValue(VALUE_BYTES, i) })) ? 1 : 0,
    ),
  );
  await settle();
  console.log(`${system} (${variant}): replication lag at ${LAG_RATE_PER_S}/s`);
  const lag = await withCpu(target.pids(), () =>
    replicationLag(target, {
      prefix: "lag/",
      ratePerS: LAG_RATE_PER_S,
      count: d.lagWrites,
      valueBytes: VALUE_BYTES,
      waitMs: LAG_WAIT_MS,
    }),
  );
  await settle();
  console.log(`${system} (${variant}): convergence of a node stopped during ${CONVERGENCE_ENTRIES} writes`);
  const converged = await withCpu(target.pids(), () =>
    convergence(target, {
      prefix: "conv/",
      entries: CONVERGENCE_ENTRIES,
      batchEntries: BATCH_ENTRIES,
      valueBytes: VALUE_BYTES,
      pausedMs: CONVERGENCE_PAUSED_MS,
      checkIntervalMs: CONVERGENCE_CHECK_INTERVAL_MS,
      waitMs: CONVERGENCE_WAIT_MS,
    }),
  );
  return { system, variant, batched, single, lag, convergence: converged, error: null };
}

async function runSystem(
  system: string,
  variant: string,
  start: () => Promise<StoreTarget & { stop(): unknown }>,
  d: Durations,
): Promise<SystemResult> {
  let target: (StoreTarget & { stop(): unknown }) | undefined;
  try {
    target = await start();
    return await measure(system, variant, target, d);
  } catch (error) {
    console.log(`${system} (${variant}): aborted: ${String(error)}`);
    const reason = error instanceof Error ? error.message : String(error);
    return { system, variant, batched: null, single: null, lag: null, convergence: null, error: reason };
  } finally {
    await target?.stop();
  }
}

function targetsOf(tandem: SystemResult): TargetCheck[] {
  return [
    checkTarget(
      "batched writes into one node (1 KiB, min_acks=1)",
      "writes/s",
      Comparison.AtLeast,
      BATCH_WRITES_PER_S_MIN,
      tandem.batched?.writesPerSecond ?? null,
    ),
    checkTarget(
      `single-write PUTs (${SINGLE_CONCURRENCY} in flight)`,
      "writes/s",
      Comparison.AtLeast,
      SINGLE_WRITES_PER_S_MIN,
      tandem.single?.writesPerSecond ?? null,
    ),
    checkTarget(
      `replication lag p50 at ${LAG_RATE_PER_S}/s`,
      "ms",
      Comparison.AtMost,
      LAG_P50_MS_MAX,
      tandem.lag?.p50 ?? null,
    ),
    checkTarget(
      `replication lag p99 at ${LAG_RATE_PER_S}/s`,
      "ms",
      Comparison.AtMost,
      LAG_P99_MS_MAX,
      tandem.lag?.p99 ?? null,
    ),
    checkTarget(
      `convergence after ${CONVERGENCE_ENTRIES} changes`,
      "ms",
      Comparison.AtMost,
      CONVERGENCE_MS_MAX,
      tandem.convergence?.identicalAfterMs ?? null,
    ),
  ];
}

const fixed = (value: number | null | undefined, digits = 0) =>
  value === null || value === undefined || !Number.isFinite(value) ? "n/a" : value.toFixed(digits);

function ratio(tandem: number | null | undefined, etcd: number | null | undefined, digits = 1): string {
  if (!tandem || !etcd || !Number.isFinite(tandem) || !Number.isFinite(etcd)) return "n/a";
  return `${(tandem / etcd).toFixed(digits)}x`;
}

function report(results: SystemResult[], etcdNote: string | null): void {
  console.log("");
  printTable(
    [
      "system",
      "variant",
      "batched w/s",
      "single w/s",
      "lag p50 ms",
      "lag p99 ms",
      "lag max ms",
      "seen before ack",
      "converged ms",
    ],
    results.map((r) => [
      r.system,
      r.variant,
      fixed(r.batched?.writesPerSecond),
      fixed(r.single?.writesPerSecond),
      fixed(r.lag?.p50, 1),
      fixed(r.lag?.p99, 1),
      fixed(r.lag?.max, 1),
      r.lag ? `${fixed((100 * r.lag.seenBeforeAck) / r.lag.count)}%` : "n/a",
      r.error ? `aborted: ${r.error}` : fixed(r.convergence?.identicalAfterMs),
    ]),
  );
  console.log(
    "\nCPU during each workload, in cores (the machine has " +
      describeMachine().cores +
      "): servers n1+n2+n3 | client",
  );
  const cores = (cpu: CpuShare | undefined) =>
    cpu === undefined
      ? "n/a"
      : `${cpu.serverCores.map((c) => c.toFixed(2)).join("+")} | ${cpu.clientCores.toFixed(2)}`;
  printTable(
    ["system", "variant", "batched", "single", "lag", "convergence"],
    results.map((r) => [
      r.system,
      r.variant,
      cores(r.batched?.cpu),
      cores(r.single?.cpu),
      cores(r.lag?.cpu),
      cores(r.convergence?.cpu),
    ]),
  );
  const etcd = results.find((r) => r.system === "etcd" && r.error === null);
  if (etcd === undefined) {
    console.log(`\nno etcd figures: ${etcdNote ?? "etcd did not run"}`);
    return;
  }
  console.log("\nTandem / etcd (throughput: higher is better for Tandem; lag and convergence: lower is)");
  printTable(
    ["variant", "batched", "single", "lag p50", "lag p99", "convergence"],
    results
      .filter((r) => r.system === "tandem")
      .map((r) => [
        r.variant,
        ratio(r.batched?.writesPerSecond, etcd.batched?.writesPerSecond),
        ratio(r.single?.writesPerSecond, etcd.single?.writesPerSecond),
        ratio(r.lag?.p50, etcd.lag?.p50, 2),
        ratio(r.lag?.p99, etcd.lag?.p99, 2),
        ratio(r.convergence?.identicalAfterMs, etcd.convergence?.identicalAfterMs, 2),
      ]),
  );
}

async function main(options: BenchOptions): Promise<void> {
  exitOnSignals();
  const date = new Date().toISOString();
  const machine = describeMachine();
  const d = options.quick ? durationsQuick : durationsFull;
  console.log(`date      ${date}${options.quick ? "  (--quick smoke run: not for quoting)" : ""}`);
  console.log(`machine   ${formatMachine(machine)}`);
  buildCli();
  const agentFlags = `agent flags (${AGENT_NODE_FLAGS.join(" ")})`;
  const results = [
    await runSystem("tandem", agentFlags, () => TandemTarget.start(AGENT_NODE_FLAGS), d),
    await runSystem("tandem", "no V8 flags", () => TandemTarget.start([]), d),
  ];
  const version = etcdVersion();
  const etcdNote = version === null ? "no etcd binary here (apt-get install etcd-server)" : null;
  if (version !== null) results.push(await runSystem("etcd", version, () => EtcdTarget.start(), d));
  report(results, etcdNote);

  const tandem = results[0];
  if (tandem === undefined) throw new Error("no Tandem result");
  const targets = targetsOf(tandem);
  console.log("");
  printTable(targetHeader, targets.map(targetRow));
  const path = writeResult(options.resultsDir, {
    bench: "store",
    date,
    quick: options.quick,
    machine,
    targets,
    data: {
      valueBytes: VALUE_BYTES,
      minAcks: 1,
      batchEntries: BATCH_ENTRIES,
      batchConcurrency: BATCH_CONCURRENCY,
      singleConcurrency: SINGLE_CONCURRENCY,
      lagRatePerS: LAG_RATE_PER_S,
      convergenceEntries: CONVERGENCE_ENTRIES,
      convergencePausedMs: CONVERGENCE_PAUSED_MS,
      durations: d,
      etcd: version ?? etcdNote,
      results,
    },
  });
  console.log(`wrote     ${path}`);
  if (!targets.every((t) => t.pass)) process.exitCode = 1;
}

await main(parseBenchOptions());
