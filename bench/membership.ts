// A node joining a loaded cluster: 3 agents (the compiled build, rebuilt first) hold 100,000 store entries
// of 1 KiB; then, per trial, n4 starts with an empty data folder and `tandem agent --join` (n1's mesh
// address), and the bench times spawn → "agent started", → n4 listed as a learner and → n4 a voter (GET
// /api/v1/members of the node leading before the join, every 50 ms, that version held by a quorum), and
// counts n4's entries right then. Right after the change whoever leads is killed with kill -9; the
// survivors (n4 among them) must agree on a new leader and keep it 3 s: one kill per trial, not
// failover.ts's 50. Then n4's listing is counted until it holds every entry. Between trials n4 is removed
// with `tandem member remove`, stopped and wiped, and the killed node restarted. Prints the figures and the
// phases of each join from the agents' logs, writes bench/results/membership.json.
//
//   node bench/membership.ts [--quick] [--results-dir DIR] [--entries N] [--trials N] [--logs DIR]
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs, promisify } from "node:util";
import { AGENT_NODE_FLAGS } from "../src/cli/agent_flags.ts";
import { collectLines } from "../test/support/child_lines.ts";
import { CLI_ENTRY, ClusterHarness } from "../test/support/cluster_harness.ts";
import { waitForPortsFree } from "../test/support/free_ports.ts";
import {
  CLUSTER_NODE_IDS,
  exitOnSignals,
  type Leadership,
  type LogRecord,
  parseLogRecords,
  waitForSteadyCluster,
} from "./support/bench_cluster.ts";
import { buildCli } from "./support/cli_build.ts";
import { type Distribution, summarize } from "./support/distribution.ts";
import { describeMachine, formatMachine } from "./support/machine.ts";
import { defaultResultsDir, writeResult } from "./support/result_file.ts";
import { printTable } from "./support/table.ts";
import { Comparison, checkTarget, type TargetCheck, targetHeader, targetRow } from "./support/target.ts";

const ENTRIES_FULL = 100_000;
const ENTRIES_QUICK = 10_000;
const TRIALS_FULL = 5;
const TRIALS_QUICK = 1;
const VALUE_BYTES = 1024;
const BATCH_WRITES = 1_000;
const WRITERS = 4;
const DIRECTORIES = 300;
const PREFIX = "membership/";
/** Entries per listing page: the API's maximum. */
const LIST_PAGE = 10_000;
/** Issue 23: a node added to a running 3-node cluster holding 100,000 entries votes within 10 s. */
const JOIN_VOTING_MS_MAX = 10_000;
/** bench/failover.ts's lan targets (issue 22) for kill -9 of the leader → a new leader. */
const FAILOVER_P50_MS_MAX = 700;
const FAILOVER_MS_MAX = 1_200;
const MEMBERS_POLL_MS = 50;
const STEADY_TIMEOUT_MS = 60_000;
const POPULATED_TIMEOUT_MS = 10 * 60_000;
/** A join not voting by then is a failed trial: bounds a broken build, far above the target. */
const JOIN_TIMEOUT_MS = 120_000;
/** As failover.ts: a trial without a new agreed leader by then counts as failed. */
const LEADER_TIMEOUT_MS = 10_000;
/** The status answer and the leader's log line arrive on different pipes, in either order. */
const LEADER_LINE_WAIT_MS = 2_000;
const REQUEST_TIMEOUT_MS = 5_000;
/** After the failover, the survivors must keep the new leader (same term) this long. */
const LEADER_KEPT_MS = 3_000;
const LEADER_KEPT_POLL_MS = 100;
/** How often n4's listing is counted while it still lacks entries. */
const ENTRIES_POLL_MS = 1_000;
/** `tandem member remove` is retried while the cluster has no leader or lost its answer (it says to retry). */
const REMOVE_TIMEOUT_MS = 30_000;
const REMOVE_RETRY_MS = 500;
const JOINER = "n4";
/** The member n4 is pointed at (any member would do; it forwards the request to the leader). */
const JOIN_VIA = CLUSTER_NODE_IDS[0];

interface Options {
  quick: boolean;
  resultsDir: string;
  entries: number;
  trials: number;
  /** Where to write every agent's raw log lines at the end (for reading the phases in detail), or null. */
  logsDir: string | null;
}

