// Blob stores and backups (issue 20). Three parts, all on 127.0.0.1 and one disk:
// 1. Encrypt and store a 1 GiB file of random bytes to the `local` store, against `cp` of the same file on
//    the same filesystem in the same run. The put runs in a fresh child (bench/support/blob_put_worker.ts,
//    bundled by esbuild as dist/tandem.js is) with the agent's V8 flags and malloc tunables, on the agent's
//    upload path (src/blob/offload.ts: read stream → ageEncryptStream, which hashes the plaintext and
//    encrypts on a worker thread → PassThrough → store.put, which hashes what it stores and fsyncs before
//    its rename); the child times the put alone and reports its VmHWM, and an
//    idle child (store opened, nothing put) gives the baseline of that figure. Each round: `cp SRC DST`,
//    the encrypted put, `cp SRC DST && sync DST` (durable, as the store is), the same put unencrypted; the
//    median of 3 rounds of each (GNU cp 9 on ext4 copies with copy_file_range, in the kernel). Nothing is
//    dropped from caches (that needs root): before every measurement the previous one's output is removed,
//    `sync` settles the disk and the source is read once, so each starts from a warm page cache and a clean
//    disk; cp's time is its wall clock, spawn to exit.
// 2. The same puts (encrypted and not, 3 rounds each, alternating) to S3 on a moto server of our own (fresh
//    bucket, path style, the store's default 8 MiB parts) and to SFTP on a private sshd: reported, no target.
// 3. A backup of one agent (the built CLI, a journal on the mesh queue and a local backup target) holding
//    100,000 store entries (100-byte values, 500 per POST /api/v1/store) and a journal.db of at least 1 GiB
//    (entries of 1,000,000 base64 characters of random bytes through POST /api/v1/journal): POST
//    /api/v1/backups, then GET /api/v1/backups/{id} every 100 ms until done; the duration is from the POST to
//    the first answer saying done. Meanwhile one writer PUTs /api/v1/store/lat/N one at a time every 20 ms
//    (a slow write delays the next one, no catch-up burst); its latencies over the 10 s before the backup and
//    during it, and every write that failed (not 200, or no answer within 10 s).
// --quick uses 128 MiB files, 10,000 entries and a 64 MiB journal: not for quoting. Writes
// bench/results/blob.json.
//
//   node bench/blob.ts [--quick] [--results-dir DIR]
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { build } from "esbuild";
import { agentEnv, agentNodeFlags } from "../src/cli/agent_flags.ts";
import type { BlobStoreConfig } from "../src/config/index.ts";
import { readAgeKeyFile } from "../src/journal/journal_key.ts";
import { CLI_ENTRY, ClusterHarness } from "../test/support/cluster_harness.ts";
import { SshdServer, sshdBinary, sshKeygenBinary } from "../test/support/sshd_server.ts";
import { motoServerPython, TestServer } from "../test/support/test_server.ts";
import { exitOnSignals } from "./support/bench_cluster.ts";
import { parseBenchOptions } from "./support/bench_options.ts";
import type { PutJob, PutReport } from "./support/blob_put_worker.ts";
import { buildCli } from "./support/cli_build.ts";
import { type Distribution, percentile, summarize } from "./support/distribution.ts";
import { describeMachine, formatMachine } from "./support/machine.ts";
import { memoryUsage } from "./support/process_usage.ts";
import { writeResult } from "./support/result_file.ts";
import { printTable } from "./support/table.ts";
import { Comparison, checkTarget, type TargetCheck, targetHeader, targetRow } from "./support/target.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const ROUNDS = 3;
/** Issue 20: the encrypted put to `local` reaches this share of a plain cp, with at most this peak RSS. */
const CP_SHARE_MIN = 0.7;
const PUT_RSS_MIB_MAX = 150;
const BACKUP_SECONDS_MAX = 60;
const STORE_VALUE_BYTES = 100;
const STORE_BATCH = 500;
/** 750,000 random bytes in base64: 1,000,000 characters, within the journal's 1 MiB of data per entry. */
const JOURNAL_RANDOM_BYTES = 750_000;
const JOURNAL_DATA_CHARS = 1_000_000;
const WRITE_INTERVAL_MS = 20;
const WRITE_TIMEOUT_MS = 10_000;
const BACKUP_POLL_MS = 100;
const REQUEST_TIMEOUT_MS = 120_000;
const S3_REGION = "us-east-1";
/** moto takes any credentials; the child reads them from these, as an agent would (`*_env`). */
const S3_KEY_ENV = "TANDEM_BENCH_S3_ACCESS_KEY_ID";
const S3_SECRET_ENV = "TANDEM_BENCH_S3_SECRET_ACCESS_KEY";
/** Under the repository, so the bundle's require() of ssh2-sftp-client finds node_modules. */
const WORKER_DIR = fileURLToPath(new URL("../node_modules/.cache/tandem-bench-blob", import.meta.url));

