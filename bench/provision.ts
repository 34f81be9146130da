// Provisioning (issue 21): three agents (the built CLI, default lan timings) whose config has one provision
// target: a throwaway primary (initdb, wal_level logical) and one throwaway replica (test/support/pg_cluster.ts,
// on free 127.0.0.1 ports), the target's `interval` left at its default (10 s, read back through the config
// loader and reported). Each part gets a fresh primary, replica and cluster. Both servers are sized for 50
// databases as an operator would size them (ALTER SYSTEM, then a restart): slots and WAL senders on the
// primary, logical replication workers, worker processes and replication origins (max_replication_slots)
// on the replica, and max_connections on both.
// 1. Arrival: before each trial a random pause, uniform in [0, interval), so each trial starts at a random
//    phase of the leader's passes (otherwise a trial would start just after the previous one's pass, and
//    always wait nearly a whole interval); then CREATE DATABASE, a table with a primary key and 1,000 rows on
//    the primary; the time from just before CREATE DATABASE to the first poll (every 50 ms, on the replica)
//    that counts the 1,000 rows. The leader's log gives when the pass created the database on the replica
//    and its subscription. Target: median <= interval + 2 s.
// 2. Many at once: N databases × M tables (a primary key, 100 rows each) created on the primary, 4 sessions
//    at once; from the end of the creation to every table holding its rows on the replica (polled every
//    50 ms), and to GET /api/v1/provision (all three nodes polled every 100 ms; the first that answers)
//    showing every database `streaming`. Target: all streaming within 60 s.
// 3. Steady lag: one replicated table (`written_at timestamptz DEFAULT clock_timestamp()`); 1,000 rows/s
//    written on the primary (one session, every 10 ms the rows owed since the start, in one INSERT) for
//    60 s; the replica polled every 50 ms for rows with a higher id than the last seen, each row's lag being
//    now() on the replica (the poll's statement start) − written_at (both servers on this machine's clock;
//    the poll adds 0-50 ms). Beside it, the engine's own lagBytes and lagSeconds from GET /api/v1/provision,
//    one sample per pass. Target: p99 <= 1 s.
// --quick: 3 trials, 5 databases × 3 tables, 10 s of writes: not for quoting. Writes
// bench/results/provision.json.
//
//   node bench/provision.ts [--quick] [--results-dir DIR]
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { loadConfig } from "../src/config/index.ts";
import type { ClusterHarness } from "../test/support/cluster_harness.ts";
import { PgCluster, pgClusterUnsupported } from "../test/support/pg_cluster.ts";
import {
  CLUSTER_NODE_IDS,
  createBenchCluster,
  exitOnSignals,
  type Leadership,
  parseLogRecords,
  waitForSteadyCluster,
} from "./support/bench_cluster.ts";
import { parseBenchOptions } from "./support/bench_options.ts";
import { buildCli } from "./support/cli_build.ts";
import { type Distribution, summarize } from "./support/distribution.ts";
import { describeMachine, formatMachine } from "./support/machine.ts";
import { writeResult } from "./support/result_file.ts";
import { printTable } from "./support/table.ts";
import { Comparison, checkTarget, type TargetCheck, targetHeader, targetRow } from "./support/target.ts";

const TARGET = "main";
const REPLICA = "r1";
const ARRIVAL_ROWS = 1_000;
const MANY_ROWS_PER_TABLE = 100;
const CREATE_SESSIONS = 4;
const POLL_MS = 50;
const API_POLL_MS = 100;
const WRITE_RATE = 1_000;
const WRITE_TICK_MS = 10;
/** Issue 21's targets. */
const ARRIVAL_SLACK_S = 2;
const ALL_STREAMING_S_MAX = 60;
const LAG_P99_MS_MAX = 1_000;
/** Bounds, not expectations. */
const STEADY_TIMEOUT_MS = 60_000;
const FIRST_PASS_TIMEOUT_MS = 60_000;
const MANY_TIMEOUT_MS = 240_000;
const CATCH_UP_TIMEOUT_MS = 60_000;
const API_TIMEOUT_MS = 3_000;

/** Sized for 50 databases × 1 replica, with room for the initial copies' temporary slots and workers. */
const PRIMARY_SETTINGS = { max_replication_slots: 128, max_wal_senders: 128, max_connections: 400 };
const REPLICA_SETTINGS = {
  max_replication_slots: 128,
  max_logical_replication_workers: 64,
  max_worker_processes: 96,
  max_connections: 400,
};

const options = parseBenchOptions();
const scale = options.quick
  ? { trials: 3, databases: 5, tables: 3, writeSeconds: 10 }
  : { trials: 10, databases: 50, tables: 10, writeSeconds: 60 };

// ---- The lab: a primary, a replica, three agents provisioning one to the other ----

