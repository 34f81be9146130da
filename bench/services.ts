// A virtual IP's failover, Tandem against keepalived, in network namespaces (issue 18). Three node namespaces
// and a neighbour on one bridge (test/support/netns.ts); the VIP is an address of the lab's subnet on each
// node's eth0. Measured, one system after the other in the same namespaces, 30 trials each:
// - Tandem lan, the owner a follower: 3 agents (compiled build, mTLS, lan timings), one service with a `vip`
//   driver and failover_after_ms 1000. n3 has a higher priority, so it leads and, never the owner (placement:
//   the fewest services, then the lowest id), is never killed;
// - Tandem lan, the owner the leader: equal priorities; before each trial the bench kills -9 the leader (not
//   the owner: a leader change leaves a running service where it is) until the owner wins the election (at
//   most 4 times; each trial records whether the owner led), so the measured kill also takes the leader: an
//   election, then the new leader's inherited window (until its predecessor's grants have provably lapsed, as
//   its voters' reports bound it) before it grants a service anew (docs/services.md);
// - keepalived VRRPv2 with its default 1 s adverts (Debian's keepalived, one per namespace, nopreempt);
// - Tandem fast, both cases: the fast timings preset, failover_after_ms as low as `tandem config check`
//   allows for it (the preset's down_after_ms; one tick less is shown to be refused);
// - keepalived VRRPv3 with 0.2 s adverts.
//
// One trial: the system is steady (exactly one node holds the VIP, the neighbour's probes are answered by it,
// every daemon runs and agrees, and it stayed so for 3 s); Date.now(), then SIGKILL to the owner's daemon
// (keepalived: its whole process group), then the owner's link goes down (`ip link set eth0 down` in its
// namespace, tens of ms later): the node has crashed, and the VIP it still has on its interface answers
// nobody. (Killed alone, either daemon leaves the VIP on the interface and the node's kernel goes on answering
// for it: nothing would fail over, and every trial would show two holders.) The figure is kill → the
// neighbour receiving the first answer from another node.
//
// How "answers again" is seen: an echo server on every node is bound to VIP:7999 (the namespaces allow binding
// an address not held yet), so it hears datagrams only while its node holds the VIP, and it answers from the
// VIP with its node's name. The neighbour sends a datagram to VIP:7999 every 10 ms and records each answer with
// its receipt time (Date.now(), the clock the bench reads). After the crash its probes still go to the dead
// node's MAC address until the new owner's gratuitous ARP moves its neighbour entry (Tandem's driver: arping
// right after `ip addr replace`; keepalived: its own gratuitous ARPs on entering MASTER), so the figure
// includes that announcement reaching a real neighbour, which is what clients see. Resolution: the 10 ms probe
// interval. The answer's node name (not its MAC) tells who answered; answers from a source other than the VIP
// are counted (none expected).
//
// Two owners: `ip -ts monitor address link` runs in every node namespace for the whole run, so every add and
// removal of the VIP on eth0, and every time eth0 goes down or up, is recorded with ip's timestamp. Two owners
// is any interval in which two nodes held the VIP with their links up (a crashed node's link is down until its
// reboot). The count covers everything: start-up, every failover, every restart. At each steady point the
// monitors are cross-checked against `ip -j addr` read directly.
//
// After each trial the crashed node reboots: the VIP it left is removed (a rebooted host starts without it;
// the bench records that it was there), its link comes up, its daemon starts; then the next trial waits for a
// steady system again (the service running somewhere and the restarted node settled).
//
// Bounded: every wait has a deadline (10 s for the VIP to answer again, 60 s for a steady system), each system
// has a time budget, every process runs in the lab's namespaces and is killed by pid, and the lab deletes
// its namespaces at the end (also on Ctrl-C or SIGTERM). Writes bench/results/services.json.
//
//   node bench/services.ts [--quick] [--results-dir DIR] [--systems tandem_lan,keepalived_v2_1s,...]
//   (--quick: 3 trials each, not for quoting; --systems: run only these, for trying the bench out)
import { execFileSync } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { TimingsPreset } from "../src/config/index.ts";
import { vipLabInstallHint, vipLabSupport } from "../test/support/netns_vip.ts";
import { exitOnSignals } from "./support/bench_cluster.ts";
import { type BenchOptions, parseBenchOptions } from "./support/bench_options.ts";
import { buildCli } from "./support/cli_build.ts";
import { type Distribution, histogramLines, summarize } from "./support/distribution.ts";
import {
  KEEPALIVED_VARIANTS,
  KeepalivedCluster,
  type KeepalivedVariant,
  keepalivedSupport,
} from "./support/keepalived.ts";
import { describeMachine, formatMachine, type Machine } from "./support/machine.ts";
import { writeResult } from "./support/result_file.ts";
import {
  findOverlaps,
  LAB_NODE_IDS,
  type Overlap,
  PROBE_INTERVAL_MS,
  ServicesLab,
  type VipSystem,
} from "./support/services_lab.ts";
import { TandemVipCluster } from "./support/services_tandem.ts";
import { printTable } from "./support/table.ts";
import { Comparison, checkTarget, type TargetCheck, targetHeader, targetRow } from "./support/target.ts";