const options = parseBenchOptions();
const scale = options.quick
  ? { fileBytes: 128 * MiB, storeEntries: 10_000, journalBytes: 64 * MiB, beforeMs: 5_000 }
  : { fileBytes: GiB, storeEntries: 100_000, journalBytes: GiB, beforeMs: 10_000 };
/** Bounds, not expectations: a put of 1 GiB to the slowest store, a whole backup. */
const CHILD_TIMEOUT_MS = options.quick ? 3 * 60_000 : 10 * 60_000;
const BACKUP_TIMEOUT_MS = options.quick ? 3 * 60_000 : 10 * 60_000;

const work = mkdtempSync(join(tmpdir(), "tandem-bench-blob-"));

// Agents are killed by the harness's own exit hook; moto, sshd and put children are our direct children.
exitOnSignals();
process.once("exit", () => {
  for (const pid of ownChildren()) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
  rmSync(work, { recursive: true, force: true });
  rmSync(WORKER_DIR, { recursive: true, force: true });
});

/** The processes whose parent is this one (Linux's /proc): what a signal must not leave behind. */
function ownChildren(): number[] {
  const found: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === process.pid)
        found.push(Number(name));
    } catch {} // exited meanwhile
  }
  return found;
}

interface ChildRun {
  stdout: string;
  stderr: string;
  /** Spawn → exit, wall clock. */
  seconds: number;
}

/** Runs a command to its end, killed by pid after `timeoutMs`; a failure or non-zero exit throws. */
function runChild(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = CHILD_TIMEOUT_MS,
): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const startedAt = performance.now();
    let exitedAt = startedAt;
    let timedOut = false;
    const child: ChildProcess = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], env });
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (text: string) => {
      stdout += text;
    });
    child.stderr?.setEncoding("utf8").on("data", (text: string) => {
      stderr = (stderr + text).slice(-4000);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
    }, timeoutMs);
    child.once("exit", () => {
      exitedAt = performance.now();
    });
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      const name = [command, ...args].join(" ").slice(0, 160);
      if (timedOut) return reject(new Error(`${name}: still running after ${timeoutMs / 1000} s`));
      if (code !== 0) return reject(new Error(`${name}: exit ${code ?? signal}: ${stderr.trim()}`));
      resolve({ stdout, stderr, seconds: (exitedAt - startedAt) / 1000 });
    });
  });
}

