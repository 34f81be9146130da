// The journal, recorded on every node at once and applied on every other (issue 19): three agents (compiled
// build, default config but for the journal section), each node's handler a webhook to this process, which
// notes when each entry reached each node; `concurrency: 64` (a webhook answers within a millisecond, so the
// default 4, sized for commands, would leave most of the time waiting; and a batching webhook's POST holds at
// most `concurrency` entries, so 64 lets its batches of 64 fill). Per queue (mesh, then NATS JetStream
// on 127.0.0.1:4222 with a fresh stream):
// - throughput: `total` entries of 256-byte data (ordering keys k0..k63 per node), recorded through the HTTP
//   API with 64 requests in flight per node, all nodes at once; the rate is the entries over the time from
//   the first request to the last entry applied on both other nodes (cluster-wide, recorded → applied);
// - latency: 1,000 entries/s cluster-wide (333/s per node, paced every 10 ms) for `paceSeconds`; for each entry
//   and each other node, the time from before its record request to its webhook call there.
// Beside NATS, Redis, RabbitMQ and the Pub/Sub emulator (started here), the raw publish rate of this
// process's own client (JetStream publish, XADD, a confirmed persistent publish to a quorum queue, a
// publish), one
// message per entry of an entry's sealed size, 256 at a time awaited together, in the same run (the issue's
// baseline: a queue should reach half of it). Writes
// bench/results/journal.json.
//
// Three ways of using the journal, each measured the same way (`--ways=`, all three by default):
// - http: one entry per HTTP request (POST /api/v1/journal), each node's handler a webhook to this process;
// - batch: each request records an array of entries (64 per request, 4 requests in flight per node; paced:
//   the entries due every 10 ms in one request), and the webhook takes up to 64 entries a POST (`batch: 64`);
// - embedded: three apps embedding the agent (bench/support/journal_app.ts, startEmbeddedAgent), each entry
//   recorded in an app transaction of its own beside an app row, an in-process handler noting its arrival.
//
//   node bench/journal.ts [--quick] [--results-dir DIR] [--queues=mesh,nats,redis,amqp,pubsub]
//                         [--ways=http,batch,embedded] [--cpu-prof-dir=DIR]
// --cpu-prof-dir: the agents run with their V8 flags plus --cpu-prof into DIR (TANDEM_AGENT_NODE_FLAGS) and
// are stopped with SIGTERM at the end of each queue's run, so each writes its profile.
import { randomBytes } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { Agent, createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PubSub } from "@google-cloud/pubsub";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { connect as amqpConnect } from "amqplib";
import Database from "better-sqlite3";
import { createClient } from "redis";
import { AGENT_NODE_FLAGS, AGENT_NODE_FLAGS_ENV } from "../src/cli/agent_flags.ts";
import { JournalKey } from "../src/journal/index.ts";
import { ClusterHarness } from "../test/support/cluster_harness.ts";
import { accepting, pubsubEmulatorBinary, TestServer } from "../test/support/test_server.ts";
import {
  CLUSTER_NODE_IDS,
  createBenchCluster,
  exitOnSignals,
  waitForSteadyCluster,
} from "./support/bench_cluster.ts";
import { parseBenchOptions } from "./support/bench_options.ts";
import { buildCli } from "./support/cli_build.ts";
import { type Distribution, summarize } from "./support/distribution.ts";
import { describeMachine, formatMachine } from "./support/machine.ts";
import { writeResult } from "./support/result_file.ts";
import { printTable } from "./support/table.ts";
import { Comparison, checkTarget, type TargetCheck, targetHeader, targetRow } from "./support/target.ts";