/** Milliseconds after n4's spawn, from the agents' logs (pino `time`, the same machine clock). */
interface JoinPhases {
  meshListening: number | null;
  agentStarted: number | null;
  /** The member n4 was pointed at logged the request. */
  joinRequested: number | null;
  /** The leader proposed the add, and n4 logged the answer once a quorum held it. */
  addProposed: number | null;
  learnerAnswered: number | null;
  /** n4's store rounds (debug lines): the first started, the last that pulled something completed. */
  firstRoundStarted: number | null;
  lastPullCompleted: number | null;
  rounds: number;
  pulled: number;
  /** Every store round n4 logged, in order: what the catch-up spent its time on. */
  roundLog: RoundLogEntry[];
  /** The leader's catch-up check passed, and it proposed the promotion. */
  caughtUp: number | null;
  promoteProposed: number | null;
}

interface RoundLogEntry {
  atMs: number;
  event: "started" | "completed" | "abandoned";
  peer: unknown;
  roundId: unknown;
  /** started: kind and reason; completed: pulled and more; abandoned: reason. */
  detail: Record<string, unknown>;
}

interface MembershipTrial {
  trial: number;
  /** Epoch ms of n4's spawn. */
  spawnAtMs: number;
  /** Spawn → "agent started" (n4's log). */
  spawnToStartedMs: number | null;
  /** Spawn → the members list of the node leading before the join first named n4 (a learner), as polled. */
  spawnToLearnerMs: number | null;
  /** Spawn → that list named n4 voting, in a version held by a quorum, as polled. */
  spawnToVotingMs: number | null;
  /** What n4 listed right after it was seen voting. */
  entriesOnJoiner: number | null;
  /**
   * Spawn → n4 listed every entry: the voting figure when it did at once, else counted every second
   * after the failover (so with the kill in between); an upper bound.
   */
  spawnToAllEntriesMs: number | null;
  phases: JoinPhases | null;
  /** Who led before n4's spawn and when it was killed: a join should not move leadership. */
  leaderBeforeJoin: Leadership;
  leaderAtKill: Leadership | null;
  victim: string | null;
  /** n4 seen voting → the kill (counting n4's entries, reading who leads): how "right after" it was. */
  killAfterVotingMs: number | null;
  /** Kill → the new leader's "became leader" line (as failover.ts). */
  failoverMs: number | null;
  /** Kill → status polling saw the survivors agree. */
  failoverPolledMs: number | null;
  newLeader: string | null;
  /** The survivors still agreed on that leader, in that term, LEADER_KEPT_MS later. */
  newLeaderKept: boolean;
  /** What they agreed on instead (null: no agreement at some poll). */
  leadershipAfterKept: Leadership | null;
  /** `tandem member remove n4` → its answer (retries included), and the restore → a steady 3-node cluster. */
  removeMs: number | null;
  removeAttempts: number;
  restoreMs: number | null;
  /** What went wrong: a figure missing, entries missing when voting, a leader that did not last. */
  problems: string[];
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      "results-dir": { type: "string", default: defaultResultsDir },
      entries: { type: "string" },
      trials: { type: "string" },
      logs: { type: "string" },
    },
  });
  const quick = values.quick;
  return {
    quick,
    resultsDir: values["results-dir"],
    entries: values.entries ? Number(values.entries) : quick ? ENTRIES_QUICK : ENTRIES_FULL,
    trials: values.trials ? Number(values.trials) : quick ? TRIALS_QUICK : TRIALS_FULL,
    logsDir: values.logs ?? null,
  };
}

/**
 * n4's agent. The harness starts agents without arguments, so the bench spawns this one itself, as the
 * harness does (same CLI, V8 flags and process group), and kills it by pid.
 */
class JoiningAgent {
  /** Its log lines, every run appended. */
  readonly lines: string[] = [];
  private child: ChildProcess | null = null;

  constructor() {
    process.once("exit", () => this.signal("SIGKILL"));
  }

  start(configPath: string, joinAddress: string): void {
    if (this.child) throw new Error(`${JOINER} already running`);
    const args = [
      ...AGENT_NODE_FLAGS,
      CLI_ENTRY.build,
      "agent",
      "--config",
      configPath,
      "--join",
      joinAddress,
    ];
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
    collectLines(child, this.lines);
    child.once("exit", () => {
      if (this.child === child) this.child = null;
    });
    this.child = child;
  }

  /** Sends the signal before its first await (a kill instant read just before is exact). */
  async stop(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    this.signal(signal);
    await exited;
  }

