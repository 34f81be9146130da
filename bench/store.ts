// The replicated store under load, side by side with etcd 3.4: 3 nodes on loopback, 1 KiB values,
// min_acks=1, through the real HTTP API of compiled agents (rebuilt first). Tandem runs twice, with the
// agent's V8 flags (AGENT_NODE_FLAGS: no optimising compilers) and without, then etcd (3 members, `etcd3`
// client) runs the same workloads, from bench/store_workloads.ts:
// - batched writes: closed loop, BATCH_CONCURRENCY requests of BATCH_ENTRIES writes in flight (etcd: one
//   transaction per 128 puts, its --max-txn-ops);
// - single writes: closed loop, SINGLE_CONCURRENCY PUTs in flight over keep-alive connections;
// - replication lag at LAG_RATE_PER_S writes/s: ack of a PUT on node 0 → the change on a watch of node 2
//   (SSE /api/v1/store-watch; etcd: a watch on member 2);
// - convergence, stopped: node 2 stopped (SIGSTOP) while CONVERGENCE_ENTRIES entries are written, resumed
//   (SIGCONT) after its peers called it down; time until its listing (paths, versions) equals node 0's
//   (etcd: member 2's revision equals member 0's). Both systems run this one, so it is the side-by-side
//   figure. A stopped process is not a network partition: its sockets stay open, so bytes queued in the
//   kernel before the peers gave up still arrive on resume;
// - convergence, partitioned (Tandem only; the target applies to it): after each Tandem run, a second
//   cluster with the same V8 flags in network namespaces, node 2 cut off both ways by nftables while the
//   same entries are written, then healed; time from the heal until node 2 is identical
//   (bench/store_partition.ts). Needs root, `ip` and `nft`; without them the bench says what is missing.
//   etcd's members stay on loopback and are only stopped.
// - the agent's V8 flags against none, side by side: two Tandem clusters at once, batched writes to one at a
//   time in ABBA rounds (bench/store_flags.ts), since sequential runs land in different minutes of a VM
//   whose speed drifts (the two sequential figures above are kept for the other workloads);
// Each system first takes WARMUP_MS of batched then single writes that are not recorded (JIT warm-up of the
// client and the servers; before it, the first system measured in a run did worst: 1.4k single writes/s
// against 2.9-3.0k in short runs of the same code just after, and single writes ran at about 60 % of their
// pace in their first second after batched-only warm-up).
// One client process drives everything on the same cores as the agents (for the partition, a driver in
// each namespace: store_partition_driver.ts). Writes bench/results/store.json.
//
//   node bench/store.ts [--quick] [--results-dir DIR]
import { AGENT_NODE_FLAGS } from "../src/cli/agent_flags.ts";
import { EtcdTarget } from "./store_etcd.ts";
import { compareFlags, type FlagsComparison } from "./store_flags.ts";
import {
  type LinkTimes,
  type PartitionConvergence,
  partitionConvergence,
  partitionUnsupported,
} from "./store_partition.ts";
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
/** Before the first workload of each system, unrecorded. */
const WARMUP_MS = 4_000;
/** Between workloads: the previous one's replication and compaction settle. */
const SETTLE_MS = 1_000;