interface Lab {
  name: string;
  primary: PgCluster;
  replica: PgCluster;
  harness: ClusterHarness;
  intervalMs: number;
  leadership: Leadership;
  serverVersion: string;
}

interface ReplicaDatabaseView {
  database: string;
  replica: string;
  state: string;
  lagBytes: number | null;
  lagSeconds: number | null;
  lastError: string | null;
}

interface TargetView {
  target: string;
  passed: boolean;
  leader?: string;
  term?: number;
  passStartedAt?: string;
  passEndedAt?: string;
  preconditions?: Array<{ server: string; problem: string; fix: string }>;
  databases?: ReplicaDatabaseView[];
  error?: string | null;
}

const labs = new Set<Lab>();
/** Per part: seconds from the first pass (leadership) to the second (the ticker's first tick). */
const secondPassGaps: Record<string, number> = {};
exitOnSignals();
// On a signal or a throw: the agents killed by pid (the harness's own exit hook does it too) and their
// folder removed; the PostgreSQL servers are stopped by pid and removed by pg_cluster.ts's exit hook.
process.once("exit", () => {
  for (const lab of labs) {
    for (const id of lab.harness.running()) {
      try {
        process.kill(lab.harness.pid(id), "SIGKILL");
      } catch {}
    }
    rmSync(lab.harness.dir, { recursive: true, force: true });
  }
});

/** A session as the superuser over the server's unix socket (always trusted). */
async function connect(cluster: PgCluster, database: string): Promise<pg.Client> {
  const client = new pg.Client({ host: cluster.dir, port: cluster.port, user: "postgres", database });
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => {});
    throw error;
  }
  return client;
}

async function sized(cluster: PgCluster, settings: Record<string, number>): Promise<void> {
  for (const [name, value] of Object.entries(settings))
    await cluster.query("postgres", `ALTER SYSTEM SET ${name} = ${value}`);
  await cluster.stop();
  await cluster.start();
}

async function provisionStatus(apiUrl: string): Promise<TargetView | null> {
  try {
    const response = await fetch(`${apiUrl}/api/v1/provision`, {
      signal: AbortSignal.timeout(API_TIMEOUT_MS),
    });
    if (!response.ok) return null;
    const body = (await response.json()) as { targets: TargetView[] };
    return body.targets.find((t) => t.target === TARGET) ?? null;
  } catch {
    return null;
  }
}

async function openLab(name: string): Promise<Lab> {
  const primary = await PgCluster.create({ name: `${name}-primary` });
  let replica: PgCluster | undefined;
  let harness: ClusterHarness | undefined;
  try {
    replica = await PgCluster.create({ name: `${name}-replica` });
    await sized(primary, PRIMARY_SETTINGS);
    await sized(replica, REPLICA_SETTINGS);
    const [{ version } = { version: "?" }] = await primary.query<{ version: string }>(
      "postgres",
      "SELECT current_setting('server_version') AS version",
    );
    harness = await createBenchCluster("build");
    const h = harness;
    const followerFile = join(h.dir, "follower.pass");
    writeFileSync(followerFile, "bench-Follower-1\n", { mode: 0o600 });
    const p = primary;
    const r = replica;
    for (const id of CLUSTER_NODE_IDS) {
      h.editConfig(id, (config) => {
        // No `interval`: the default, read back below.
        config.provision = {
          targets: {
            [TARGET]: {
              primary: { url: p.url("postgres") },
              replicas: [{ name: REPLICA, url: r.url("postgres") }],
              follower: { password_file: followerFile },
            },
          },
        };
      });
    }
    const loaded = loadConfig(h.node(CLUSTER_NODE_IDS[0]).configPath);
    if (!loaded.ok) throw loaded.error;
    const intervalMs = loaded.value.provision?.targets[0]?.intervalMs;
    if (intervalMs === undefined) throw new Error("no provision target in the config read back");
    const lab: Lab = {
      name,
      primary,
      replica,
      harness: h,
      intervalMs,
      leadership: { leaderId: "", term: 0 },
      serverVersion: version,
    };
    labs.add(lab);
    h.startAll();
    lab.leadership = await waitForSteadyCluster(h, STEADY_TIMEOUT_MS);
    const api = h.node(lab.leadership.leaderId).apiUrl;
    const first = await waitUntil("the first provisioning pass", FIRST_PASS_TIMEOUT_MS, 200, async () => {
      const view = await provisionStatus(api);
      return view?.passed ? view : undefined;
    });
    // The first pass runs when leadership arrives; the ticker's first tick comes one to two intervals after
    // the agent's start (src/shell/ticker.ts). From the second pass on they come every interval: start there.
    const second = await waitUntil("the second provisioning pass", 2 * intervalMs + 30_000, 200, async () => {
      const view = await provisionStatus(api);
      return view?.passed && view.passStartedAt !== first.passStartedAt ? view : undefined;
    });
    const gap = (Date.parse(second.passStartedAt ?? "") - Date.parse(first.passStartedAt ?? "")) / 1000;
    secondPassGaps[name] = gap;
    console.log(
      `${name.padEnd(9)} PostgreSQL ${version} on 127.0.0.1:${primary.port} (primary) and :${replica.port} ` +
        `(replica); leader ${lab.leadership.leaderId} (term ${lab.leadership.term}); interval ` +
        `${intervalMs / 1000} s; first pass ${first.error ? `error: ${first.error}` : "ok"}, the second ${fmt(gap, 1)} s later`,
    );
    for (const p of first.preconditions ?? [])
      console.log(`${name.padEnd(9)} precondition ${p.server}: ${p.problem}`);
    return lab;
  } catch (error) {
    if (harness !== undefined) console.log(harness.dumpLogs().split("\n").slice(-30).join("\n"));
    await harness?.dispose();
    await replica?.dispose();
    await primary.dispose();
    throw error;
  }
}