  private signal(signal: NodeJS.Signals): void {
    if (this.child?.pid !== undefined && this.child.exitCode === null) process.kill(this.child.pid, signal);
  }
}

interface Bench {
  harness: ClusterHarness;
  joiner: JoiningAgent;
  options: Options;
}

function linesOf(bench: Bench, id: string): string[] {
  return id === JOINER ? bench.joiner.lines : bench.harness.logLines(id);
}

function killNode(bench: Bench, id: string): Promise<void> {
  return id === JOINER ? bench.joiner.stop("SIGKILL") : bench.harness.kill(id, "SIGKILL");
}

function entryPath(index: number): string {
  return `${PREFIX}d${String(index % DIRECTORIES).padStart(3, "0")}/entry-${index}`;
}

function entryValue(index: number): string {
  const line = `# entry ${index}\nupstream host-${index}.example.org;\n`;
  return Buffer.from(line.repeat(Math.ceil(VALUE_BYTES / line.length)).slice(0, VALUE_BYTES)).toString(
    "base64",
  );
}

function postJson(url: string, body: string, agent: Agent): Promise<number> {
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

/** Writes the entries through n1's API, 1,000 per request, 4 requests in flight, min_acks 1. */
async function populate(harness: ClusterHarness, entries: number): Promise<void> {
  const url = `${harness.node(CLUSTER_NODE_IDS[0]).apiUrl}/api/v1/store`;
  const agent = new Agent({ keepAlive: true, maxSockets: WRITERS });
  let next = 0;
  const writer = async () => {
    while (next < entries) {
      const first = next;
      next = Math.min(entries, next + BATCH_WRITES);
      const writes = [];
      for (let i = first; i < next; i++) writes.push({ path: entryPath(i), value: entryValue(i) });
      const status = await postJson(url, JSON.stringify({ writes, minAcks: 1 }), agent);
      if (status !== 200) throw new Error(`batch at ${first} answered HTTP ${status}`);
    }
  };
  try {
    await Promise.all(Array.from({ length: WRITERS }, writer));
  } finally {
    agent.destroy();
  }
}

async function getJson<T>(url: string): Promise<T | null> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    return response.ok ? ((await response.json()) as T) : null;
  } catch {
    return null;
  }
}

/** The live entries under PREFIX a node lists (paged), or null if it did not answer. */
async function countEntries(harness: ClusterHarness, id: string): Promise<number | null> {
  const base = `${harness.node(id).apiUrl}/api/v1/store?prefix=${encodeURIComponent(PREFIX)}&limit=${LIST_PAGE}`;
  let count = 0;
  let after: string | null = null;
  do {
    const url: string = after === null ? base : `${base}&after=${encodeURIComponent(after)}`;
    const page = await getJson<{ entries: unknown[]; next: string | null }>(url);
    if (page === null) return null;
    count += page.entries.length;
    after = page.next;
  } while (after !== null);
  return count;
}

async function waitForPopulated(harness: ClusterHarness, entries: number): Promise<void> {
  const deadline = Date.now() + POPULATED_TIMEOUT_MS;
  for (;;) {
    const counts = await Promise.all(CLUSTER_NODE_IDS.map((id) => countEntries(harness, id)));
    if (counts.every((c) => c === entries)) return;
    if (Date.now() > deadline)
      throw new Error(`entries ${counts.join("/")} of ${entries} after the deadline`);
    await sleep(1_000);
  }
}

interface MembersAnswer {
  version: number;
  committedVersion: number;
  members: Array<{ id: string; voting: boolean }>;
}

/** Polls the members list of `leaderId` until n4 votes there in a version a quorum holds. */
async function waitForVoter(
  harness: ClusterHarness,
  leaderId: string,
  spawnAtMs: number,
): Promise<{ learnerMs: number | null; votingMs: number }> {
  const url = `${harness.node(leaderId).apiUrl}/api/v1/members`;
  let learnerMs: number | null = null;
  while (Date.now() - spawnAtMs < JOIN_TIMEOUT_MS) {
    const answer = await getJson<MembersAnswer>(url);
    const joiner = answer?.members.find((m) => m.id === JOINER);
    const atMs = Date.now() - spawnAtMs;
    if (answer && joiner) {
      learnerMs ??= atMs;
      if (joiner.voting && answer.committedVersion >= answer.version) return { learnerMs, votingMs: atMs };
    }
    await sleep(MEMBERS_POLL_MS);
  }
  throw new Error(`${JOINER} not a voter on ${leaderId} within ${JOIN_TIMEOUT_MS} ms`);
}