const TRIALS_FULL = 30;
const TRIALS_QUICK = 3;
/** Issue 18: kill -9 of the owner → the VIP answers again, Tandem lan, failover_after_ms 1000. */
const TARGET_P50_MS = 1_500;
const TARGET_MAX_MS = 2_500;
const LAN_FAILOVER_AFTER_MS = 1_000;
/** A trial whose VIP does not answer from another node by then has failed. */
const ANSWER_TIMEOUT_MS = 10_000;
const ANSWER_POLL_MS = 5;
/** After the answer: long enough to see a stray answer from the crashed node, were there one. */
const AFTER_ANSWER_MS = 300;
const STEADY_TIMEOUT_MS = 60_000;
const STEADY_POLL_MS = 100;
/** A steady system must stay so this long before a kill (the restarted node reports, probes settle). */
const SETTLE_MS = 3_000;
/** The owner must have answered a probe this recently to count as serving. */
const SERVING_WITHIN_MS = 100;
const SYSTEM_BUDGET_MS = { full: 15 * 60_000, quick: 3 * 60_000 };
const HISTOGRAM_BUCKET_MS = 100;

interface VipTrial {
  trial: number;
  victim: string;
  killAtMs: number;
  /** Kill → the link cut done (the crash complete). */
  cutMs: number;
  /** Kill → the neighbour received the first answer from another node: the measured failover. */
  answeredMs: number | null;
  answeredBy: string | null;
  /** Kill → when the probe that got that first answer was sent. */
  answeredProbeSentMs: number | null;
  /** Kill → the victim's last answer (it may answer until its link goes down). */
  victimLastAnswerMs: number | null;
  /** Probes sent after the cut that the victim answered: 0 unless the cut failed. */
  victimAnswersAfterCut: number;
  /** Answers after the kill whose source address was not the VIP. */
  wrongSource: number;
  /** VIP holders with their link up, right after the answer. */
  ownersAfter: string[];
  /** The reboot found the VIP still on the crashed node's interface (and removed it). */
  leftoverRemoved: boolean;
  /** Reboot → the system steady again with the service running (includes the 3 s settle). */
  rebootToSteadyMs: number | null;
  phases: Record<string, number | string | boolean | null>;
  error: string | null;
}

interface SystemRun {
  key: string;
  label: string;
  settings: Record<string, unknown>;
  trialsPlanned: number;
  startedAtMs: number;
  /** When the bench sent every daemon SIGTERM (the end of the trials). */
  stopAtMs: number;
  endedAtMs: number;
  /** Start of every daemon → the first steady system. */
  startToSteadyMs: number | null;
  trials: VipTrial[];
  failoverMs: Distribution | null;
  /** Intervals with two nodes holding the VIP, links up, during this system's run. */
  overlaps: Overlap[];
  /** Steady points where the monitors and a direct `ip -j addr` read disagreed. */
  monitorMismatches: number;
  /** Where the VIP still was after the system was stopped (SIGTERM), removed by the bench. */
  leftAfterStop: string[];
  abortReason: string | null;
}

function present(values: Array<number | null>): number[] {
  return values.filter((v): v is number => v !== null);
}