async function closeLab(lab: Lab): Promise<void> {
  await lab.harness.dispose();
  await lab.replica.dispose();
  await lab.primary.dispose();
  labs.delete(lab);
}

function explain(lab: Lab): string {
  return (
    `${lab.harness.dumpLogs().split("\n").slice(-30).join("\n")}\n--- primary\n${lab.primary.logTail(15)}\n` +
    `--- replica\n${lab.replica.logTail(15)}`
  );
}

/** Polls `check` every `everyMs` until it returns a value; throws after `timeoutMs`. */
async function waitUntil<T>(
  what: string,
  timeoutMs: number,
  everyMs: number,
  check: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (performance.now() > deadline)
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Runs `task(i)` for i < count with `inFlight` at a time. */
async function inPool(count: number, inFlight: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

/** When the leader's log (any node's) first says `msg` for `database`, epoch ms; null if never. */
function loggedAt(lab: Lab, msg: string, database: string): number | null {
  let first: number | null = null;
  for (const id of CLUSTER_NODE_IDS) {
    for (const record of parseLogRecords(lab.harness.logLines(id))) {
      if (record.msg === msg && record.database === database && (first === null || record.time < first))
        first = record.time;
    }
  }
  return first;
}

// ---- 1. From CREATE DATABASE on the primary to its rows on the replica ----

interface ArrivalTrial {
  database: string;
  /** The random pause before the trial. */
  pauseSeconds: number;
  /** CREATE DATABASE + table + rows on the primary. */
  createSeconds: number;
  /** From just before CREATE DATABASE: the pass created the database on the replica (leader's log). */
  replicaDatabaseSeconds: number | null;
  /** ... and the subscription (leader's log). */
  subscriptionSeconds: number | null;
  /** ... and the 1,000 rows counted on the replica; null: not within the bound. */
  readableSeconds: number | null;
}

/**
 * Sessions on the replica for polling: one on `postgres` to see which databases exist, and one per database
 * once it does (connecting to a database that is not there yet would fork a backend on every poll).
 */
class ReplicaProbe {
  private readonly cluster: PgCluster;
  private admin: pg.Client | null = null;
  private readonly sessions = new Map<string, pg.Client>();

  constructor(cluster: PgCluster) {
    this.cluster = cluster;
  }

  /** A session on `database`, or null while the replica does not have it. */
  async session(database: string): Promise<pg.Client | null> {
    const open = this.sessions.get(database);
    if (open !== undefined) return open;
    this.admin ??= await connect(this.cluster, "postgres");
    const { rows } = await this.admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]);
    if (rows.length === 0) return null;
    const session = await connect(this.cluster, database);
    this.sessions.set(database, session);
    return session;
  }

  /** `sql`'s first row on `database`, or null while the database or a table in `sql` is not there. */
  async first<R extends pg.QueryResultRow>(database: string, sql: string): Promise<R | null> {
    const session = await this.session(database);
    if (session === null) return null;
    try {
      return (await session.query<R>(sql)).rows[0] ?? null;
    } catch (error) {
      if ((error as { code?: string }).code === "42P01") return null; // undefined_table
      throw error;
    }
  }

  async closeSession(database: string): Promise<void> {
    const session = this.sessions.get(database);
    this.sessions.delete(database);
    await session?.end().catch(() => {});
  }

  async close(): Promise<void> {
    const all = [...this.sessions.values(), ...(this.admin === null ? [] : [this.admin])];
    this.sessions.clear();
    this.admin = null;
    await Promise.all(all.map((c) => c.end().catch(() => {})));
  }
}

async function replicaCount(probe: ReplicaProbe, database: string, table: string): Promise<number> {
  const row = await probe.first<{ n: number }>(database, `SELECT count(*)::int AS n FROM ${table}`);
  return row?.n ?? 0;
}