/** Every node's records since the offsets, each with its node id. */
function recordsSince(bench: Bench, offsets: Map<string, number>): Array<{ id: string; record: LogRecord }> {
  return [...offsets].flatMap(([id, from]) =>
    parseLogRecords(linesOf(bench, id).slice(from)).map((record) => ({ id, record })),
  );
}

function joinPhases(bench: Bench, offsets: Map<string, number>, spawnAtMs: number): JoinPhases {
  const records = recordsSince(bench, offsets);
  const first = (match: (id: string, r: LogRecord) => boolean) => {
    const found = records.find(({ id, record }) => match(id, record));
    return found ? found.record.time - spawnAtMs : null;
  };
  const changeOf = (r: LogRecord) => r.change as { type?: string; id?: string; node?: { id?: string } };
  const proposed = (type: string) =>
    first((_, r) => {
      const change = changeOf(r);
      return (
        r.msg === "membership change proposed" &&
        change.type === type &&
        (change.id ?? change.node?.id) === JOINER
      );
    });
  const rounds = records.filter(({ id }) => id === JOINER).map(({ record }) => record);
  const completed = rounds.filter((r) => r.msg === "store round-completed");
  const pulling = completed.filter((r) => Number(r.pulled) > 0);
  const lastPull = pulling.at(-1);
  return {
    meshListening: first((id, r) => id === JOINER && r.msg === "mesh listening"),
    agentStarted: first((id, r) => id === JOINER && r.msg === "agent started"),
    joinRequested: first((id, r) => id === JOIN_VIA && r.msg === "join requested"),
    addProposed: proposed("add"),
    learnerAnswered: first((id, r) => id === JOINER && r.msg.startsWith("added to the cluster as a learner")),
    firstRoundStarted: first((id, r) => id === JOINER && r.msg === "store round-started"),
    lastPullCompleted: lastPull ? lastPull.time - spawnAtMs : null,
    rounds: completed.length,
    pulled: pulling.reduce((sum, r) => sum + Number(r.pulled), 0),
    roundLog: roundLog(rounds, spawnAtMs),
    caughtUp: first((_, r) => r.msg === "learner caught up: promoting it to voter" && r.learner === JOINER),
    promoteProposed: proposed("promote"),
  };
}

function roundLog(records: readonly LogRecord[], spawnAtMs: number): RoundLogEntry[] {
  return records.flatMap((r) => {
    const event = /^store round-(started|completed|abandoned)$/.exec(r.msg)?.[1] as RoundLogEntry["event"];
    if (event === undefined) return [];
    const { kind, reason, pulled, more } = r;
    const detail =
      event === "started" ? { kind, reason } : event === "completed" ? { pulled, more } : { reason };
    return [{ atMs: r.time - spawnAtMs, event, peer: r.peer, roundId: r.roundId, detail }];
  });
}

function emptyTrial(trial: number, leaderBeforeJoin: Leadership): MembershipTrial {
  return {
    trial,
    spawnAtMs: 0,
    leaderBeforeJoin,
    leaderAtKill: null,
    spawnToStartedMs: null,
    spawnToLearnerMs: null,
    spawnToVotingMs: null,
    entriesOnJoiner: null,
    spawnToAllEntriesMs: null,
    phases: null,
    victim: null,
    killAfterVotingMs: null,
    failoverMs: null,
    failoverPolledMs: null,
    newLeader: null,
    newLeaderKept: false,
    leadershipAfterKept: null,
    removeMs: null,
    removeAttempts: 0,
    restoreMs: null,
    problems: [],
  };
}

/** n4 joins through n1 with an empty data folder; fills the join's fields of `result`. */
async function joinTrial(bench: Bench, leader: Leadership, result: MembershipTrial): Promise<void> {
  const { harness, joiner } = bench;
  const node = harness.node(JOINER);
  rmSync(join(harness.dir, "data", JOINER), { recursive: true, force: true });
  await waitForPortsFree([node.meshPort, node.apiPort]);
  const offsets = new Map([...CLUSTER_NODE_IDS, JOINER].map((id) => [id, linesOf(bench, id).length]));
  const spawnAtMs = Date.now();
  result.spawnAtMs = spawnAtMs;
  joiner.start(node.configPath, `127.0.0.1:${harness.node(JOIN_VIA).meshPort}`);
  try {
    const { learnerMs, votingMs } = await waitForVoter(harness, leader.leaderId, spawnAtMs);
    result.spawnToLearnerMs = learnerMs;
    result.spawnToVotingMs = votingMs;
    result.entriesOnJoiner = await countEntries(harness, JOINER);
    if (result.entriesOnJoiner === bench.options.entries) result.spawnToAllEntriesMs = votingMs;
  } finally {
    result.phases = joinPhases(bench, offsets, spawnAtMs);
    result.spawnToStartedMs = result.phases.agentStarted;
  }
}