const BATCH_WRITES_PER_S_MIN = 20_000;
const SINGLE_WRITES_PER_S_MIN = 3_000;
const LAG_P50_MS_MAX = 5;
const LAG_P99_MS_MAX = 50;
const CONVERGENCE_MS_MAX = 2_000;
/** The agent's flags keep at least the flag-less agent's batched throughput (issue 22). */
const FLAGS_RATIO_MIN = 1.0;
const FLAGS_ROUNDS = { full: 4, quick: 1 };

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
  /** Node 2 stopped by SIGSTOP, both systems. */
  convergence: (Convergence & { cpu: CpuShare }) | null;
  /** Tandem only: node 2 partitioned by nftables in network namespaces, then healed (the target's figure). */
  partition: (PartitionConvergence & { cpu: CpuShare }) | null;
  /** Why `partition` is null. */
  partitionNote: string | null;
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
  /** One write per request under `prefix`, counted when acknowledged. */
  const writeOne = (prefix: string) => async (i: number) =>
    (await target.writeOne({ key: `${prefix}${i}`, value: patternValue(VALUE_BYTES, i) })) ? 1 : 0;
  // Unrecorded: the client's and the servers' JIT warm up on both write paths, so the first system measured
  // is not the one that pays for it, and the single writes do not start interpreted (the agent compiles a
  // function only after thousands of calls). The batched workload runs on the same keys again right after.
  console.log(
    `${system} (${variant}): warm-up, ${WARMUP_MS} ms of batched then single writes (not recorded)`,
  );
  await closedLoop(BATCH_CONCURRENCY, WARMUP_MS / 2, (i) => target.writeBatch(batchValues(i)));
  await closedLoop(SINGLE_CONCURRENCY, WARMUP_MS / 2, writeOne("warm-up/"));
  await settle();
  console.log(`${system} (${variant}): batched writes`);
  const batched = await withCpu(target.pids(), () =>
    closedLoop(BATCH_CONCURRENCY, d.throughputMs, (i) => target.writeBatch(batchValues(i))),
  );
  await settle();
  console.log(`${system} (${variant}): single writes`);
  const single = await withCpu(target.pids(), () =>
    closedLoop(SINGLE_CONCURRENCY, d.throughputMs, writeOne("single/")),
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
  return {
    system,
    variant,
    batched,
    single,
    lag,
    convergence: converged,
    partition: null,
    partitionNote: null,
    error: null,
  };
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
    return {
      system,
      variant,
      batched: null,
      single: null,
      lag: null,
      convergence: null,
      partition: null,
      partitionNote: null,
      error: reason,
    };
  } finally {
    await target?.stop();
  }
}

/** The partition workload on its own namespaced cluster, after the loopback cluster of `result` stopped. */
async function withPartition(
  result: SystemResult,
  v8Flags: readonly string[],
  unsupported: string | null,
): Promise<SystemResult> {
  if (unsupported !== null) return { ...result, partitionNote: unsupported };
  console.log(
    `tandem (${result.variant}): convergence of a node partitioned (netns, nftables) during ` +
      `${CONVERGENCE_ENTRIES} writes`,
  );
  try {
    const partition = await partitionConvergence(v8Flags, {
      prefix: "part/",
      entries: CONVERGENCE_ENTRIES,
      batchEntries: BATCH_ENTRIES,
      valueBytes: VALUE_BYTES,
      checkIntervalMs: CONVERGENCE_CHECK_INTERVAL_MS,
      waitMs: CONVERGENCE_WAIT_MS,
    });
    return { ...result, partition };
  } catch (error) {
    console.log(`tandem (${result.variant}): partition aborted: ${String(error)}`);
    return { ...result, partitionNote: `aborted: ${error instanceof Error ? error.message : String(error)}` };
  }
}