async function measureArrival(lab: Lab): Promise<ArrivalTrial[]> {
  const trials: ArrivalTrial[] = [];
  const boundMs = 3 * lab.intervalMs + 60_000;
  const probe = new ReplicaProbe(lab.replica);
  try {
    for (let i = 1; i <= scale.trials; i++) {
      const trial = await arrivalTrial(lab, probe, i, boundMs);
      trials.push(trial);
      if (trial.readableSeconds === null) break;
    }
  } finally {
    await probe.close();
  }
  return trials;
}

async function arrivalTrial(
  lab: Lab,
  probe: ReplicaProbe,
  i: number,
  boundMs: number,
): Promise<ArrivalTrial> {
  const database = `bench_arrive_${String(i).padStart(2, "0")}`;
  const pauseMs = Math.random() * lab.intervalMs;
  await sleep(pauseMs);
  const startWall = Date.now();
  const start = performance.now();
  await lab.primary.query("postgres", `CREATE DATABASE ${database}`);
  await lab.primary.query(database, "CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL)");
  await lab.primary.query(
    database,
    `INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, ${ARRIVAL_ROWS}) g`,
  );
  const createSeconds = (performance.now() - start) / 1000;
  let readableSeconds: number | null = null;
  for (let tick = 1; ; tick++) {
    if ((await replicaCount(probe, database, "items")) === ARRIVAL_ROWS) {
      readableSeconds = (performance.now() - start) / 1000;
      break;
    }
    if (performance.now() - start > boundMs) break;
    await sleep(Math.max(0, start + tick * POLL_MS - performance.now()));
  }
  const since = (at: number | null) => (at === null ? null : (at - startWall) / 1000);
  const trial: ArrivalTrial = {
    database,
    pauseSeconds: pauseMs / 1000,
    createSeconds,
    replicaDatabaseSeconds: since(loggedAt(lab, "database created on the replica", database)),
    subscriptionSeconds: since(loggedAt(lab, "subscription created on the replica", database)),
    readableSeconds,
  };
  console.log(
    `arrival   trial ${i}/${scale.trials}: paused ${fmt(trial.pauseSeconds, 1)} s; created on the primary in ` +
      `${fmt(createSeconds, 2)} s; on the replica: database ${fmt(trial.replicaDatabaseSeconds, 2)} s, ` +
      `subscription ${fmt(trial.subscriptionSeconds, 2)} s, ${ARRIVAL_ROWS} rows ${
        readableSeconds === null ? `not within ${boundMs / 1000} s` : `${fmt(readableSeconds, 2)} s`
      }`,
  );
  await probe.closeSession(database);
  return trial;
}

// ---- 2. Many databases found at once ----

interface PassSeen {
  /** Relative to the end of the creation, seconds. */
  startedSeconds: number;
  endedSeconds: number;
  leader: string;
  states: Record<string, number>;
  error: string | null;
}

interface ManyResult {
  databases: number;
  tablesPerDatabase: number;
  rowsPerTable: number;
  createSeconds: number;
  /** From the end of the creation to each database having every table's rows on the replica. */
  rowsSecondsPerDatabase: Array<number | null>;
  /** ... to the last of them; null: not within the bound. */
  allRowsSeconds: number | null;
  /** ... to the first GET /api/v1/provision showing every one of them streaming, and which node answered. */
  allStreamingSeconds: number | null;
  allStreamingNode: string | null;
  passes: PassSeen[];
}