const DATA_BYTES = 256;
const IN_FLIGHT_PER_NODE = 64;
/** The batch way: entries per request, and requests in flight per node. */
const BATCH_ENTRIES = 64;
const BATCH_IN_FLIGHT_PER_NODE = 4;
const KEYS_PER_NODE = 64;
const PACE_PER_SECOND = 1_000;
const THROUGHPUT_MIN = 5_000;
const P99_MS_MAX = 100;
const NATS_URL = "nats://127.0.0.1:4222";
const REDIS_URL = "redis://127.0.0.1:6379";
/** The agents' URL has no password (the config refuses one): they read it from AMQP_PASSWORD_ENV. */
const AMQP_URL = "amqp://guest@127.0.0.1:5672/";
const AMQP_PASSWORD_ENV = "TANDEM_BENCH_AMQP_PASSWORD";
/** The exchange the agents of cluster "tandem" use, and its queues with a ".<node>" suffix. */
const AMQP_PREFIX = "tandem.tandem.journal";
/** The emulator takes any project id. */
const PUBSUB_PROJECT = "tandem-bench";
/** Issue 19: a broker queue reaches at least this share of its own client's raw publish rate. */
const RAW_SHARE_MIN = 0.5;
const APPLY_TIMEOUT_MS = 120_000;

type Queue = "mesh" | "nats" | "redis" | "amqp" | "pubsub";
type Way = "http" | "batch" | "embedded";
const WAY_LABEL: Record<Way, string> = {
  http: "HTTP record per entry, webhook handler",
  batch: `HTTP records of up to ${BATCH_ENTRIES}, webhook handler taking up to ${BATCH_ENTRIES} a POST`,
  embedded: "embedded app, in-process record and handler",
};

interface QueueResult {
  queue: Queue;
  way: Way;
  /** The median of 200 fsync'd SQLite commits of one row in the agents' folder, just before the run. */
  commitMs: number;
  entries: number;
  recordSeconds: number;
  appliedSeconds: number;
  /** Entries per second, cluster-wide, first request → last applied everywhere. */
  throughput: number;
  latencyMs: Distribution;
  /** NATS only: the raw JetStream publish rate of this process's client. */
  rawPublishPerSecond: number | null;
}

const ownArgs = ["--queues=", "--ways=", "--cpu-prof-dir="];
const options = parseBenchOptions(
  process.argv.slice(2).filter((a) => !ownArgs.some((own) => a.startsWith(own))),
);
const queuesArg = process.argv.find((a) => a.startsWith("--queues="))?.slice("--queues=".length);
const waysArg = process.argv.find((a) => a.startsWith("--ways="))?.slice("--ways=".length);
const ways: Way[] = (waysArg?.split(",") as Way[] | undefined) ?? ["http", "batch", "embedded"];
const cpuProfDir = process.argv.find((a) => a.startsWith("--cpu-prof-dir="))?.slice("--cpu-prof-dir=".length);
if (cpuProfDir !== undefined) {
  process.env[AGENT_NODE_FLAGS_ENV] = [
    ...AGENT_NODE_FLAGS,
    "--cpu-prof",
    `--cpu-prof-dir=${cpuProfDir}`,
  ].join(" ");
}
const queues: Queue[] = (queuesArg?.split(",") as Queue[] | undefined) ?? [
  "mesh",
  "nats",
  "redis",
  "amqp",
  "pubsub",
];
const total = options.quick ? 3_000 : 30_000;
const paceSeconds = options.quick ? 5 : 30;
const httpAgent = new Agent({ keepAlive: true, maxSockets: IN_FLIGHT_PER_NODE });
const data = randomBytes(DATA_BYTES / 2).toString("hex");

/**
 * The webhook every node calls: notes when entry `id` reached node `node`, and counts the applies still
 * missing of the entries it expects (each on every node but its origin), without scanning them.
 */