function targetsOf(tandem: SystemResult, flags: FlagsComparison | null): TargetCheck[] {
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
      `convergence after a partition during ${CONVERGENCE_ENTRIES} changes (netns)`,
      "ms",
      Comparison.AtMost,
      CONVERGENCE_MS_MAX,
      tandem.partition?.identicalAfterMs ?? null,
    ),
    checkTarget(
      "batched writes, agent V8 flags / none (side by side, ABBA rounds)",
      "x",
      Comparison.AtLeast,
      FLAGS_RATIO_MIN,
      flags?.ratio ?? null,
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
      "stopped: converged ms",
      "partitioned: converged ms",
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
      r.partition ? fixed(r.partition.identicalAfterMs) : "n/a",
    ]),
  );
  reportPartition(results);
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
    ["system", "variant", "batched", "single", "lag", "stopped", "partitioned"],
    results.map((r) => [
      r.system,
      r.variant,
      cores(r.batched?.cpu),
      cores(r.single?.cpu),
      cores(r.lag?.cpu),
      cores(r.convergence?.cpu),
      cores(r.partition?.cpu),
    ]),
  );
  const etcd = results.find((r) => r.system === "etcd" && r.error === null);
  if (etcd === undefined) {
    console.log(`\nno etcd figures: ${etcdNote ?? "etcd did not run"}`);
    return;
  }
  console.log(
    "\nTandem / etcd (throughput: higher is better for Tandem; lag and convergence: lower is; convergence " +
      "of a stopped node, the method both ran)",
  );
  printTable(
    ["variant", "batched", "single", "lag p50", "lag p99", "stopped: convergence"],
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

/** How each system's node 3 was taken away, and the partition's phases (ms) where it ran. */
function reportPartition(results: SystemResult[]): void {
  console.log(
    "\nconverged ms = until node 3 is identical to node 1, after SIGCONT (stopped) or after the nftables " +
      "rules are deleted (partitioned, network namespaces; tandem only). Partition phases, ms:",
  );
  const links = (p: PartitionConvergence, pick: (l: LinkTimes) => number | null) =>
    p.links.map((l) => `${l.peer} ${fixed(pick(l))}`).join(", ");
  printTable(
    [
      "system",
      "variant",
      "cut → peers saw down",
      "writes",
      "cut → heal",
      "cut → links down",
      "heal → new links",
      "heal → identical",
    ],
    results.flatMap((r) => {
      const p = r.partition;
      if (p === null) return [];
      return [
        [
          r.system,
          r.variant,
          fixed(p.peersSawDownAfterMs),
          fixed(p.writeMs),
          fixed(p.healAfterCutMs),
          links(p, (l) => l.downAfterCutMs),
          links(p, (l) => l.upAfterHealMs),
          fixed(p.identicalAfterMs),
        ],
      ];
    }),
  );
  for (const r of results) {
    if (r.partition === null) console.log(`${r.system} (${r.variant}): partition ${r.partitionNote}`);
  }
}

async function flagsComparison(d: Durations, quick: boolean): Promise<FlagsComparison | null> {
  console.log("");
  console.log(
    "tandem: agent V8 flags against none, two clusters side by side, batched writes in ABBA rounds",
  );
  try {
    const flags = await compareFlags({
      rounds: quick ? FLAGS_ROUNDS.quick : FLAGS_ROUNDS.full,
      windowMs: d.throughputMs / 2,
      warmupMs: WARMUP_MS,
      batchEntries: BATCH_ENTRIES,
      batchConcurrency: BATCH_CONCURRENCY,
      valueBytes: VALUE_BYTES,
    });
    const perRound = flags.roundRatios.map((r) => r.toFixed(3)).join(", ");
    console.log(
      `  with flags ${flags.withFlags.toFixed(0)} writes/s, without ${flags.withoutFlags.toFixed(0)}: ` +
        `ratio ${flags.ratio.toFixed(3)} (rounds: ${perRound})`,
    );
    return flags;
  } catch (error) {
    console.log(`  aborted: ${String(error)}`);
    return null;
  }
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
  const unsupported = partitionUnsupported();
  if (unsupported !== null) console.log(`partition ${unsupported}: only the stopped-node convergence runs`);
  const tandem = async (variant: string, v8Flags: readonly string[]) =>
    withPartition(
      await runSystem("tandem", variant, () => TandemTarget.start(v8Flags), d),
      v8Flags,
      unsupported,
    );
  const results = [await tandem(agentFlags, AGENT_NODE_FLAGS), await tandem("no V8 flags", [])];
  const version = etcdVersion();
  const etcdNote = version === null ? "no etcd binary here (apt-get install etcd-server)" : null;
  if (version !== null) {
    const etcd = await runSystem("etcd", version, () => EtcdTarget.start(), d);
    results.push({ ...etcd, partitionNote: "not run: etcd members are only stopped (SIGSTOP)" });
  }
  report(results, etcdNote);
  const flags = await flagsComparison(d, options.quick);

  const headline = results[0];
  if (headline === undefined) throw new Error("no Tandem result");
  const targets = targetsOf(headline, flags);
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
      convergenceMethods: {
        tandem:
          "stopped (SIGSTOP/SIGCONT of node 2) and partitioned (nftables in network namespaces, healed)",
        etcd: "stopped (SIGSTOP/SIGCONT of member 2)",
      },
      durations: d,
      etcd: version ?? etcdNote,
      results,
      flags,
    },
  });
  console.log(`wrote     ${path}`);
  if (!targets.every((t) => t.pass)) process.exitCode = 1;
}

await main(parseBenchOptions());