async function measureMany(lab: Lab): Promise<ManyResult> {
  const names = Array.from(
    { length: scale.databases },
    (_, i) => `bench_many_${String(i + 1).padStart(2, "0")}`,
  );
  const tables = Array.from({ length: scale.tables }, (_, j) => `t${String(j + 1).padStart(2, "0")}`);
  const script = tables
    .map(
      (t) =>
        `CREATE TABLE ${t} (id int PRIMARY KEY, v text NOT NULL);\n` +
        `INSERT INTO ${t} SELECT g, md5(g::text) FROM generate_series(1, ${MANY_ROWS_PER_TABLE}) g;`,
    )
    .join("\n");
  const createStart = performance.now();
  await inPool(names.length, CREATE_SESSIONS, async (i) => {
    const name = names[i] as string;
    await lab.primary.query("postgres", `CREATE DATABASE ${name}`);
    const client = await connect(lab.primary, name);
    try {
      await client.query(script);
    } finally {
      await client.end().catch(() => {});
    }
  });
  const start = performance.now();
  const createSeconds = (start - createStart) / 1000;
  const startWall = Date.now();
  console.log(
    `many      ${names.length} databases × ${tables.length} tables × ${MANY_ROWS_PER_TABLE} rows created on the ` +
      `primary in ${fmt(createSeconds, 1)} s`,
  );
  const deadline = start + MANY_TIMEOUT_MS;

  // The replica's rows: one session per database once it exists, polled until every table holds its rows.
  const done = new Map<string, number>();
  const probe = new ReplicaProbe(lab.replica);
  const countSql = `SELECT ARRAY[${tables.map((t) => `(SELECT count(*) FROM ${t})::int`).join(", ")}] AS counts`;
  const pollRows = async () => {
    for (let tick = 1; done.size < names.length && performance.now() < deadline; tick++) {
      for (const name of names) {
        if (done.has(name)) continue;
        const row = await probe.first<{ counts: number[] }>(name, countSql);
        if (row?.counts.every((n) => n === MANY_ROWS_PER_TABLE)) {
          done.set(name, performance.now());
          await probe.closeSession(name);
        }
      }
      await sleep(Math.max(0, start + tick * POLL_MS - performance.now()));
    }
  };

  // The API on every node, until one shows every database streaming; and each pass seen.
  const passes = new Map<string, PassSeen>();
  let allStreaming: { at: number; node: string } | null = null;
  const pollApi = async () => {
    for (let tick = 1; allStreaming === null && performance.now() < deadline; tick++) {
      await Promise.all(
        CLUSTER_NODE_IDS.map(async (id) => {
          const view = await provisionStatus(lab.harness.node(id).apiUrl);
          const at = performance.now();
          if (view?.passed !== true || view.passStartedAt === undefined || view.passEndedAt === undefined)
            return;
          const ours = (view.databases ?? []).filter(
            (d) => d.replica === REPLICA && names.includes(d.database),
          );
          if (!passes.has(view.passStartedAt)) {
            const states: Record<string, number> = {};
            for (const d of ours) states[d.state] = (states[d.state] ?? 0) + 1;
            passes.set(view.passStartedAt, {
              startedSeconds: (Date.parse(view.passStartedAt) - startWall) / 1000,
              endedSeconds: (Date.parse(view.passEndedAt) - startWall) / 1000,
              leader: view.leader ?? "?",
              states,
              error: view.error ?? null,
            });
          }
          const streaming = new Set(ours.filter((d) => d.state === "streaming").map((d) => d.database));
          if (allStreaming === null && names.every((n) => streaming.has(n))) allStreaming = { at, node: id };
        }),
      );
      await sleep(Math.max(0, start + tick * API_POLL_MS - performance.now()));
    }
  };
  try {
    await Promise.all([pollRows(), pollApi()]);
  } finally {
    await probe.close();
  }
  const seconds = (at: number | undefined) => (at === undefined ? null : (at - start) / 1000);
  const rowsSecondsPerDatabase = names.map((n) => seconds(done.get(n)));
  const reached = allStreaming as { at: number; node: string } | null;
  const result: ManyResult = {
    databases: names.length,
    tablesPerDatabase: tables.length,
    rowsPerTable: MANY_ROWS_PER_TABLE,
    createSeconds,
    rowsSecondsPerDatabase,
    allRowsSeconds: done.size === names.length ? Math.max(...(rowsSecondsPerDatabase as number[])) : null,
    allStreamingSeconds: reached === null ? null : (reached.at - start) / 1000,
    allStreamingNode: reached?.node ?? null,
    passes: [...passes.values()].sort((a, b) => a.startedSeconds - b.startedSeconds),
  };
  console.log(
    `many      every table's rows on the replica after ${fmt(result.allRowsSeconds, 1)} s ` +
      `(${done.size}/${names.length} databases); all streaming in the API after ${fmt(result.allStreamingSeconds, 1)} s` +
      (result.allStreamingNode === null ? "" : ` (${result.allStreamingNode})`),
  );
  if (result.allRowsSeconds === null || result.allStreamingSeconds === null) {
    const last = result.passes.at(-1);
    console.log(`many      not within ${MANY_TIMEOUT_MS / 1000} s; last pass: ${JSON.stringify(last)}`);
  }
  return result;
}

// ---- 3. Steady replication lag under 1,000 rows/s ----

interface EngineSample {
  passStartedAt: string;
  state: string;
  lagBytes: number | null;
  lagSeconds: number | null;
}

interface LagResult {
  writeSeconds: number;
  rowsWritten: number;
  /** Rows written per second of writing, achieved. */
  rate: number;
  /** The largest single INSERT (rows owed after a slow one). */
  largestBatch: number;
  rowsSeen: number;
  lagMs: Distribution | null;
  polls: number;
  /** Per second of writing: rows seen, their p99 and max lag (ms). */
  perSecond: Array<{ second: number; rows: number; p99Ms: number; maxMs: number }>;
  engine: EngineSample[];
  engineLagBytes: Distribution | null;
  engineLagSeconds: Distribution | null;
}