/** 8 MiB at a time, fsync'd, so no dirty page of it is left to the first measurement. */
function writeRandomFile(path: string, bytes: number): void {
  const fd = openSync(path, "w");
  try {
    for (let written = 0; written < bytes; written += 8 * MiB)
      writeSync(fd, randomBytes(Math.min(8 * MiB, bytes - written)));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Before each measurement: the previous one's output removed, the disk settled (its dirty pages must not
 * be written back during this one), and the source read once (a warm page cache for every measurement).
 */
function prepareMeasurement(source: string, leftovers: readonly string[]): void {
  for (const path of leftovers) rmSync(path, { force: true });
  for (const [command, args] of [
    ["sync", []],
    ["cat", [source]],
  ] as const) {
    const run = spawnSync(command, args, { stdio: ["ignore", "ignore", "inherit"], timeout: 120_000 });
    if (run.status !== 0) throw new Error(`${command} failed: ${run.error?.message ?? run.status}`);
  }
}

/**
 * The worker as the agent's code runs: bundled by esbuild with scripts/build.ts's settings (minified ESM,
 * the same externals), not type-stripped by Node (whose stripper alone added ~24 MiB to the child's RSS).
 */
async function bundleWorker(): Promise<string> {
  rmSync(WORKER_DIR, { recursive: true, force: true });
  await build({
    absWorkingDir: fileURLToPath(new URL("..", import.meta.url)),
    entryPoints: { blob_put_worker: "bench/support/blob_put_worker.ts" },
    outdir: WORKER_DIR,
    splitting: true,
    bundle: true,
    minify: true,
    platform: "node",
    format: "esm",
    target: "node22",
    external: ["better-sqlite3", "bufferutil", "utf-8-validate", "@google-cloud/pubsub"],
    banner: { js: 'import{createRequire as __cr}from"node:module";const require=__cr(import.meta.url);' },
    legalComments: "none",
    logLevel: "warning",
  });
  return join(WORKER_DIR, "blob_put_worker.js");
}

const workerEnv = (): NodeJS.ProcessEnv => ({
  ...agentEnv(),
  [S3_KEY_ENV]: "tandem-bench",
  [S3_SECRET_ENV]: "tandem-bench-secret",
});

async function putInChild(worker: string, job: PutJob): Promise<PutReport> {
  const run = await runChild(
    process.execPath,
    [...agentNodeFlags(), worker, JSON.stringify(job)],
    workerEnv(),
  );
  const report = JSON.parse(run.stdout.trim().split("\n").at(-1) ?? "") as PutReport;
  if (!job.idle && report.bytes !== scale.fileBytes)
    throw new Error(`${job.store.name}: put ${report.bytes} of ${scale.fileBytes} bytes`);
  return report;
}

interface StoreRuns {
  store: string;
  /** Why the store was not measured (a server missing here), or null. */
  skipped: string | null;
  encrypted: PutReport[];
  unencrypted: PutReport[];
  idle: PutReport | null;
}

interface CopyRuns {
  /** `cp SRC DST`, wall seconds per round. */
  cp: number[];
  /** `cp SRC DST && sync DST`. */
  cpSync: number[];
}

/** ROUNDS rounds of: [cp,] encrypted put, [cp + sync,] unencrypted put; then the idle child. */
async function measureStore(
  worker: string,
  source: string,
  config: BlobStoreConfig,
  recipient: string,
  copies: CopyRuns | null,
): Promise<StoreRuns> {
  const runs: StoreRuns = { store: config.name, skipped: null, encrypted: [], unencrypted: [], idle: null };
  const copyTarget = join(work, "cp-out.bin");
  const job = (round: number, recipients: string[] | null): PutJob => ({
    store: config,
    file: source,
    key: `bench/${recipients === null ? "plain" : "sealed"}-${round}`,
    recipients,
    idle: false,
  });
  const copy = async (durable: boolean) => {
    prepareMeasurement(source, [copyTarget]);
    const [command, args]: [string, string[]] = durable
      ? ["sh", ["-c", 'cp -- "$1" "$2" && sync -- "$2"', "sh", source, copyTarget]]
      : ["cp", ["--", source, copyTarget]];
    return (await runChild(command, args)).seconds;
  };
  for (let round = 1; round <= ROUNDS; round++) {
    if (copies !== null) copies.cp.push(await copy(false));
    prepareMeasurement(source, [copyTarget]);
    runs.encrypted.push(await putInChild(worker, job(round, [recipient])));
    if (copies !== null) copies.cpSync.push(await copy(true));
    prepareMeasurement(source, [copyTarget]);
    runs.unencrypted.push(await putInChild(worker, job(round, null)));
    const last = (xs: readonly PutReport[]) => mibPerSecond(xs.at(-1)?.seconds ?? Number.NaN).toFixed(0);
    const cpPart =
      copies === null
        ? ""
        : `cp ${mibPerSecond(copies.cp.at(-1) ?? Number.NaN).toFixed(0)}, ` +
          `cp+sync ${mibPerSecond(copies.cpSync.at(-1) ?? Number.NaN).toFixed(0)}, `;
    console.log(
      `${config.name.padEnd(9)} round ${round}: ${cpPart}encrypted ${last(runs.encrypted)}, ` +
        `unencrypted ${last(runs.unencrypted)} MiB/s`,
    );
  }
  rmSync(copyTarget, { force: true });
  runs.idle = await putInChild(worker, { ...job(0, [recipient]), idle: true });
  return runs;
}

const mibPerSecond = (seconds: number): number => scale.fileBytes / MiB / seconds;
const median = (values: readonly number[]): number =>
  values.length === 0
    ? Number.NaN
    : percentile(
        [...values].sort((a, b) => a - b),
        50,
      );

async function measureS3(worker: string, source: string, recipient: string): Promise<StoreRuns> {
  if (motoServerPython() === undefined)
    return skippedStore("s3", "no moto server (pip install 'moto[server]')");
  const moto = await TestServer.moto();
  const endpoint = `http://127.0.0.1:${moto.port}`;
  const client = new S3Client({
    region: S3_REGION,
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: "tandem-bench", secretAccessKey: "tandem-bench-secret" },
  });
  try {
    const bucket = `tandem-bench-${Date.now().toString(36)}`;
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    return await measureStore(
      worker,
      source,
      {
        type: "s3",
        name: "s3",
        bucket,
        region: S3_REGION,
        endpoint,
        pathStyle: true,
        prefix: "",
        accessKeyId: { env: S3_KEY_ENV },
        secretAccessKey: { env: S3_SECRET_ENV },
        recipients: [],
      },
      recipient,
      null,
    );
  } finally {
    client.destroy();
    await moto.stop();
  }
}