class ApplyRecorder {
  readonly applied = new Map<string, Map<string, number>>();
  private readonly expected = new Map<string, string>();
  private remaining = 0;
  private waiters: Array<() => void> = [];
  private readonly server = createServer((req, res) => {
    const node = req.url?.split("/").at(-1) ?? "";
    let body = "";
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => {
      // One entry, or an array of them (a webhook with `batch`).
      const parsed = JSON.parse(body) as { id: string } | Array<{ id: string }>;
      for (const entry of Array.isArray(parsed) ? parsed : [parsed]) this.note(entry.id, node);
      res.writeHead(204).end();
    });
  });

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/applied`;
  }

  /** Entry `id`, recorded on `origin`, is to be applied on every other node (it may have been already). */
  expect(id: string, origin: string): void {
    this.expected.set(id, origin);
    const at = this.applied.get(id);
    const done = at === undefined ? 0 : [...at.keys()].filter((node) => node !== origin).length;
    this.remaining += CLUSTER_NODE_IDS.length - 1 - done;
  }

  /** Until every expected entry is applied on every node but its origin. */
  async allApplied(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.remaining > 0) {
      if (Date.now() > deadline) throw new Error(`${this.remaining} applies missing after ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }

  close(): void {
    this.server.close();
  }

  private note(id: string, node: string): void {
    let at = this.applied.get(id);
    if (at === undefined) {
      at = new Map();
      this.applied.set(id, at);
    }
    if (at.has(node)) return;
    at.set(node, Date.now());
    const origin = this.expected.get(id);
    if (origin === undefined || origin === node) return;
    this.remaining -= 1;
    if (this.remaining === 0) for (const wake of this.waiters.splice(0)) wake();
  }
}

/**
 * One POST over the keep-alive pool, sent again once when the server closed a pooled connection just as it
 * was reused (ECONNRESET; Node's keep-alive race): the request never reached the agent.
 */
async function post(url: string, body: unknown): Promise<{ status: number; text: string }> {
  try {
    return await postOnce(url, body);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ECONNRESET") throw error;
    return postOnce(url, body);
  }
}

function postOnce(url: string, body: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const text = JSON.stringify(body);
    const req = request(
      url,
      {
        method: "POST",
        agent: httpAgent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(text) },
      },
      (res) => {
        let answer = "";
        res.on("data", (chunk) => {
          answer += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: answer }));
      },
    );
    req.on("error", reject);
    req.end(text);
  });
}

function benchEntry(node: string, i: number): { type: string; key: string; data: string } {
  return { type: "bench.entry", key: `${node}-k${i % KEYS_PER_NODE}`, data };
}

async function recordOne(apiUrl: string, node: string, i: number): Promise<string> {
  const answer = await post(`${apiUrl}/api/v1/journal`, benchEntry(node, i));
  if (answer.status !== 201) throw new Error(`record on ${node}: HTTP ${answer.status} ${answer.text}`);
  return (JSON.parse(answer.text) as { id: string }).id;
}

/** Entries `from` .. `from + count - 1` of `node` in one request (an array): their ids, in order. */
async function recordBatch(apiUrl: string, node: string, from: number, count: number): Promise<string[]> {
  const body = Array.from({ length: count }, (_, i) => benchEntry(node, from + i));
  const answer = await post(`${apiUrl}/api/v1/journal`, body);
  if (answer.status !== 201) throw new Error(`record on ${node}: HTTP ${answer.status} ${answer.text}`);
  return (JSON.parse(answer.text) as Array<{ id: string }>).map((entry) => entry.id);
}

/** Streams a killed earlier run of this bench left behind (they hold the journal's subjects). */
async function removeLeftoverBenchStreams(): Promise<void> {
  const nc = await connect({ servers: NATS_URL });
  const jsm = await jetstreamManager(nc);
  for await (const name of jsm.streams.names()) {
    if (!name.startsWith("BENCH_")) continue;
    await jsm.streams.delete(name);
    console.log(`nats      removed the stream ${name} an earlier run left`);
  }
  await nc.close();
}

/** The exchange and queues of the agents (fixed names): removed before a run and after it. */
async function removeAmqpNames(): Promise<void> {
  const connection = await amqpConnect(AMQP_URL.replace("guest@", "guest:guest@"));
  const channel = await connection.createChannel();
  for (const id of CLUSTER_NODE_IDS) await channel.deleteQueue(`${AMQP_PREFIX}.${id}`);
  await channel.deleteExchange(AMQP_PREFIX);
  await connection.close();
}