async function measureLag(lab: Lab): Promise<LagResult> {
  const database = "bench_lag";
  await lab.primary.query("postgres", `CREATE DATABASE ${database}`);
  await lab.primary.query(
    database,
    `CREATE TABLE ticks (id bigserial PRIMARY KEY, written_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                         pad text NOT NULL)`,
  );
  await lab.primary.query(database, "INSERT INTO ticks (pad) VALUES ('first')");
  const api = lab.harness.node(lab.leadership.leaderId).apiUrl;
  await waitUntil(
    `${database} streaming, its first row on the replica`,
    3 * lab.intervalMs + 60_000,
    200,
    async () => {
      const view = await provisionStatus(api);
      const state = view?.databases?.find((d) => d.database === database && d.replica === REPLICA)?.state;
      if (state !== "streaming") return undefined;
      const probe = new ReplicaProbe(lab.replica);
      try {
        return (await replicaCount(probe, database, "ticks")) >= 1 ? true : undefined;
      } finally {
        await probe.close();
      }
    },
  );

  const writer = await connect(lab.primary, database);
  const reader = await connect(lab.replica, database);
  const lags: number[] = [];
  const seenAt: number[] = [];
  let lastId = Number(
    (await reader.query<{ id: number }>("SELECT coalesce(max(id), 0)::int AS id FROM ticks")).rows[0]?.id ??
      0,
  );
  let polls = 0;
  let reading = true;
  const engine = new Map<string, EngineSample>();
  const writeStartWall = Date.now();
  let writeEndWall = Number.POSITIVE_INFINITY;
  const start = performance.now();

  const read = async () => {
    for (let tick = 1; reading; tick++) {
      const { rows } = await reader.query<{ id: number; lag_ms: number }>(
        `SELECT id::int AS id, (EXTRACT(EPOCH FROM now() - written_at) * 1000)::float8 AS lag_ms
           FROM ticks WHERE id > $1 ORDER BY id`,
        [lastId],
      );
      polls += 1;
      const at = performance.now() - start;
      for (const row of rows) {
        lags.push(row.lag_ms);
        seenAt.push(at);
        lastId = row.id;
      }
      await sleep(Math.max(0, start + tick * POLL_MS - performance.now()));
    }
  };
  const sample = async () => {
    // Until the replica caught up: a pass begun during the writes may publish after their end.
    for (let tick = 1; reading; tick++) {
      const view = await provisionStatus(api);
      const d = view?.databases?.find((x) => x.database === database && x.replica === REPLICA);
      const passStartedAt = view?.passStartedAt;
      const began = Date.parse(passStartedAt ?? "");
      if (d !== undefined && passStartedAt !== undefined && began >= writeStartWall && began < writeEndWall)
        engine.set(passStartedAt, {
          passStartedAt,
          state: d.state,
          lagBytes: d.lagBytes,
          lagSeconds: d.lagSeconds,
        });
      await sleep(Math.max(0, start + tick * 1000 - performance.now()));
    }
  };
  // Kept, not thrown at once: a failed poll must not end the process before the writer is done.
  let readError: Error | null = null;
  const reading$ = read().catch((error: Error) => {
    readError = error;
  });
  const sampling$ = sample();

  let rowsWritten = 0;
  let largestBatch = 0;
  const perTick = (WRITE_RATE * WRITE_TICK_MS) / 1000;
  try {
    for (let tick = 1; ; tick++) {
      const elapsed = performance.now() - start;
      if (elapsed >= scale.writeSeconds * 1000) break;
      const owed = Math.min(
        Math.floor(elapsed / WRITE_TICK_MS + 1) * perTick,
        scale.writeSeconds * WRITE_RATE,
      );
      const batch = owed - rowsWritten;
      if (batch > 0) {
        await writer.query("INSERT INTO ticks (pad) SELECT md5(random()::text) FROM generate_series(1, $1)", [
          batch,
        ]);
        rowsWritten += batch;
        largestBatch = Math.max(largestBatch, batch);
      }
      await sleep(Math.max(0, start + tick * WRITE_TICK_MS - performance.now()));
    }
  } catch (error) {
    reading = false;
    throw error;
  } finally {
    writeEndWall = Date.now();
  }
  const writeSeconds = (performance.now() - start) / 1000;
  const [{ id: maxId } = { id: 0 }] = (
    await writer.query<{ id: number }>("SELECT coalesce(max(id), 0)::int AS id FROM ticks")
  ).rows;
  const caughtUp = await waitUntil(
    "the replica to hold every row written",
    CATCH_UP_TIMEOUT_MS,
    POLL_MS,
    async () => (readError !== null || lastId >= maxId ? true : undefined),
  ).catch((error: Error) => error);
  reading = false;
  await Promise.all([reading$, sampling$]);
  await writer.end().catch(() => {});
  await reader.end().catch(() => {});
  if (readError !== null) throw readError;
  if (caughtUp instanceof Error) console.log(`lag       ${caughtUp.message}: ${maxId - lastId} rows missing`);

  const perSecond: LagResult["perSecond"] = [];
  for (let second = 0; second < Math.ceil(writeSeconds); second++) {
    const inSecond = lags.filter((_, i) => Math.floor((seenAt[i] as number) / 1000) === second);
    if (inSecond.length === 0) continue;
    const d = summarize(inSecond);
    perSecond.push({ second, rows: d.count, p99Ms: d.p99, maxMs: d.max });
  }
  const samples = [...engine.values()];
  const numbers = (xs: Array<number | null>) => xs.filter((x): x is number => x !== null);
  const distribution = (xs: number[]) => (xs.length === 0 ? null : summarize(xs));
  const result: LagResult = {
    writeSeconds,
    rowsWritten,
    rate: rowsWritten / writeSeconds,
    largestBatch,
    rowsSeen: lags.length,
    lagMs: distribution(lags),
    polls,
    perSecond,
    engine: samples,
    engineLagBytes: distribution(numbers(samples.map((s) => s.lagBytes))),
    engineLagSeconds: distribution(numbers(samples.map((s) => s.lagSeconds))),
  };
  console.log(
    `lag       ${rowsWritten} rows written in ${fmt(writeSeconds, 1)} s (${fmt(result.rate)}/s, largest INSERT ` +
      `${largestBatch}); ${lags.length} seen on the replica in ${polls} polls: p50 ${fmt(result.lagMs?.p50, 1)} ms, ` +
      `p99 ${fmt(result.lagMs?.p99, 1)} ms, max ${fmt(result.lagMs?.max, 1)} ms`,
  );
  return result;
}