async function measureSftp(worker: string, source: string, recipient: string): Promise<StoreRuns> {
  if (sshdBinary === undefined || sshKeygenBinary === undefined)
    return skippedStore("sftp", "no sshd (apt-get install openssh-server)");
  const server = await SshdServer.start();
  try {
    if (statSync(server.dir).dev !== statSync(source).dev)
      throw new Error("the sftp root is on another disk");
    return await measureStore(
      worker,
      source,
      {
        type: "sftp",
        name: "sftp",
        host: "127.0.0.1",
        port: server.port,
        username: server.username,
        privateKeyFile: server.clientKey.privateKeyFile,
        hostKey: server.hostKey,
        path: join(server.dir, "store"),
        recipients: [],
      },
      recipient,
      null,
    );
  } finally {
    await server.stop();
  }
}

function skippedStore(store: string, reason: string): StoreRuns {
  console.log(`${store.padEnd(9)} not measured: ${reason}`);
  return { store, skipped: reason, encrypted: [], unencrypted: [], idle: null };
}

// ---- Part 3: a backup under writes ----

interface WriteSample {
  /** performance.now() when the request was sent. */
  atMs: number;
  latencyMs: number;
  ok: boolean;
}

/** PUTs one 100-byte value at a time, one every WRITE_INTERVAL_MS (or right after a slower one). */
class PacedWriter {
  readonly samples: WriteSample[] = [];
  readonly failures: string[] = [];
  private stopped = false;
  private readonly loop: Promise<void>;
  private readonly apiUrl: string;

  constructor(apiUrl: string) {
    this.apiUrl = apiUrl;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  private async run(): Promise<void> {
    const value = randomBytes(STORE_VALUE_BYTES);
    let next = performance.now();
    for (let n = 0; !this.stopped; n++) {
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
      next = Math.max(next + WRITE_INTERVAL_MS, performance.now());
      const atMs = performance.now();
      let ok = false;
      try {
        const response = await fetch(`${this.apiUrl}/api/v1/store/lat/${n}`, {
          method: "PUT",
          headers: { "content-type": "application/octet-stream" },
          body: value,
          signal: AbortSignal.timeout(WRITE_TIMEOUT_MS),
        });
        const text = await response.text();
        ok = response.status === 200;
        if (!ok) this.failures.push(`lat/${n}: HTTP ${response.status} ${text.slice(0, 200)}`);
      } catch (error) {
        this.failures.push(`lat/${n}: ${(error as Error).message}`);
      }
      this.samples.push({ atMs, latencyMs: performance.now() - atMs, ok });
    }
  }
}

async function postJson(url: string, body: unknown, expected: number): Promise<unknown> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await response.text();
  if (response.status !== expected) throw new Error(`POST ${url}: HTTP ${response.status} ${text}`);
  return JSON.parse(text);
}