/**
 * kill -9 of the leader right after the change (whoever leads then: the join may have moved leadership);
 * the survivors, n4 among them, must agree on a new one.
 */
async function failoverTrial(bench: Bench, result: MembershipTrial): Promise<void> {
  const voters = [...CLUSTER_NODE_IDS, JOINER];
  const leader = await bench.harness.waitForAgreedLeader(voters, LEADER_TIMEOUT_MS);
  result.leaderAtKill = leader;
  const victim = leader.leaderId;
  const survivors = voters.filter((id) => id !== victim);
  const offsets = new Map(survivors.map((id) => [id, linesOf(bench, id).length]));
  result.victim = victim;
  const killAtMs = Date.now();
  await killNode(bench, victim);
  if (result.spawnToVotingMs !== null)
    result.killAfterVotingMs = killAtMs - (result.spawnAtMs + result.spawnToVotingMs);
  const elected = await bench.harness.waitForAgreedLeader(survivors, LEADER_TIMEOUT_MS);
  result.failoverPolledMs = Date.now() - killAtMs;
  result.newLeader = elected.leaderId;
  const leaderLine = () =>
    recordsSince(bench, offsets).find(
      ({ id, record }) =>
        id === elected.leaderId && record.msg === "became leader" && record.term === elected.term,
    );
  const lineDeadlineMs = Date.now() + LEADER_LINE_WAIT_MS;
  while (!leaderLine() && Date.now() < lineDeadlineMs) await sleep(20);
  const line = leaderLine();
  if (!line) throw new Error(`no "became leader" line from ${elected.leaderId}`);
  result.failoverMs = line.record.time - killAtMs;
  result.leadershipAfterKept = await leadershipKept(bench.harness, survivors, elected);
  result.newLeaderKept =
    result.leadershipAfterKept?.leaderId === elected.leaderId &&
    result.leadershipAfterKept.term === elected.term;
}

/** Watches the survivors for LEADER_KEPT_MS; returns the first leadership that differs, or the one kept. */
async function leadershipKept(
  harness: ClusterHarness,
  survivors: string[],
  elected: Leadership,
): Promise<Leadership | null> {
  const endMs = Date.now() + LEADER_KEPT_MS;
  while (Date.now() < endMs) {
    const statuses = await Promise.all(survivors.map((id) => harness.status(id)));
    const first = statuses[0];
    const agreed = statuses.every(
      (s) => s !== null && s.leaderId === first?.leaderId && s.term === first.term,
    );
    if (!agreed || !first?.leaderId) return null;
    if (first.leaderId !== elected.leaderId || first.term !== elected.term)
      return { leaderId: first.leaderId, term: first.term };
    await sleep(LEADER_KEPT_POLL_MS);
  }
  return elected;
}

/** Counts n4's listing until it holds every entry (already measured when it did so at voting). */
async function waitForAllEntries(bench: Bench, result: MembershipTrial): Promise<void> {
  if (result.spawnToAllEntriesMs !== null || result.spawnAtMs === 0) return;
  while (Date.now() - result.spawnAtMs < JOIN_TIMEOUT_MS) {
    if ((await countEntries(bench.harness, JOINER)) === bench.options.entries) {
      result.spawnToAllEntriesMs = Date.now() - result.spawnAtMs;
      return;
    }
    await sleep(ENTRIES_POLL_MS);
  }
}