// ---- Report ----

function fmt(value: number | null | undefined, digits = 0): string {
  return value === null || value === undefined || !Number.isFinite(value) ? "-" : value.toFixed(digits);
}

async function part<T>(
  name: string,
  run: (lab: Lab) => Promise<T>,
): Promise<{ value: T | null; error: string | null }> {
  let lab: Lab | null = null;
  try {
    lab = await openLab(name);
    return { value: await run(lab), error: null };
  } catch (error) {
    const message = (error as Error).message.split("\n")[0] ?? String(error);
    console.log(`${name.padEnd(9)} failed: ${message}`);
    if (lab !== null) console.log(explain(lab));
    return { value: null, error: message };
  } finally {
    if (lab !== null) await closeLab(lab);
  }
}

async function main(): Promise<void> {
  if (pgClusterUnsupported !== undefined) {
    console.log(`provision needs ${pgClusterUnsupported}`);
    process.exit(1);
  }
  console.log(`provision ${new Date().toISOString()}${options.quick ? "  (--quick: not for quoting)" : ""}`);
  const machine = describeMachine();
  console.log(`machine   ${formatMachine(machine)}`);
  buildCli();
  let intervalMs: number | null = null;
  let serverVersion: string | null = null;
  const arrival = await part("arrival", async (lab) => {
    intervalMs = lab.intervalMs;
    serverVersion = lab.serverVersion;
    return measureArrival(lab);
  });
  const many = await part("many", measureMany);
  const lag = await part("lag", measureLag);
  const interval = intervalMs as number | null;

  const trials = arrival.value ?? [];
  const readable = trials.map((t) => t.readableSeconds).filter((x): x is number => x !== null);
  const arrivalSeconds =
    readable.length === trials.length && readable.length > 0 ? summarize(readable) : null;
  console.log("");
  console.log(
    `interval  ${interval === null ? "?" : interval / 1000} s (the default); PostgreSQL ${serverVersion ?? "?"}`,
  );
  console.log("");
  printTable(
    [
      "trial",
      "pause before s",
      "created on primary s",
      "db on replica s",
      "subscribed s",
      `${ARRIVAL_ROWS} rows readable s`,
    ],
    trials.map((t, i) => [
      String(i + 1),
      fmt(t.pauseSeconds, 1),
      fmt(t.createSeconds, 2),
      fmt(t.replicaDatabaseSeconds, 2),
      fmt(t.subscriptionSeconds, 2),
      fmt(t.readableSeconds, 2),
    ]),
  );
  if (arrivalSeconds !== null) {
    console.log("");
    printTable(
      ["CREATE DATABASE → rows readable on the replica", "min s", "p50 s", "max s", "interval s"],
      [
        [
          `${trials.length} trials (database, 1 table, ${ARRIVAL_ROWS} rows)`,
          fmt(arrivalSeconds.min, 2),
          fmt(arrivalSeconds.p50, 2),
          fmt(arrivalSeconds.max, 2),
          fmt((interval ?? Number.NaN) / 1000, 0),
        ],
      ],
    );
  }

  const m = many.value;
  if (m !== null) {
    const perDb = m.rowsSecondsPerDatabase.filter((x): x is number => x !== null);
    const d = perDb.length === 0 ? null : summarize(perDb);
    console.log("");
    printTable(
      [`${m.databases} databases × ${m.tablesPerDatabase} tables × ${m.rowsPerTable} rows at once`, "value"],
      [
        ["created on the primary (4 sessions)", `${fmt(m.createSeconds, 1)} s`],
        [
          "end of creation → a database's rows on the replica: first, p50, last",
          `${fmt(d?.min, 1)} s, ${fmt(d?.p50, 1)} s, ${fmt(m.allRowsSeconds, 1)} s`,
        ],
        [
          `end of creation → GET /api/v1/provision: all ${m.databases} streaming`,
          m.allStreamingSeconds === null
            ? "not reached"
            : `${fmt(m.allStreamingSeconds, 1)} s (${m.allStreamingNode})`,
        ],
      ],
    );
    console.log("");
    printTable(
      [
        "pass (s from the end of creation)",
        "ended s",
        "took s",
        "leader",
        "states of the new databases",
        "error",
      ],
      m.passes.map((p) => [
        fmt(p.startedSeconds, 1),
        fmt(p.endedSeconds, 1),
        fmt(p.endedSeconds - p.startedSeconds, 1),
        p.leader,
        Object.entries(p.states)
          .map(([s, n]) => `${n} ${s}`)
          .join(", ") || "none yet",
        p.error ?? "",
      ]),
    );
  }

  const l = lag.value;
  if (l !== null) {
    console.log("");
    printTable(
      [`${WRITE_RATE} rows/s for ${scale.writeSeconds} s`, "rows", "p50", "p99", "max"],
      [
        [
          `written on the primary (${fmt(l.rate)}/s achieved, largest INSERT ${l.largestBatch})`,
          String(l.rowsWritten),
          "",
          "",
          "",
        ],
        [
          `lag per row: now() on the replica − written_at (poll every ${POLL_MS} ms)`,
          String(l.rowsSeen),
          `${fmt(l.lagMs?.p50, 1)} ms`,
          `${fmt(l.lagMs?.p99, 1)} ms`,
          `${fmt(l.lagMs?.max, 1)} ms`,
        ],
        [
          "engine's lagBytes (GET /api/v1/provision, one per pass)",
          String(l.engine.length),
          fmt(l.engineLagBytes?.p50),
          fmt(l.engineLagBytes?.p99),
          fmt(l.engineLagBytes?.max),
        ],
        [
          "engine's lagSeconds (the same samples)",
          String(l.engine.length),
          `${fmt(l.engineLagSeconds?.p50, 2)} s`,
          `${fmt(l.engineLagSeconds?.p99, 2)} s`,
          `${fmt(l.engineLagSeconds?.max, 2)} s`,
        ],
      ],
    );
  }

  const targets: TargetCheck[] = [
    checkTarget(
      `CREATE DATABASE → ${ARRIVAL_ROWS} rows on the replica, median of ${scale.trials} (interval ${
        interval === null ? "?" : interval / 1000
      } s + ${ARRIVAL_SLACK_S} s)`,
      "s",
      Comparison.AtMost,
      interval === null ? Number.NaN : interval / 1000 + ARRIVAL_SLACK_S,
      arrivalSeconds?.p50 ?? null,
    ),
    checkTarget(
      `${scale.databases} databases × ${scale.tables} tables at once → all streaming (API)`,
      "s",
      Comparison.AtMost,
      ALL_STREAMING_S_MAX,
      m?.allStreamingSeconds ?? null,
    ),
    checkTarget(
      `${scale.databases} × ${scale.tables} at once → every table's rows on the replica`,
      "s",
      Comparison.AtMost,
      ALL_STREAMING_S_MAX,
      m?.allRowsSeconds ?? null,
    ),
    checkTarget(
      `replication lag p99 at ${WRITE_RATE} rows/s (${scale.writeSeconds} s)`,
      "ms",
      Comparison.AtMost,
      LAG_P99_MS_MAX,
      l !== null && l.rowsSeen === l.rowsWritten ? (l.lagMs?.p99 ?? null) : null,
    ),
  ];
  console.log("");
  printTable([...targetHeader], targets.map(targetRow));
  const path = writeResult(options.resultsDir, {
    bench: "provision",
    date: new Date().toISOString(),
    quick: options.quick,
    machine,
    targets,
    data: {
      intervalMs: interval,
      postgres: serverVersion,
      primarySettings: PRIMARY_SETTINGS,
      replicaSettings: REPLICA_SETTINGS,
      pollMs: POLL_MS,
      secondPassGaps,
      arrival: { trials, seconds: arrivalSeconds, error: arrival.error },
      many: { ...m, error: many.error },
      lag: { ...l, error: lag.error },
    },
  });
  console.log(`wrote     ${path}`);
  if (!targets.every((t) => t.pass)) process.exitCode = 1;
}

await main();