/** Runs `task(0..count-1)` with `inFlight` at a time. */
async function inPool(count: number, inFlight: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

interface BackupJobView {
  id: string;
  state: "running" | "done" | "failed";
  phase: "snapshot" | "upload";
  startedAt: string;
  finishedAt: string | null;
  key: string | null;
  size: number | null;
  error: string | null;
}

interface WindowFigures {
  writes: number;
  failed: number;
  latencyMs: Distribution | null;
}

interface BackupResult {
  storeEntries: number;
  journalEntries: number;
  storeFillSeconds: number;
  journalFillSeconds: number;
  /** Bytes before the backup: the main files and their WALs. */
  storeDbBytes: number;
  storeWalBytes: number;
  journalDbBytes: number;
  journalWalBytes: number;
  /** POST → the first poll saying done. */
  seconds: number | null;
  /** The job's own startedAt → finishedAt (the agent's clock). */
  jobSeconds: number | null;
  /** POST → the first poll in the upload phase (the snapshot: VACUUM INTO of each database). */
  snapshotSeconds: number | null;
  job: BackupJobView | null;
  objectBytesOnDisk: number | null;
  agentRssMiBBefore: number;
  agentRssMiBMaxDuring: number | null;
  before: WindowFigures;
  during: WindowFigures;
  failures: string[];
}

function windowFigures(samples: readonly WriteSample[]): WindowFigures {
  const ok = samples.filter((s) => s.ok).map((s) => s.latencyMs);
  return {
    writes: samples.length,
    failed: samples.length - ok.length,
    latencyMs: ok.length === 0 ? null : summarize(ok),
  };
}

async function measureBackup(): Promise<BackupResult> {
  const harness = await ClusterHarness.create({ nodes: 1, entry: "build" });
  const keyFile = join(harness.dir, "journal.key");
  execFileSync(process.execPath, [CLI_ENTRY.build, "journal", "keygen", "--out", keyFile], {
    timeout: 30_000,
  });
  const archive = join(harness.dir, "archive");
  harness.editConfig("n1", (config) => {
    config.journal = { key_file: keyFile, queue: { type: "mesh" } };
    config.blob = {
      stores: { archive: { type: "local", path: archive } },
      backups: { targets: { bench: { store: "archive" } } },
    };
  });
  const dataDir = join(harness.dir, "data", "n1");
  let writer: PacedWriter | null = null;
  try {
    harness.startAll();
    await harness.waitForAgreedLeader(["n1"], 60_000);
    const api = harness.node("n1").apiUrl;

    let startedAt = performance.now();
    await inPool(Math.ceil(scale.storeEntries / STORE_BATCH), 2, async (batch) => {
      const writes = Array.from(
        { length: Math.min(STORE_BATCH, scale.storeEntries - batch * STORE_BATCH) },
        (_, i) => ({
          path: `fill/${String(batch * STORE_BATCH + i).padStart(6, "0")}`,
          value: randomBytes(STORE_VALUE_BYTES).toString("base64"),
        }),
      );
      await postJson(`${api}/api/v1/store`, { writes }, 200);
    });
    const storeFillSeconds = (performance.now() - startedAt) / 1000;
    console.log(`backup    ${scale.storeEntries} store entries written in ${storeFillSeconds.toFixed(1)} s`);

    // Until journal.db itself holds the target (SQLite's pages add a little to the data).
    const journalDb = join(dataDir, "journal.db");
    const size = (path: string) => statSync(path, { throwIfNoEntry: false })?.size ?? 0;
    let journalEntries = 0;
    const record = async () => {
      const data = randomBytes(JOURNAL_RANDOM_BYTES).toString("base64");
      await postJson(`${api}/api/v1/journal`, { type: "bench.fill", data }, 201);
      journalEntries += 1;
    };
    startedAt = performance.now();
    await inPool(Math.ceil(scale.journalBytes / JOURNAL_DATA_CHARS), 4, record);
    while (size(journalDb) < scale.journalBytes) {
      if (journalEntries * JOURNAL_DATA_CHARS > 1.5 * scale.journalBytes)
        throw new Error(`journal.db is ${size(journalDb)} bytes after ${journalEntries} entries`);
      await inPool(16, 4, record);
    }
    const journalFillSeconds = (performance.now() - startedAt) / 1000;
    console.log(
      `backup    ${journalEntries} journal entries recorded in ${journalFillSeconds.toFixed(1)} s; ` +
        `journal.db ${(size(journalDb) / MiB).toFixed(0)} MiB`,
    );
    const sizes = {
      storeDbBytes: size(join(dataDir, "store.db")),
      storeWalBytes: size(join(dataDir, "store.db-wal")),
      journalDbBytes: size(journalDb),
      journalWalBytes: size(`${journalDb}-wal`),
    };

    writer = new PacedWriter(api);
    await sleep(scale.beforeMs);
    const pid = harness.pid("n1");
    const agentRssMiBBefore = memoryUsage(pid).rssKiB / 1024;
    const postedAt = performance.now();
    const started = (await postJson(`${api}/api/v1/backups`, { target: "bench" }, 202)) as BackupJobView;
    let job: BackupJobView = started;
    let doneAt: number | null = null;
    let uploadAt: number | null = null;
    let agentRssKiBMax = 0;
    while (doneAt === null) {
      if (performance.now() - postedAt > BACKUP_TIMEOUT_MS)
        throw new Error(`backup ${started.id} not done after ${BACKUP_TIMEOUT_MS / 1000} s`);
      await sleep(BACKUP_POLL_MS);
      agentRssKiBMax = Math.max(agentRssKiBMax, memoryUsage(pid).rssKiB);
      const response = await fetch(`${api}/api/v1/backups/${started.id}`, {
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      if (response.status !== 200) throw new Error(`backup ${started.id}: HTTP ${response.status}`);
      job = (await response.json()) as BackupJobView;
      if (job.phase === "upload" && uploadAt === null) uploadAt = performance.now();
      if (job.state !== "running") doneAt = performance.now();
    }
    await writer.stop();
    const samples = writer.samples;
    const failures = writer.failures;
    writer = null;
    if (job.state !== "done") throw new Error(`backup ${job.id} failed: ${job.error}`);
    const seconds = (doneAt - postedAt) / 1000;
    console.log(`backup    ${job.id} done in ${seconds.toFixed(1)} s: ${job.key}, ${job.size} bytes`);
    return {
      storeEntries: scale.storeEntries,
      journalEntries,
      storeFillSeconds,
      journalFillSeconds,
      ...sizes,
      seconds,
      jobSeconds:
        job.finishedAt === null ? null : (Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000,
      snapshotSeconds: uploadAt === null ? null : (uploadAt - postedAt) / 1000,
      job,
      objectBytesOnDisk: job.key === null ? null : statSync(join(archive, job.key)).size,
      agentRssMiBBefore,
      agentRssMiBMaxDuring: agentRssKiBMax / 1024,
      before: windowFigures(samples.filter((s) => s.atMs < postedAt)),
      during: windowFigures(samples.filter((s) => s.atMs >= postedAt && s.atMs <= (doneAt as number))),
      failures: failures.slice(0, 20),
    };
  } catch (error) {
    // What the agent said is what explains a failed run.
    console.log(harness.dumpLogs().split("\n").slice(-30).join("\n"));
    throw error;
  } finally {
    await writer?.stop();
    await harness.dispose();
  }
}

// ---- Report ----

const fmt = (value: number | null | undefined, digits = 0): string =>
  value === null || value === undefined || !Number.isFinite(value) ? "-" : value.toFixed(digits);
const sizeText = (bytes: number): string =>
  bytes >= GiB
    ? `${(bytes / GiB).toFixed(bytes % GiB === 0 ? 0 : 2)} GiB`
    : `${(bytes / MiB).toFixed(0)} MiB`;

function uploadRows(copies: CopyRuns, stores: readonly StoreRuns[]): string[][] {
  const cpMedian = mibPerSecond(median(copies.cp));
  const cpSyncMedian = mibPerSecond(median(copies.cpSync));
  const perRun = (seconds: readonly number[]) => seconds.map((s) => fmt(mibPerSecond(s))).join(", ");
  const rows: string[][] = [
    ["local", "cp", perRun(copies.cp), fmt(cpMedian), "1.00", fmt(cpMedian / cpSyncMedian, 2), "", ""],
    [
      "local",
      "cp && sync",
      perRun(copies.cpSync),
      fmt(cpSyncMedian),
      fmt(cpSyncMedian / cpMedian, 2),
      "1.00",
      "",
      "",
    ],
  ];
  for (const runs of stores) {
    const label = runs.store === "s3" ? "s3 (moto)" : runs.store;
    if (runs.skipped !== null) {
      rows.push([label, `not measured: ${runs.skipped}`, "", "", "", "", "", ""]);
      continue;
    }
    const plainMedian = mibPerSecond(median(runs.unencrypted.map((r) => r.seconds)));
    for (const [what, reports] of [
      ["put, age-encrypted", runs.encrypted],
      ["put, unencrypted", runs.unencrypted],
    ] as const) {
      const med = mibPerSecond(median(reports.map((r) => r.seconds)));
      rows.push([
        label,
        what,
        perRun(reports.map((r) => r.seconds)),
        fmt(med),
        runs.store === "local" ? fmt(med / cpMedian, 2) : "",
        runs.store === "local" ? fmt(med / cpSyncMedian, 2) : "",
        fmt(med / plainMedian, 2),
        fmt(Math.max(...reports.map((r) => r.peakRssMiB)), 1),
      ]);
    }
    rows.push([label, "idle child (store open, no put)", "", "", "", "", "", fmt(runs.idle?.peakRssMiB, 1)]);
  }
  return rows;
}

function backupRows(b: BackupResult): string[][] {
  return [
    ["store entries (100-byte values)", String(b.storeEntries)],
    ["journal entries (1,000,000 characters each)", String(b.journalEntries)],
    [
      "store.db (+ wal) before the backup",
      `${fmt(b.storeDbBytes / MiB, 1)} MiB (+ ${fmt(b.storeWalBytes / MiB, 1)} MiB)`,
    ],
    [
      "journal.db (+ wal) before the backup",
      `${fmt(b.journalDbBytes / MiB, 1)} MiB (+ ${fmt(b.journalWalBytes / MiB, 1)} MiB)`,
    ],
    ["filled in (store, journal)", `${fmt(b.storeFillSeconds, 1)} s, ${fmt(b.journalFillSeconds, 1)} s`],
    ["backup: POST → done (polled every 100 ms)", `${fmt(b.seconds, 1)} s`],
    ["  of it, until the upload phase (snapshots)", `${fmt(b.snapshotSeconds, 1)} s`],
    ["backup job's own startedAt → finishedAt", `${fmt(b.jobSeconds, 1)} s`],
    [
      "backup object (tar.gz.age)",
      `${fmt((b.job?.size ?? Number.NaN) / MiB, 1)} MiB; on disk ${fmt((b.objectBytesOnDisk ?? Number.NaN) / MiB, 1)} MiB`,
    ],
    [
      "agent RSS before the backup; during it, max (every 100 ms)",
      `${fmt(b.agentRssMiBBefore, 1)} MiB; ${fmt(b.agentRssMiBMaxDuring, 1)} MiB`,
    ],
  ];
}

function latencyRow(label: string, w: WindowFigures): string[] {
  return [
    label,
    String(w.writes),
    String(w.failed),
    fmt(w.latencyMs?.p50, 1),
    fmt(w.latencyMs?.p99, 1),
    fmt(w.latencyMs?.max, 1),
  ];
}

async function main(): Promise<void> {
  console.log(`blob      ${new Date().toISOString()}${options.quick ? "  (--quick: not for quoting)" : ""}`);
  const machine = describeMachine();
  console.log(`machine   ${formatMachine(machine)}`);
  buildCli();
  const worker = await bundleWorker();
  const keyFile = join(work, "cluster.key");
  execFileSync(process.execPath, [CLI_ENTRY.build, "journal", "keygen", "--out", keyFile], {
    timeout: 30_000,
  });
  const { recipient } = await readAgeKeyFile(keyFile);

  const source = join(work, "source.bin");
  writeRandomFile(source, scale.fileBytes);
  const storeRoot = join(work, "store");
  mkdirSync(storeRoot);
  if (statSync(source).dev !== statSync(storeRoot).dev)
    throw new Error("source and store on different disks");
  const disk = execFileSync("df", ["--output=source,fstype,target", work], { encoding: "utf8" })
    .trim()
    .split("\n")
    .at(-1)
    ?.trim()
    .replace(/\s+/g, " ");
  console.log(
    `setup     ${sizeText(scale.fileBytes)} of random bytes in ${work} (${disk}: source, local store, cp's ` +
      `target and the sftp root on one filesystem); puts in a child with ${agentNodeFlags().join(" ")}, ` +
      `GLIBC_TUNABLES=${workerEnv().GLIBC_TUNABLES ?? ""}`,
  );

  const copies: CopyRuns = { cp: [], cpSync: [] };
  const local = await measureStore(
    worker,
    source,
    { type: "local", name: "local", path: storeRoot, recipients: [] },
    recipient,
    copies,
  );
  const s3 = await measureS3(worker, source, recipient);
  const sftp = await measureSftp(worker, source, recipient);
  rmSync(source, { force: true });

  let backup: BackupResult | null = null;
  let backupError: string | null = null;
  try {
    backup = await measureBackup();
  } catch (error) {
    backupError = (error as Error).message.split("\n")[0] ?? String(error);
    console.log(`backup    failed: ${backupError}`);
  }

  console.log("");
  printTable(
    [
      "store",
      `upload of ${sizeText(scale.fileBytes)}`,
      "MiB/s per round",
      "median MiB/s",
      "÷ cp",
      "÷ cp && sync",
      "÷ unencrypted",
      "peak RSS MiB",
    ],
    uploadRows(copies, [local, s3, sftp]),
  );
  if (backup !== null) {
    console.log("");
    printTable(["backup of one node", "value"], backupRows(backup));
    console.log("");
    printTable(
      [
        `PUT /api/v1/store/lat/N, one every ${WRITE_INTERVAL_MS} ms`,
        "writes",
        "failed",
        "p50 ms",
        "p99 ms",
        "max ms",
      ],
      [
        latencyRow(`before the backup (${scale.beforeMs / 1000} s)`, backup.before),
        latencyRow("during the backup", backup.during),
      ],
    );
    for (const failure of backup.failures.slice(0, 5)) console.log(`failed    ${failure}`);
  }

  const cpMedian = median(copies.cp);
  const encryptedMedian = median(local.encrypted.map((r) => r.seconds));
  const fill = `${scale.storeEntries} entries, ${sizeText(scale.journalBytes)} journal`;
  const targets: TargetCheck[] = [
    checkTarget(
      `encrypted put to local ÷ plain cp, medians of ${ROUNDS} (${sizeText(scale.fileBytes)})`,
      "×",
      Comparison.AtLeast,
      CP_SHARE_MIN,
      cpMedian / encryptedMedian,
    ),
    checkTarget(
      `peak RSS of the encrypted put to local, max (${sizeText(scale.fileBytes)})`,
      "MiB",
      Comparison.AtMost,
      PUT_RSS_MIB_MAX,
      local.encrypted.length === 0 ? null : Math.max(...local.encrypted.map((r) => r.peakRssMiB)),
    ),
    checkTarget(
      `backup, POST → done (${fill})`,
      "s",
      Comparison.AtMost,
      BACKUP_SECONDS_MAX,
      backup?.seconds ?? null,
    ),
    checkTarget(
      "failed writes during the backup",
      "writes",
      Comparison.AtMost,
      0,
      backup?.during.failed ?? null,
    ),
  ];
  console.log("");
  printTable([...targetHeader], targets.map(targetRow));
  const path = writeResult(options.resultsDir, {
    bench: "blob",
    date: new Date().toISOString(),
    quick: options.quick,
    machine,
    targets,
    data: {
      fileBytes: scale.fileBytes,
      rounds: ROUNDS,
      filesystem: disk,
      cp: execFileSync("cp", ["--version"], { encoding: "utf8" }).split("\n")[0],
      workerNodeFlags: agentNodeFlags(),
      workerGlibcTunables: workerEnv().GLIBC_TUNABLES ?? null,
      copies,
      stores: [local, s3, sftp],
      backup,
      backupError,
      writeIntervalMs: WRITE_INTERVAL_MS,
    },
  });
  console.log(`wrote     ${path}`);
  if (!targets.every((t) => t.pass)) process.exitCode = 1;
}

await main();