/** `tandem member remove n4` (the compiled CLI, against a survivor), then n4 stopped and wiped. */
async function removeJoiner(bench: Bench, via: string, result: MembershipTrial): Promise<void> {
  const startMs = Date.now();
  const args = [CLI_ENTRY.build, "member", "remove", JOINER, "--config", bench.harness.node(via).configPath];
  for (;;) {
    result.removeAttempts++;
    try {
      await promisify(execFile)(process.execPath, args, { timeout: REMOVE_TIMEOUT_MS });
      break;
    } catch (error) {
      const stderr = String((error as { stderr?: unknown }).stderr ?? "").trim();
      // An answer lost in a leader change ("uncertain") may still have committed: a retry then finds it done.
      if (result.removeAttempts > 1 && /is not in the membership/.test(stderr)) break;
      if (Date.now() - startMs > REMOVE_TIMEOUT_MS)
        throw new Error(`tandem member remove ${JOINER}: ${stderr}`);
      await sleep(REMOVE_RETRY_MS);
    }
  }
  result.removeMs = Date.now() - startMs;
  await bench.joiner.stop("SIGTERM");
  rmSync(join(bench.harness.dir, "data", JOINER), { recursive: true, force: true });
}

/** Back to the 3-node cluster the next trial starts from. */
async function restore(bench: Bench, result: MembershipTrial): Promise<Leadership> {
  const startMs = Date.now();
  const via = result.newLeader ?? CLUSTER_NODE_IDS.find((id) => id !== result.victim) ?? JOIN_VIA;
  await removeJoiner(bench, via === JOINER ? JOIN_VIA : via, result);
  const { harness } = bench;
  if (result.victim !== null && result.victim !== JOINER && !harness.running().includes(result.victim))
    await harness.restart(result.victim);
  const steady = await waitForSteadyCluster(harness, STEADY_TIMEOUT_MS);
  result.restoreMs = Date.now() - startMs;
  return steady;
}

async function runTrial(bench: Bench, trial: number, leader: Leadership): Promise<MembershipTrial> {
  const result = emptyTrial(trial, leader);
  try {
    await joinTrial(bench, leader, result);
    if (result.entriesOnJoiner !== bench.options.entries)
      result.problems.push(
        `${JOINER} listed ${result.entriesOnJoiner} entries of ${bench.options.entries} when voting`,
      );
    await failoverTrial(bench, result);
    if (!result.newLeaderKept)
      result.problems.push(
        `the new leader did not keep leading for ${LEADER_KEPT_MS} ms (then: ${formatLeader(result.leadershipAfterKept)})`,
      );
  } catch (error) {
    result.problems.push((error as Error).message.split("\n")[0] ?? String(error));
  }
  await waitForAllEntries(bench, result);
  return result;
}

function formatMs(value: number | null): string {
  return value === null ? "-" : String(value);
}

function formatLeader(leadership: Leadership | null): string {
  return leadership === null ? "-" : `${leadership.leaderId} (term ${leadership.term})`;
}

function printTrial(t: MembershipTrial, trials: number): void {
  const p = t.phases;
  console.log(
    `trial ${t.trial}/${trials}  leader ${formatLeader(t.leaderBeforeJoin)} before the join, ` +
      `${formatLeader(t.leaderAtKill)} once ${JOINER} voted; spawn→started ${formatMs(t.spawnToStartedMs)} ms, learner ${formatMs(t.spawnToLearnerMs)} ms, ` +
      `voting ${formatMs(t.spawnToVotingMs)} ms, ${JOINER} holds ${t.entriesOnJoiner ?? "?"} entries then, all at ` +
      `${formatMs(t.spawnToAllEntriesMs)} ms; killed ${t.victim ?? "-"} ${formatMs(t.killAfterVotingMs)} ms later: ${t.newLeader ?? "no one"} leads after ` +
      `${formatMs(t.failoverMs)} ms (poll ${formatMs(t.failoverPolledMs)} ms), ${t.newLeaderKept ? "kept" : "NOT kept"}; remove ${formatMs(t.removeMs)} ms, restore ${formatMs(t.restoreMs)} ms` +
      `${t.problems.length > 0 ? `  [${t.problems.join("; ")}]` : ""}`,
  );
  if (p)
    console.log(
      `          phases after spawn (ms): mesh ${formatMs(p.meshListening)}, started ${formatMs(p.agentStarted)}, ` +
        `join requested ${formatMs(p.joinRequested)}, add proposed ${formatMs(p.addProposed)}, ` +
        `learner answer ${formatMs(p.learnerAnswered)}, rounds ${formatMs(p.firstRoundStarted)}-${formatMs(p.lastPullCompleted)} ` +
        `(${p.rounds} rounds, ${p.pulled} pulled), caught up ${formatMs(p.caughtUp)}, promote proposed ${formatMs(p.promoteProposed)}`,
    );
}

function present(values: Array<number | null>): number[] {
  return values.filter((v): v is number => v !== null);
}