/** The one node holding the VIP and answering, once the system agrees and it stays so for SETTLE_MS. */
async function waitSteady(
  lab: ServicesLab,
  system: VipSystem,
  mismatches: { count: number },
): Promise<string> {
  const deadline = Date.now() + STEADY_TIMEOUT_MS;
  const serving = (): string | null => {
    const owners = lab.owners();
    if (owners.length !== 1) return null;
    const owner = owners[0] as string;
    const recent = lab.repliesSince(Date.now() - SERVING_WITHIN_MS);
    return recent.length > 0 && recent.every((r) => r.node === owner) ? owner : null;
  };
  while (Date.now() < deadline) {
    const owner = serving();
    if (owner !== null && (await system.steadyWith(owner))) {
      await sleep(SETTLE_MS);
      if (serving() === owner && (await system.steadyWith(owner))) {
        const sampled = lab.sampledHolders();
        if (sampled.length === 1 && sampled[0] === owner) return owner;
        mismatches.count += 1;
      }
    }
    await sleep(STEADY_POLL_MS);
  }
  throw new Error(
    `${system.label}: not steady within ${STEADY_TIMEOUT_MS} ms (VIP on ${lab.owners().join(",") || "no node"})\n${system.dumpLogs()}`,
  );
}

async function runTrial(
  lab: ServicesLab,
  system: VipSystem,
  trial: number,
  victim: string,
): Promise<VipTrial> {
  const result: VipTrial = {
    trial,
    victim,
    killAtMs: 0,
    cutMs: 0,
    answeredMs: null,
    answeredBy: null,
    answeredProbeSentMs: null,
    victimLastAnswerMs: null,
    victimAnswersAfterCut: 0,
    wrongSource: 0,
    ownersAfter: [],
    leftoverRemoved: false,
    rebootToSteadyMs: null,
    phases: {},
    error: null,
  };
  // The crash: SIGKILL, then the link (synchronous `ip`, a few ms).
  const killAtMs = Date.now();
  result.killAtMs = killAtMs;
  system.kill(victim);
  lab.cutLink(victim);
  const cutAtMs = Date.now();
  result.cutMs = cutAtMs - killAtMs;

  const deadline = killAtMs + ANSWER_TIMEOUT_MS;
  let first = null;
  while (first === null && Date.now() < deadline) {
    first = lab.repliesSince(killAtMs).find((r) => r.node !== victim) ?? null;
    if (first === null) await sleep(ANSWER_POLL_MS);
  }
  if (first === null)
    result.error = `the VIP did not answer from another node within ${ANSWER_TIMEOUT_MS} ms`;
  else {
    result.answeredMs = first.receivedAtMs - killAtMs;
    result.answeredBy = first.node;
    result.answeredProbeSentMs = first.sentAtMs - killAtMs;
    await sleep(AFTER_ANSWER_MS);
    result.ownersAfter = lab.owners();
    result.phases = system.phases(victim, killAtMs, first.node);
  }
  const after = lab.repliesSince(killAtMs);
  const fromVictim = after.filter((r) => r.node === victim);
  const last = fromVictim.at(-1);
  result.victimLastAnswerMs = last === undefined ? null : last.receivedAtMs - killAtMs;
  result.victimAnswersAfterCut = fromVictim.filter((r) => r.sentAtMs > cutAtMs).length;
  result.wrongSource = after.filter((r) => r.source !== lab.vip).length;

  result.leftoverRemoved = lab.rebootNetwork(victim).leftoverRemoved;
  await system.restart(victim);
  return result;
}

function formatMs(value: number | null | undefined): string {
  return value === null || value === undefined ? "-" : String(Math.round(value));
}

function printTrial(system: VipSystem, t: VipTrial, trials: number): void {
  const p = t.phases;
  const detail = system.key.startsWith("tandem")
    ? `leader before ${String(p.leaderBefore)}; placed ${formatMs(p.placedMs as number | null)}, starting ${formatMs(p.startingMs as number | null)}, VIP added ${formatMs(p.addedMs as number | null)}`
    : `MASTER logged ${formatMs(p.masterLoggedMs as number | null)}${p.secondMaster ? ", A SECOND MASTER" : ""}`;
  const outcome =
    t.answeredBy === null
      ? "no answer from another node"
      : `answered by ${t.answeredBy} after ${formatMs(t.answeredMs)} ms (probe sent at ${formatMs(t.answeredProbeSentMs)}); ${detail}`;
  const anomalies = [
    t.victimAnswersAfterCut > 0
      ? `${t.victimAnswersAfterCut} answers from the crashed node after the cut`
      : "",
    t.wrongSource > 0 ? `${t.wrongSource} answers not from the VIP` : "",
    t.ownersAfter.length > 1 ? `VIP on ${t.ownersAfter.join(",")}` : "",
    t.error ?? "",
  ].filter(Boolean);
  console.log(
    `${system.key.padEnd(20)} trial ${String(t.trial).padStart(2)}/${trials}  killed ${t.victim}: ${outcome}; ` +
      `steady again ${formatMs(t.rebootToSteadyMs)} ms after the reboot${anomalies.length ? `  [${anomalies.join("; ")}]` : ""}`,
  );
}