/** amqplib publishing `messages` of one entry's sealed size on a confirm channel, 256 per confirm wait. */
async function rawAmqpPublishRate(messages: number): Promise<number> {
  const connection = await amqpConnect(AMQP_URL.replace("guest@", "guest:guest@"));
  const channel = await connection.createConfirmChannel();
  const queue = `bench.raw.${Date.now().toString(36)}`;
  await channel.assertQueue(queue, { durable: true, arguments: { "x-queue-type": "quorum" } });
  const payload = randomBytes(DATA_BYTES + 200);
  const start = performance.now();
  for (let sent = 0; sent < messages; sent += 256) {
    for (let i = 0; i < Math.min(256, messages - sent); i++)
      channel.sendToQueue(queue, payload, { persistent: true });
    await channel.waitForConfirms();
  }
  const seconds = (performance.now() - start) / 1000;
  await channel.deleteQueue(queue);
  await connection.close();
  return messages / seconds;
}

/** The Pub/Sub client publishing `messages` of one entry's sealed size, 256 at a time awaited together. */
async function rawPubsubPublishRate(messages: number): Promise<number> {
  const client = new PubSub({ projectId: PUBSUB_PROJECT });
  const name = `bench-raw-${Date.now().toString(36)}`;
  const [topic] = await client.createTopic(name);
  await topic.createSubscription(`${name}-sub`);
  const payload = randomBytes(DATA_BYTES + 200);
  const start = performance.now();
  for (let sent = 0; sent < messages; sent += 256) {
    const batch = Math.min(256, messages - sent);
    await Promise.all(Array.from({ length: batch }, () => topic.publishMessage({ data: payload })));
  }
  const seconds = (performance.now() - start) / 1000;
  await topic.delete();
  await client.close();
  return messages / seconds;
}

/** Redis's own client appending `messages` of one entry's sealed size, 256 at a time awaited together. */
async function rawRedisPublishRate(messages: number): Promise<number> {
  const client = createClient({ url: REDIS_URL });
  await client.connect();
  const key = `bench:raw:${Date.now().toString(36)}`;
  const payload = randomBytes(DATA_BYTES + 200).toString("base64");
  const start = performance.now();
  for (let sent = 0; sent < messages; sent += 256) {
    const batch = Math.min(256, messages - sent);
    await Promise.all(Array.from({ length: batch }, () => client.xAdd(key, "*", { o: "n1", m: payload })));
  }
  const seconds = (performance.now() - start) / 1000;
  await client.del(key);
  await client.close();
  return messages / seconds;
}

async function rawNatsPublishRate(messages: number): Promise<number> {
  const nc = await connect({ servers: NATS_URL });
  const stream = `BENCH_RAW_${Date.now().toString(36)}`;
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: stream, subjects: [`bench.${stream}.>`] });
  const js = jetstream(nc);
  const payload = randomBytes(DATA_BYTES + 200);
  const start = performance.now();
  for (let sent = 0; sent < messages; sent += 256) {
    const batch = Math.min(256, messages - sent);
    await Promise.all(
      Array.from({ length: batch }, (_, i) =>
        js.publish(`bench.${stream}.n1`, payload, { msgID: `${sent + i}` }),
      ),
    );
  }
  const seconds = (performance.now() - start) / 1000;
  await jsm.streams.delete(stream);
  await nc.close();
  return messages / seconds;
}

const journalApp = fileURLToPath(new URL("./support/journal_app.ts", import.meta.url));