function distributionRow(label: string, values: number[]): string[] {
  if (values.length === 0) return [label, "0", "-", "-", "-"];
  const d: Distribution = summarize(values);
  return [label, String(d.count), d.min.toFixed(0), d.p50.toFixed(0), d.max.toFixed(0)];
}

async function main(): Promise<void> {
  exitOnSignals();
  const options = parseOptions();
  const machine = describeMachine();
  console.log(`membership ${new Date().toISOString()}${options.quick ? "  (--quick: not for quoting)" : ""}`);
  console.log(`machine   ${formatMachine(machine)}`);
  buildCli();
  const harness = await ClusterHarness.create({ nodes: CLUSTER_NODE_IDS.length + 1, entry: "build" });
  const bench: Bench = { harness, joiner: new JoiningAgent(), options };
  const results: MembershipTrial[] = [];
  let populated: PopulateFigures | null = null;
  let abortReason: string | null = null;
  try {
    configure(harness);
    for (const id of CLUSTER_NODE_IDS) harness.start(id);
    populated = await populateAll(harness, options.entries);
    let leader = populated.leaderAfter;
    console.log(
      `populate  ${options.entries} entries × ${VALUE_BYTES} B written in ${(populated.writtenMs / 1000).toFixed(1)} s, ` +
        `on every node after ${(populated.replicatedMs / 1000).toFixed(1)} s; leader ${formatLeader(populated.leaderBefore)} ` +
        `before, ${formatLeader(leader)} after`,
    );
    console.log(
      `setup     3 agents + ${JOINER} (compiled build, default timings, mtls), ${JOINER} joins via ${JOIN_VIA}; ` +
        `${JOINER} logs at debug (its store rounds), the others at info; one kill -9 per trial\n`,
    );
    for (let trial = 1; trial <= options.trials; trial++) {
      const result = await runTrial(bench, trial, leader);
      results.push(result);
      leader = await restore(bench, result);
      printTrial(result, options.trials);
    }
  } catch (error) {
    abortReason = error instanceof Error ? (error.message.split("\n")[0] ?? error.name) : String(error);
    process.exitCode = 1;
  } finally {
    await bench.joiner.stop("SIGKILL");
    if (options.logsDir !== null) saveLogs(bench, options.logsDir);
    await harness.dispose();
  }
  report({ options, machine, results, populate: populated, abortReason });
}

function saveLogs(bench: Bench, dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const id of [...CLUSTER_NODE_IDS, JOINER])
    writeFileSync(join(dir, `${id}.log`), `${linesOf(bench, id).join("\n")}\n`);
  console.log(`logs      ${dir}`);
}

/** n1..n3 bootstrap from each other only; n4 lists no peers (it joins) and logs its store rounds. */
function configure(harness: ClusterHarness): void {
  for (const id of CLUSTER_NODE_IDS)
    harness.editConfig(id, (config) => {
      config.peers = (config.peers as Array<{ id: string }>).filter((p) => p.id !== JOINER);
    });
  harness.editConfig(JOINER, (config) => {
    config.peers = [];
    config.log = { level: "debug" };
  });
}

interface PopulateFigures {
  writtenMs: number;
  /** Until every node listed every entry. */
  replicatedMs: number;
  /** Leadership before the writes and once the cluster is steady after them (the writes may move it). */
  leaderBefore: Leadership;
  leaderAfter: Leadership;
}

async function populateAll(harness: ClusterHarness, entries: number): Promise<PopulateFigures> {
  const leaderBefore = await waitForSteadyCluster(harness, STEADY_TIMEOUT_MS);
  const startMs = Date.now();
  await populate(harness, entries);
  const writtenMs = Date.now() - startMs;
  await waitForPopulated(harness, entries);
  const replicatedMs = Date.now() - startMs;
  const leaderAfter = await waitForSteadyCluster(harness, STEADY_TIMEOUT_MS);
  return { writtenMs, replicatedMs, leaderBefore, leaderAfter };
}

interface RunReport {
  options: Options;
  machine: ReturnType<typeof describeMachine>;
  results: MembershipTrial[];
  populate: PopulateFigures | null;
  abortReason: string | null;
}