async function runSystem(
  lab: ServicesLab,
  system: VipSystem,
  trials: number,
  budgetMs: number,
): Promise<SystemRun> {
  const run: SystemRun = {
    key: system.key,
    label: system.label,
    settings: system.settings,
    trialsPlanned: trials,
    startedAtMs: Date.now(),
    stopAtMs: 0,
    endedAtMs: 0,
    startToSteadyMs: null,
    trials: [],
    failoverMs: null,
    overlaps: [],
    monitorMismatches: 0,
    leftAfterStop: [],
    abortReason: null,
  };
  const mismatches = { count: 0 };
  const budgetEndMs = run.startedAtMs + budgetMs;
  console.log(`\n${system.label}: starting 3 daemons`);
  try {
    await system.startAll();
    let owner = await waitSteady(lab, system, mismatches);
    run.startToSteadyMs = Date.now() - run.startedAtMs;
    for (let trial = 1; trial <= trials; trial++) {
      if (Date.now() > budgetEndMs) {
        run.abortReason = `time budget of ${budgetMs / 60_000} min spent after ${trial - 1} trials`;
        break;
      }
      let setupKills = 0;
      if (system.arrange !== undefined) {
        const arranged = await system.arrange(owner, () => waitSteady(lab, system, mismatches));
        owner = arranged.owner;
        setupKills = arranged.setupKills;
      }
      const result = await runTrial(lab, system, trial, owner);
      result.phases.setupKills = setupKills;
      const rebootAtMs = Date.now();
      run.trials.push(result);
      try {
        owner = await waitSteady(lab, system, mismatches);
        result.rebootToSteadyMs = Date.now() - rebootAtMs;
      } finally {
        printTrial(system, result, trials);
      }
    }
  } catch (error) {
    run.abortReason = error instanceof Error ? (error.message.split("\n")[0] ?? error.name) : String(error);
    console.log(`${system.label}: aborted: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  } finally {
    run.stopAtMs = Date.now();
    await system.stopAll();
    // What the monitors see last must be in the record before the window closes.
    await sleep(200);
    run.leftAfterStop = lab.clearVip();
    await sleep(200);
    run.endedAtMs = Date.now();
  }
  run.monitorMismatches = mismatches.count;
  const failovers = present(run.trials.map((t) => t.answeredMs));
  run.failoverMs = failovers.length > 0 ? summarize(failovers) : null;
  return run;
}

/** `--systems a,b` is this bench's own option; the rest go to parseBenchOptions. */
function parseSystems(argv: readonly string[]): { only: string[] | null; rest: string[] } {
  let only: string[] | null = null;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--systems") only = (argv[++i] ?? "").split(",").filter(Boolean);
    else if (arg.startsWith("--systems=")) only = arg.slice("--systems=".length).split(",").filter(Boolean);
    else rest.push(arg);
  }
  return { only, rest };
}

interface SystemPlan {
  key: string;
  create(lab: ServicesLab): Promise<VipSystem>;
}

async function main(): Promise<void> {
  const { only, rest } = parseSystems(process.argv.slice(2));
  const options = parseBenchOptions(rest);
  const trials = options.quick ? TRIALS_QUICK : TRIALS_FULL;
  const machine = describeMachine();
  console.log(`services  ${new Date().toISOString()}${options.quick ? "  (--quick: not for quoting)" : ""}`);
  console.log(`machine   ${formatMachine(machine)}`);

  const lab = vipLabSupport();
  const keepalived = keepalivedSupport();
  const missing: string[] = [];
  if (!lab.ok) missing.push(`${lab.missing} (${vipLabInstallHint})`);
  if (!keepalived.ok) missing.push(keepalived.missing);
  const keepalivedPlan = (variant: KeepalivedVariant | undefined): SystemPlan[] => {
    if (!keepalived.ok || variant === undefined) return [];
    const version = keepalived.version;
    return [{ key: variant.key, create: async (l) => new KeepalivedCluster(l, variant, version) }];
  };
  // Each Tandem run next to the keepalived run it is compared with, so both see the machine alike.
  const plans: SystemPlan[] = [
    {
      key: "tandem_lan",
      create: (l: ServicesLab) => TandemVipCluster.create(l, TimingsPreset.Lan, LAN_FAILOVER_AFTER_MS),
    },
    {
      key: "tandem_lan_owner_leads",
      create: (l: ServicesLab) => TandemVipCluster.create(l, TimingsPreset.Lan, LAN_FAILOVER_AFTER_MS, true),
    },
    ...keepalivedPlan(KEEPALIVED_VARIANTS[0]),
    { key: "tandem_fast", create: (l: ServicesLab) => TandemVipCluster.create(l, TimingsPreset.Fast, null) },
    {
      key: "tandem_fast_owner_leads",
      create: (l: ServicesLab) => TandemVipCluster.create(l, TimingsPreset.Fast, null, true),
    },
    ...keepalivedPlan(KEEPALIVED_VARIANTS[1]),
  ].filter((plan) => only === null || only.includes(plan.key));

  const runs: SystemRun[] = [];
  let overlaps: Overlap[] = [];
  let abortReason: string | null = null;
  let vip: string | null = null;
  /** The monitors ran the whole time: without that, "no two owners" would not be measured. */
  let watched = false;
  let source: ReturnType<typeof sourceState> | null = null;
  if (!lab.ok) {
    abortReason = `cannot build the lab: ${missing.join("; ")}`;
    console.log(abortReason);
    process.exitCode = 1;
  } else {
    if (!keepalived.ok) console.log(`keepalived is not measured: ${keepalived.missing}`);
    exitOnSignals();
    source = sourceState();
    buildCli();
    console.log(
      `build     dist/ from ${source.commit ?? "?"}${source.srcModified ? " with src/ modified (uncommitted)" : ""}`,
    );
    const services = await ServicesLab.create();
    vip = services.vipCidr;
    console.log(
      `setup     3 node namespaces and a neighbour on one bridge; VIP ${services.vipCidr} on eth0; ` +
        `the neighbour probes it over UDP every ${PROBE_INTERVAL_MS} ms; ${keepalived.ok ? keepalived.version : "no keepalived"}`,
    );
    try {
      for (const plan of plans) {
        const budget = options.quick ? SYSTEM_BUDGET_MS.quick : SYSTEM_BUDGET_MS.full;
        let system: VipSystem;
        try {
          system = await plan.create(services);
        } catch (error) {
          const reason = error instanceof Error ? error.message : String(error);
          console.log(`${plan.key}: not set up: ${reason}`);
          abortReason = `${plan.key}: ${reason}`;
          process.exitCode = 1;
          continue;
        }
        runs.push(await runSystem(services, system, trials, budget));
        if (!services.watching()) throw new Error("a probe, echo server or address monitor died");
      }
    } catch (error) {
      abortReason = error instanceof Error ? (error.message.split("\n")[0] ?? error.name) : String(error);
      process.exitCode = 1;
    } finally {
      overlaps = findOverlaps(services.holderEvents());
      watched = services.watching();
      await services.dispose();
    }
    for (const run of runs) {
      run.overlaps = overlaps.filter((o) => o.fromMs >= run.startedAtMs && o.fromMs <= run.endedAtMs);
    }
  }
  report({
    options,
    machine,
    trials,
    runs,
    overlaps,
    abortReason,
    vip,
    watched,
    source,
    keepalivedVersion: keepalived.ok ? keepalived.version : null,
  });
}

/** The commit the build came from, and whether src/ differed from it (others may edit while a bench runs). */
function sourceState(): { commit: string | null; srcModified: boolean | null } {
  const git = (args: string[]) => {
    try {
      return execFileSync("git", args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    } catch {
      return null;
    }
  };
  const status = git(["status", "--porcelain", "--", "src"]);
  return {
    commit: git(["rev-parse", "--short", "HEAD"]),
    srcModified: status === null ? null : status !== "",
  };
}

function distributionCells(d: Distribution | null): string[] {
  if (d === null) return ["-", "-", "-", "-", "-"];
  return [d.min, d.p50, d.p90, d.max, d.mean].map((v) => v.toFixed(0));
}

function ratio(a: number | undefined, b: number | undefined): number | null {
  return a === undefined || b === undefined || b === 0 ? null : a / b;
}

function formatRatio(value: number | null): string {
  return value === null ? "-" : `${value.toFixed(2)}×`;
}

function report(result: {
  options: BenchOptions;
  machine: Machine;
  trials: number;
  runs: SystemRun[];
  overlaps: Overlap[];
  abortReason: string | null;
  vip: string | null;
  watched: boolean;
  source: ReturnType<typeof sourceState> | null;
  keepalivedVersion: string | null;
}): void {
  const { runs } = result;
  const byKey = (key: string) => runs.find((r) => r.key === key);
  const answered = (run: SystemRun | undefined) =>
    run?.trials.filter((t) => t.answeredMs !== null).length ?? 0;

  console.log("");
  console.log(
    `kill -9 of the owner → the VIP answers the neighbour again, ms (${result.trials} trials each):`,
  );
  printTable(
    ["system", "answered", "min", "p50", "p90", "max", "mean", "two owners"],
    runs.map((run) => [
      run.label,
      `${answered(run)}/${run.trialsPlanned}`,
      ...distributionCells(run.failoverMs),
      String(run.overlaps.length),
    ]),
  );

  const pairs = [
    ["tandem_lan", "keepalived_v2_1s"],
    ["tandem_lan_owner_leads", "keepalived_v2_1s"],
    ["tandem_fast", "keepalived_v3_200ms"],
    ["tandem_fast_owner_leads", "keepalived_v3_200ms"],
  ] as const;
  const ratioRows = pairs.flatMap(([a, b]) => {
    const x = byKey(a);
    const y = byKey(b);
    if (!x?.failoverMs || !y?.failoverMs) return [];
    return [
      [
        `${x.label} / ${y.label}`,
        formatRatio(ratio(x.failoverMs.p50, y.failoverMs.p50)),
        formatRatio(ratio(x.failoverMs.p90, y.failoverMs.p90)),
        formatRatio(ratio(x.failoverMs.max, y.failoverMs.max)),
      ],
    ];
  });
  if (ratioRows.length > 0) {
    console.log("");
    printTable(["ratio", "p50", "p90", "max"], ratioRows);
  }

  for (const run of runs.filter((r) => r.key.startsWith("tandem"))) {
    const phase = (name: string, trials = run.trials) =>
      present(trials.map((t) => (typeof t.phases[name] === "number" ? (t.phases[name] as number) : null)));
    const row = (label: string, values: number[]) => [
      label,
      String(values.length),
      ...distributionCells(values.length > 0 ? summarize(values) : null),
    ];
    const led = run.trials.filter((t) => t.phases.victimLed === true);
    const notLed = run.trials.filter((t) => t.phases.victimLed === false);
    console.log("");
    console.log(`${run.label}, where the time goes (ms after the kill; from the agents' logs):`);
    printTable(
      ["phase", "n", "min", "p50", "p90", "max", "mean"],
      [
        row("new leader elected (owner led)", phase("leaderElectedMs")),
        row("placement moved it", phase("placedMs")),
        row("new owner: service starting", phase("startingMs")),
        row("new owner: VIP added", phase("addedMs")),
        row("VIP answers (owner was a follower)", present(notLed.map((t) => t.answeredMs))),
        row("VIP answers (owner was the leader)", present(led.map((t) => t.answeredMs))),
        row("(reboot → steady again)", present(run.trials.map((t) => t.rebootToSteadyMs))),
      ],
    );
    const values = present(run.trials.map((t) => t.answeredMs));
    if (values.length > 0) {
      console.log(`kill -9 → VIP answers, ${HISTOGRAM_BUCKET_MS} ms buckets:`);
      for (const line of histogramLines(values, HISTOGRAM_BUCKET_MS)) console.log(`  ${line}`);
    }
  }

  const anomalies = runs.flatMap((run) => [
    ...run.overlaps.map(
      (o) =>
        `${run.key}: two owners (${o.nodes.join(", ")}) from ${new Date(o.fromMs).toISOString()} for ${o.toMs === null ? "?" : (o.toMs - o.fromMs).toFixed(1)} ms${o.fromMs >= run.stopAtMs ? " (while stopping)" : ""}`,
    ),
    ...(run.monitorMismatches > 0
      ? [`${run.key}: ${run.monitorMismatches} monitor/ip addr disagreements`]
      : []),
    ...(run.leftAfterStop.length > 0
      ? [`${run.key}: VIP still on ${run.leftAfterStop.join(",")} after stop`]
      : []),
    ...run.trials
      .filter((t) => t.victimAnswersAfterCut > 0 || t.wrongSource > 0 || t.ownersAfter.length > 1)
      .map(
        (t) =>
          `${run.key} trial ${t.trial}: after-cut ${t.victimAnswersAfterCut}, wrong source ${t.wrongSource}, owners ${t.ownersAfter.join(",")}`,
      ),
  ]);
  if (anomalies.length > 0) {
    console.log("");
    for (const line of anomalies) console.log(`note      ${line}`);
  }

  const vrrp2 = byKey("keepalived_v2_1s");
  const tandemRuns = runs.filter((run) => run.key.startsWith("tandem"));
  // Measured only if the monitors ran throughout: a count from a dead monitor would be an assumption.
  const tandemOverlaps =
    !result.watched || tandemRuns.length === 0
      ? null
      : tandemRuns.reduce((sum, run) => sum + run.overlaps.length, 0);
  // The issue's targets for both cases of the owner: a follower, and the leader (a slower path: an election,
  // then the new leader's one-lease wait before it grants the service anew).
  const lanTargets = (key: string): TargetCheck[] => {
    const run = byKey(key);
    if (run === undefined) return [];
    const complete = answered(run) === result.trials;
    const what = (stat: string) => `VIP back after kill -9 of the owner, ${stat} (${run.label})`;
    return [
      checkTarget(what("p50"), "ms", Comparison.AtMost, TARGET_P50_MS, run.failoverMs?.p50 ?? null),
      // A trial without an answer is worse than any figure: the tail counts only when every trial answered.
      checkTarget(
        what("max"),
        "ms",
        Comparison.AtMost,
        TARGET_MAX_MS,
        complete ? (run.failoverMs?.max ?? null) : null,
      ),
      checkTarget(
        `trials where the VIP answered again (${run.label})`,
        "trials",
        Comparison.AtLeast,
        result.trials,
        answered(run),
      ),
      checkTarget(
        `p50 / keepalived VRRPv2 1 s p50 (${run.label})`,
        "×",
        Comparison.Below,
        1,
        ratio(run.failoverMs?.p50, vrrp2?.failoverMs?.p50),
      ),
    ];
  };
  const targets: TargetCheck[] = [
    ...lanTargets("tandem_lan"),
    ...lanTargets("tandem_lan_owner_leads"),
    checkTarget(
      "two owners at once (every Tandem run, start to stop)",
      "times",
      Comparison.AtMost,
      0,
      tandemOverlaps,
    ),
  ];
  console.log("");
  printTable(targetHeader, targets.map(targetRow));
  if (result.abortReason) console.log(`aborted   ${result.abortReason}`);

  const path = writeResult(result.options.resultsDir, {
    bench: "services",
    date: new Date().toISOString(),
    quick: result.options.quick,
    machine: result.machine,
    targets,
    data: {
      nodes: LAB_NODE_IDS.length,
      source: result.source,
      vip: result.vip,
      probeIntervalMs: PROBE_INTERVAL_MS,
      settleMs: SETTLE_MS,
      keepalived: result.keepalivedVersion,
      watchedThroughout: result.watched,
      trialsPlanned: result.trials,
      abortReason: result.abortReason,
      ratios: Object.fromEntries(
        pairs.map(([a, b]) => [
          `${a}/${b}`,
          {
            p50: ratio(byKey(a)?.failoverMs?.p50, byKey(b)?.failoverMs?.p50),
            p90: ratio(byKey(a)?.failoverMs?.p90, byKey(b)?.failoverMs?.p90),
            max: ratio(byKey(a)?.failoverMs?.max, byKey(b)?.failoverMs?.max),
          },
        ]),
      ),
      systems: runs,
    },
  });
  console.log(`wrote     ${path}`);
}

await main();