async function runQueue(queue: Queue, way: Way): Promise<QueueResult> {
  const harness =
    way === "embedded"
      ? await ClusterHarness.create({ nodes: CLUSTER_NODE_IDS.length, script: journalApp })
      : await createBenchCluster("build");
  const recorder = new ApplyRecorder();
  const hookBase = await recorder.listen();
  const keyFile = join(harness.dir, "journal.key");
  writeFileSync(keyFile, (await JournalKey.generate()).fileText, { mode: 0o600 });
  const stream = `BENCH_${Date.now().toString(36)}`;
  const redisKey = `tandem:bench-${Date.now().toString(36)}:journal`;
  const pubsubTopic = `tandem-bench-${Date.now().toString(36)}-journal`;
  for (const id of CLUSTER_NODE_IDS) {
    harness.editConfig(id, (config) => {
      config.journal = {
        key_file: keyFile,
        ...(queue === "nats" ? { queue: { type: "nats", url: NATS_URL, stream } } : {}),
        ...(queue === "redis" ? { queue: { type: "redis", url: REDIS_URL, stream: redisKey } } : {}),
        ...(queue === "amqp"
          ? { queue: { type: "amqp", url: AMQP_URL, password_env: AMQP_PASSWORD_ENV } }
          : {}),
        ...(queue === "pubsub"
          ? { queue: { type: "pubsub", project: PUBSUB_PROJECT, topic: pubsubTopic } }
          : {}),
        // The embedded apps handle "bench.entry" in their process.
        ...(way === "embedded"
          ? {}
          : {
              handlers: {
                "bench.entry": {
                  webhook: `${hookBase}/${id}`,
                  ...(way === "batch" ? { batch: BATCH_ENTRIES } : {}),
                },
              },
            }),
        concurrency: BATCH_ENTRIES,
      };
    });
  }
  try {
    const commitMs = sqliteCommitMs(harness.dir);
    console.log(
      `${queue.padEnd(6)} ${way.padEnd(8)} an fsync'd SQLite commit takes ${commitMs.toFixed(2)} ms (median)`,
    );
    harness.startAll();
    await waitForSteadyCluster(harness, 60_000);
    const driver = way === "embedded" ? await embeddedDriver(harness) : httpDriver(way, harness, recorder);
    return { ...(await measure(queue, way, driver)), commitMs };
  } catch (error) {
    // What the agents said is what explains a failed run.
    console.log(harness.dumpLogs().split("\n").slice(-40).join("\n"));
    throw error;
  } finally {
    recorder.close();
    // A profile is written at a clean exit only.
    if (cpuProfDir !== undefined)
      await Promise.all(CLUSTER_NODE_IDS.map((id) => harness.kill(id, "SIGTERM")));
    await harness.dispose();
    if (queue === "amqp") await removeAmqpNames();
    if (queue === "redis") {
      const client = createClient({ url: REDIS_URL });
      await client.connect();
      await client.del(redisKey);
      await client.close();
    }
    if (queue === "nats") {
      const nc = await connect({ servers: NATS_URL }).catch(() => null);
      if (nc !== null) {
        await (await jetstreamManager(nc)).streams.delete(stream).catch(() => false);
        await nc.close();
      }
    }
  }
}

/** Entry id → its origin and when its record began (wall clock ms). */
type Recorded = Map<string, { origin: string; atMs: number }>;

/** How one way records and learns of applies; every time is the wall clock of this machine. */
interface Driver {
  /** Records `count` entries on every node at once, as fast as this way goes. */
  burst(count: number): Promise<Recorded>;
  /** Records `perSecond` entries a second on every node for `seconds`. */
  pace(perSecond: number, seconds: number): Promise<Recorded>;
  /** Until every entry recorded so far is applied on every node but its origin; then when each was. */
  applied(timeoutMs: number): Promise<Map<string, Map<string, number>>>;
}