function printTrialTable(results: readonly MembershipTrial[]): void {
  printTable(
    [
      "trial",
      "spawn → started",
      "spawn → learner",
      "spawn → voting",
      `entries on ${JOINER} then`,
      "spawn → all entries",
      "leader before → at kill",
      "failover",
      "poll",
      "kept 3 s",
    ],
    results.map((t) => [
      String(t.trial),
      formatMs(t.spawnToStartedMs),
      formatMs(t.spawnToLearnerMs),
      formatMs(t.spawnToVotingMs),
      t.entriesOnJoiner === null ? "-" : String(t.entriesOnJoiner),
      formatMs(t.spawnToAllEntriesMs),
      `${formatLeader(t.leaderBeforeJoin)} → ${formatLeader(t.leaderAtKill)}`,
      formatMs(t.failoverMs),
      formatMs(t.failoverPolledMs),
      t.newLeaderKept ? "yes" : "no",
    ]),
  );
}

/** Spawn → n4 both votes and lists every entry: the issue's "votes" for a node that is caught up. */
function votingWithEveryEntryMs(t: MembershipTrial): number | null {
  return t.spawnToVotingMs === null || t.spawnToAllEntriesMs === null
    ? null
    : Math.max(t.spawnToVotingMs, t.spawnToAllEntriesMs);
}

function checkTargets(options: Options, results: readonly MembershipTrial[]): TargetCheck[] {
  // A figure missing from a trial is worse than any figure: then the statistic is not reported.
  const of = (pick: (t: MembershipTrial) => number | null) => {
    const values = present(results.map(pick));
    return values.length === options.trials ? summarize(values) : null;
  };
  const voting = of(votingWithEveryEntryMs);
  const failover = of((t) => t.failoverMs);
  const count = (pass: (t: MembershipTrial) => boolean) => results.filter(pass).length;
  return [
    checkTarget(
      `join → voting with every entry, max (${options.entries} entries)`,
      "ms",
      Comparison.AtMost,
      JOIN_VOTING_MS_MAX,
      voting?.max ?? null,
    ),
    checkTarget(
      "failover after the change p50 (lan)",
      "ms",
      Comparison.AtMost,
      FAILOVER_P50_MS_MAX,
      failover?.p50 ?? null,
    ),
    checkTarget(
      "failover after the change max (lan)",
      "ms",
      Comparison.AtMost,
      FAILOVER_MS_MAX,
      failover?.max ?? null,
    ),
    checkTarget(
      `trials: ${JOINER} held every entry when it voted`,
      "trials",
      Comparison.AtLeast,
      options.trials,
      count((t) => t.entriesOnJoiner === options.entries),
    ),
    checkTarget(
      `trials: the new leader still led ${LEADER_KEPT_MS / 1000} s later`,
      "trials",
      Comparison.AtLeast,
      options.trials,
      count((t) => t.newLeaderKept),
    ),
  ];
}

function report(run: RunReport): void {
  const { results, options } = run;
  const column = (pick: (t: MembershipTrial) => number | null) => present(results.map(pick));
  console.log("");
  printTrialTable(results);
  console.log("");
  printTable(
    ["ms", "n", "min", "p50", "max"],
    [
      distributionRow(
        "spawn → agent started",
        column((t) => t.spawnToStartedMs),
      ),
      distributionRow(
        "spawn → learner listed",
        column((t) => t.spawnToLearnerMs),
      ),
      distributionRow(
        "spawn → voting",
        column((t) => t.spawnToVotingMs),
      ),
      distributionRow(
        `spawn → ${JOINER} lists every entry`,
        column((t) => t.spawnToAllEntriesMs),
      ),
      distributionRow("spawn → voting with every entry", column(votingWithEveryEntryMs)),
      distributionRow(
        "kill -9 → new leader",
        column((t) => t.failoverMs),
      ),
    ],
  );
  console.log("");
  const targets = checkTargets(options, results);
  printTable(targetHeader, targets.map(targetRow));
  if (run.abortReason) console.log(`aborted   ${run.abortReason}`);
  const path = writeResult(options.resultsDir, {
    bench: "membership",
    date: new Date().toISOString(),
    quick: options.quick,
    machine: run.machine,
    targets,
    data: {
      entries: options.entries,
      valueBytes: VALUE_BYTES,
      cli: "build",
      security: "mtls",
      joinVia: JOIN_VIA,
      trialsPlanned: options.trials,
      killsPerTrial: 1,
      abortReason: run.abortReason,
      populate: run.populate,
      trials: results,
    },
  });
  console.log(`wrote     ${path}`);
  if (!targets.every((t) => t.pass)) process.exitCode = 1;
}

await main();