function httpDriver(way: Way, harness: ClusterHarness, recorder: ApplyRecorder): Driver {
  const apis = new Map(CLUSTER_NODE_IDS.map((id) => [id, harness.node(id).apiUrl]));
  let counter = 0;
  const noted = (recorded: Recorded, node: string, id: string, atMs: number) => {
    recorded.set(id, { origin: node, atMs });
    recorder.expect(id, node);
  };
  return {
    burst: async (count) => {
      const recorded: Recorded = new Map();
      const base = counter;
      counter += count;
      await Promise.all(
        CLUSTER_NODE_IDS.map(async (node) => {
          const api = apis.get(node) as string;
          let next = 0;
          const workers = way === "batch" ? BATCH_IN_FLIGHT_PER_NODE : IN_FLIGHT_PER_NODE;
          await Promise.all(
            Array.from({ length: workers }, async () => {
              while (next < count) {
                const from = next;
                const size = way === "batch" ? Math.min(BATCH_ENTRIES, count - from) : 1;
                next += size;
                const atMs = Date.now();
                const ids =
                  way === "batch"
                    ? await recordBatch(api, node, base + from, size)
                    : [await recordOne(api, node, base + from)];
                for (const id of ids) noted(recorded, node, id, atMs);
              }
            }),
          );
        }),
      );
      return recorded;
    },
    pace: async (perSecond, seconds) => {
      const recorded: Recorded = new Map();
      const pending: Array<Promise<void>> = [];
      const failed: string[] = [];
      const start = Date.now();
      let owed = 0;
      let last = start;
      while (Date.now() - start < seconds * 1000) {
        const now = Date.now();
        owed += ((now - last) * perSecond) / 1000;
        last = now;
        const due = Math.floor(owed);
        owed -= due;
        for (const node of CLUSTER_NODE_IDS) {
          const api = apis.get(node) as string;
          const from = counter;
          counter += due;
          const record =
            way === "batch"
              ? due === 0
                ? []
                : [recordBatch(api, node, from, due)]
              : Array.from({ length: due }, (_, i) => recordOne(api, node, from + i).then((id) => [id]));
          for (const ids of record) {
            pending.push(
              ids.then(
                (got) => {
                  for (const id of got) noted(recorded, node, id, now);
                },
                (error: Error) => {
                  failed.push(error.message);
                },
              ),
            );
          }
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await Promise.all(pending);
      if (failed.length > 0) console.log(`${failed.length} records failed, e.g. ${failed[0]}`);
      return recorded;
    },
    applied: async (timeoutMs) => {
      await recorder.allApplied(timeoutMs);
      return recorder.applied;
    },
  };
}

/** The embedded apps: the port each printed, then their commands (bench/support/journal_app.ts). */
async function embeddedDriver(harness: ClusterHarness): Promise<Driver> {
  const urls = new Map<string, string>();
  const deadline = Date.now() + 30_000;
  for (const node of CLUSTER_NODE_IDS) {
    for (;;) {
      const line = harness
        .logLines(node)
        .filter((l) => l.includes('"app":"listening"'))
        .at(-1);
      if (line !== undefined) {
        urls.set(node, `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}`);
        break;
      }
      if (Date.now() > deadline) throw new Error(`the app of ${node} never listened`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  const app = (node: string) => urls.get(node) as string;
  interface Times {
    recorded: Array<[string, number]>;
    applied: Array<[string, number]>;
  }
  const times = async (node: string): Promise<Times> =>
    (await fetch(`${app(node)}/times`)).json() as Promise<Times>;
  /** Recorded entries of each node already handed out by burst or pace. */
  const seen = new Map<string, number>(CLUSTER_NODE_IDS.map((node) => [node, 0]));
  const command = async (path: string): Promise<Recorded> => {
    await Promise.all(
      CLUSTER_NODE_IDS.map(async (node) => {
        const answer = await fetch(`${app(node)}${path}&node=${node}`, { method: "POST" });
        if (!answer.ok) throw new Error(`${node}: ${path}: HTTP ${answer.status} ${await answer.text()}`);
      }),
    );
    const recorded: Recorded = new Map();
    for (const node of CLUSTER_NODE_IDS) {
      const all = (await times(node)).recorded;
      for (const [id, atMs] of all.slice(seen.get(node))) recorded.set(id, { origin: node, atMs });
      seen.set(node, all.length);
    }
    return recorded;
  };
  return {
    burst: (count) => command(`/burst?n=${count}`),
    pace: (perSecond, seconds) => command(`/pace?rate=${perSecond}&seconds=${seconds}`),
    applied: async (timeoutMs) => {
      const end = Date.now() + timeoutMs;
      const total = [...seen.values()].reduce((sum, n) => sum + n, 0);
      for (;;) {
        const progress = await Promise.all(
          CLUSTER_NODE_IDS.map(
            async (node) =>
              (await (await fetch(`${app(node)}/progress`)).json()) as { recorded: number; applied: number },
          ),
        );
        const missing = CLUSTER_NODE_IDS.reduce(
          (sum, node, i) => sum + (total - (seen.get(node) ?? 0)) - (progress[i]?.applied ?? 0),
          0,
        );
        if (missing <= 0) break;
        if (Date.now() > end) throw new Error(`${missing} applies missing after ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const applied = new Map<string, Map<string, number>>();
      for (const node of CLUSTER_NODE_IDS) {
        for (const [id, atMs] of (await times(node)).applied) {
          let at = applied.get(id);
          if (at === undefined) {
            at = new Map();
            applied.set(id, at);
          }
          at.set(node, atMs);
        }
      }
      return applied;
    },
  };
}

/**
 * What the disk gives the journal: the median time of an fsync'd commit (WAL, synchronous = FULL) of one
 * row, in `dir`. Other work on the machine's disk shows here first (0.2 ms quiet, several ms busy).
 */
function sqliteCommitMs(dir: string): number {
  const path = join(dir, "commit-probe.db");
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.exec("CREATE TABLE t (n INTEGER PRIMARY KEY, v TEXT NOT NULL)");
  const insert = db.prepare("INSERT INTO t (v) VALUES (?)");
  const commit = db.transaction(() => insert.run(data));
  const times: number[] = [];
  for (let i = 0; i < 200; i++) {
    const start = performance.now();
    commit();
    times.push(performance.now() - start);
  }
  db.close();
  for (const suffix of ["", "-wal", "-shm"]) rmSync(`${path}${suffix}`, { force: true });
  return summarize(times).p50;
}

async function measure(queue: Queue, way: Way, driver: Driver): Promise<Omit<QueueResult, "commitMs">> {
  const label = `${queue.padEnd(6)} ${way.padEnd(8)}`;
  // Throughput: every node records its share at once.
  const startMs = Date.now();
  const sent = await driver.burst(Math.floor(total / CLUSTER_NODE_IDS.length));
  const recordSeconds = (Date.now() - startMs) / 1000;
  let applied = await driver.applied(APPLY_TIMEOUT_MS);
  let lastMs = 0;
  for (const [id, { origin }] of sent)
    for (const [node, at] of applied.get(id) ?? []) if (node !== origin) lastMs = Math.max(lastMs, at);
  const appliedSeconds = (lastMs - startMs) / 1000;
  console.log(
    `${label} throughput: ${sent.size} entries recorded in ${recordSeconds.toFixed(1)} s, applied everywhere after ${appliedSeconds.toFixed(1)} s`,
  );

  // Latency at a steady 1,000 entries/s cluster-wide.
  const paced = await driver.pace(PACE_PER_SECOND / CLUSTER_NODE_IDS.length, paceSeconds);
  applied = await driver.applied(APPLY_TIMEOUT_MS);
  const latencies: number[] = [];
  for (const [id, { origin, atMs }] of paced) {
    for (const [node, at] of applied.get(id) ?? []) if (node !== origin) latencies.push(at - atMs);
  }
  const latencyMs = summarize(latencies);
  console.log(
    `${label} latency at ${PACE_PER_SECOND}/s: ${paced.size} entries, p50 ${latencyMs.p50} ms, p99 ${latencyMs.p99} ms, max ${latencyMs.max} ms`,
  );
  return {
    queue,
    way,
    entries: sent.size,
    recordSeconds,
    appliedSeconds,
    throughput: sent.size / appliedSeconds,
    latencyMs,
    rawPublishPerSecond: null,
  };
}

/** This process's own client publishing to `queue`'s broker (the issue's baseline), or null for the mesh. */
function rawPublishRate(queue: Queue): Promise<number> | null {
  if (queue === "nats") return rawNatsPublishRate(total);
  if (queue === "redis") return rawRedisPublishRate(total);
  if (queue === "amqp") return rawAmqpPublishRate(total);
  if (queue === "pubsub") return rawPubsubPublishRate(total);
  return null;
}

async function main(): Promise<void> {
  exitOnSignals();
  buildCli();
  console.log(`journal   ${new Date().toISOString()}${options.quick ? "  (--quick: not for quoting)" : ""}`);
  const machine = describeMachine();
  console.log(`machine   ${formatMachine(machine)}`);
  const results: QueueResult[] = [];
  let emulator: TestServer | null = null;
  for (const queue of queues) {
    if (queue === "pubsub") {
      if (pubsubEmulatorBinary === undefined) {
        console.log("pubsub    no Pub/Sub emulator (the Cloud SDK's): not measured");
        continue;
      }
      // The agents inherit these: the client talks to the emulator, and asks no metadata server.
      emulator = await TestServer.pubsub();
      process.env.PUBSUB_EMULATOR_HOST = `127.0.0.1:${emulator.port}`;
      process.env.METADATA_SERVER_DETECTION = "none";
    }
    if (queue === "amqp" && !(await accepting(5672))) {
      console.log("amqp      no RabbitMQ on 127.0.0.1:5672: not measured");
      continue;
    }
    if (queue === "amqp") {
      process.env[AMQP_PASSWORD_ENV] = "guest";
      await removeAmqpNames();
    }
    if (queue === "redis" && !(await accepting(6379))) {
      console.log("redis     no Redis on 127.0.0.1:6379: not measured");
      continue;
    }
    if (queue === "nats" && !(await accepting(4222))) {
      console.log("nats      no NATS on 127.0.0.1:4222 (nats-server -a 127.0.0.1 -p 4222 -js): not measured");
      continue;
    }
    if (queue === "nats") await removeLeftoverBenchStreams();
    try {
      const ofQueue: QueueResult[] = [];
      for (const way of ways) ofQueue.push(await runQueue(queue, way));
      const raw = await rawPublishRate(queue);
      for (const result of ofQueue) results.push({ ...result, rawPublishPerSecond: raw ?? null });
    } finally {
      await emulator?.stop();
      emulator = null;
    }
  }
  console.log("");
  printTable(
    [
      "queue",
      "way",
      "commit ms",
      "entries",
      "recorded in",
      "applied everywhere in",
      "entries/s",
      "p50 ms",
      "p99 ms",
      "max ms",
      "raw publish/s",
    ],
    results.map((r) => [
      r.queue,
      r.way,
      r.commitMs.toFixed(2),
      String(r.entries),
      `${r.recordSeconds.toFixed(1)} s`,
      `${r.appliedSeconds.toFixed(1)} s`,
      r.throughput.toFixed(0),
      r.latencyMs.p50.toFixed(0),
      r.latencyMs.p99.toFixed(0),
      r.latencyMs.max.toFixed(0),
      r.rawPublishPerSecond === null
        ? "-"
        : `${r.rawPublishPerSecond.toFixed(0)} (${(r.throughput / r.rawPublishPerSecond).toFixed(2)}×)`,
    ]),
  );
  // Issue 19: the mesh and NATS have absolute targets; the other brokers reach a share of their own raw rate.
  const targets: TargetCheck[] = results.flatMap((r) =>
    r.queue === "mesh" || r.queue === "nats"
      ? [
          checkTarget(
            `recorded → applied on every other node, cluster-wide (${r.queue}, ${r.way})`,
            "entries/s",
            Comparison.AtLeast,
            THROUGHPUT_MIN,
            r.throughput,
          ),
          checkTarget(
            `record → applied p99 at ${PACE_PER_SECOND}/s (${r.queue}, ${r.way})`,
            "ms",
            Comparison.AtMost,
            P99_MS_MAX,
            r.latencyMs.p99,
          ),
        ]
      : [
          checkTarget(
            `recorded → applied, cluster-wide / the client's raw publish rate (${r.queue}, ${r.way})`,
            "×",
            Comparison.AtLeast,
            RAW_SHARE_MIN,
            r.rawPublishPerSecond === null ? null : r.throughput / r.rawPublishPerSecond,
          ),
        ],
  );
  console.log("");
  for (const way of ways) console.log(`${way.padEnd(8)}  ${WAY_LABEL[way]}`);
  console.log("");
  printTable([...targetHeader], targets.map(targetRow));
  const path = writeResult(options.resultsDir, {
    bench: "journal",
    date: new Date().toISOString(),
    quick: options.quick,
    machine,
    targets,
    data: {
      dataBytes: DATA_BYTES,
      inFlightPerNode: IN_FLIGHT_PER_NODE,
      batch: { entries: BATCH_ENTRIES, inFlightPerNode: BATCH_IN_FLIGHT_PER_NODE },
      ways: WAY_LABEL,
      paceSeconds,
      results,
    },
  });
  console.log(`wrote     ${path}`);
  if (!targets.every((t) => t.pass)) process.exitCode = 1;
}

await main();
