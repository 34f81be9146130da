// Mesh round trip and throughput between two processes on 127.0.0.1 (PSK mode), side by side with a plain
// ws echo (no TLS, no mesh framing) as the baseline. The parent spawns this same file with --responder,
// which runs the answering mesh and the echo server; the parent measures, prints a table, writes
// bench/results/mesh_rtt.json and kills the child by pid.
//
//   node bench/mesh_rtt.ts [--samples 5000] [--seconds 5]
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, platform, release } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { WebSocket, WebSocketServer } from "ws";
import { Mesh } from "../src/mesh/index.ts";

const HOST = "127.0.0.1";
const CHANNEL = "bench.echo";
const PAYLOAD_BYTES = 64;
const WARMUP_REQUESTS = 1000;
const INFLIGHT = 64;
/** The child must announce itself within this, or the bench gives up. */
const CHILD_READY_TIMEOUT_MS = 10_000;

interface ResponderReady {
  echoPort: number;
}

interface LatencyResult {
  samples: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  meanMs: number;
}

interface ThroughputResult {
  inflight: number;
  seconds: number;
  requests: number;
  requestsPerSecond: number;
}

/** One way to do a request/response round trip; `request` resolves with the answer. */
interface Transport {
  name: string;
  request(payload: Uint8Array): Promise<Uint8Array>;
}

const { values: args } = parseArgs({
  options: {
    responder: { type: "boolean", default: false },
    "self-port": { type: "string" },
    "peer-port": { type: "string" },
    psk: { type: "string" },
    samples: { type: "string", default: "5000" },
    seconds: { type: "string", default: "5" },
  },
});

function meshLogger() {
  return pino({ level: "warn" }, pino.destination(2));
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** Child: answering mesh "b" plus a plain ws echo server; prints its echo port, runs until killed. */
async function runResponder(): Promise<void> {
  const key = Buffer.from(String(args.psk), "hex");
  const mesh = await Mesh.start({
    selfId: "b",
    clusterName: "bench",
    listenHost: HOST,
    listenPort: Number(args["self-port"]),
    peers: [{ id: "a", address: `${HOST}:${args["peer-port"]}` }],
    security: { mode: "psk", key },
    logger: meshLogger(),
  });
  mesh.onRequest(CHANNEL, (_from, payload) => payload);
  const echo = new WebSocketServer({ host: HOST, port: 0, perMessageDeflate: false });
  echo.on("connection", (ws) => ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary })));
  await new Promise<void>((resolve) => echo.once("listening", () => resolve()));
  const address = echo.address();
  if (address === null || typeof address === "string") throw new Error("echo server has no port");
  const ready: ResponderReady = { echoPort: address.port };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
  // Parent gone (pipe closed) means nobody will kill us: exit on our own.
  process.stdin.on("end", () => process.exit(0));
  process.stdin.resume();
}

function startResponder(
  selfPort: number,
  peerPort: number,
  psk: string,
): { child: ChildProcess; ready: Promise<ResponderReady> } {
  const file = fileURLToPath(import.meta.url);
  const child = spawn(
    process.execPath,
    [file, "--responder", "--self-port", String(peerPort), "--peer-port", String(selfPort), "--psk", psk],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const ready = new Promise<ResponderReady>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error("responder did not start in time")),
      CHILD_READY_TIMEOUT_MS,
    );
    child.once("exit", (code) => reject(new Error(`responder exited early with code ${code}`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once("line", (line) => {
      clearTimeout(timer);
      resolve(JSON.parse(line) as ResponderReady);
    });
  });
  return { child, ready };
}

/** A plain ws client matching answers to requests by a 4-byte id prefix, so many can be in flight. */
async function plainWsTransport(port: number): Promise<{ transport: Transport; close: () => void }> {
  const ws = new WebSocket(`ws://${HOST}:${port}`, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const pending = new Map<number, (payload: Uint8Array) => void>();
  let nextId = 0;
  ws.on("message", (data) => {
    const bytes = data as Buffer;
    const id = bytes.readUInt32BE(0);
    const resolve = pending.get(id);
    pending.delete(id);
    resolve?.(bytes.subarray(4));
  });
  const transport: Transport = {
    name: "plain ws echo",
    request(payload) {
      nextId = (nextId + 1) >>> 0;
      const id = nextId;
      const frame = Buffer.allocUnsafe(4 + payload.byteLength);
      frame.writeUInt32BE(id, 0);
      frame.set(payload, 4);
      return new Promise((resolve) => {
        pending.set(id, resolve);
        ws.send(frame, { binary: true });
      });
    },
  };
  return { transport, close: () => ws.terminate() };
}

function percentile(sortedMs: number[], p: number): number {
  const index = Math.min(sortedMs.length - 1, Math.ceil((p / 100) * sortedMs.length) - 1);
  return sortedMs[Math.max(0, index)] as number;
}

async function measureLatency(transport: Transport, samples: number): Promise<LatencyResult> {
  const payload = randomBytes(PAYLOAD_BYTES);
  for (let i = 0; i < WARMUP_REQUESTS; i++) await transport.request(payload);
  const durationsMs: number[] = [];
  for (let i = 0; i < samples; i++) {
    const start = process.hrtime.bigint();
    await transport.request(payload);
    durationsMs.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  durationsMs.sort((a, b) => a - b);
  const meanMs = durationsMs.reduce((sum, d) => sum + d, 0) / durationsMs.length;
  return {
    samples,
    p50Ms: percentile(durationsMs, 50),
    p90Ms: percentile(durationsMs, 90),
    p99Ms: percentile(durationsMs, 99),
    meanMs,
  };
}

async function measureThroughput(transport: Transport, seconds: number): Promise<ThroughputResult> {
  const payload = randomBytes(PAYLOAD_BYTES);
  const deadline = performance.now() + seconds * 1000;
  let requests = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      await transport.request(payload);
      requests += 1;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: INFLIGHT }, worker));
  const elapsedS = (performance.now() - start) / 1000;
  return { inflight: INFLIGHT, seconds: elapsedS, requests, requestsPerSecond: requests / elapsedS };
}

async function runParent(): Promise<void> {
  const samples = Number(args.samples);
  const seconds = Number(args.seconds);
  const psk = randomBytes(32).toString("hex");
  const [selfPort, peerPort] = [await freePort(), await freePort()];
  const { child, ready } = startResponder(selfPort, peerPort, psk);
  let mesh: Mesh | null = null;
  let closePlain: (() => void) | null = null;
  try {
    const { echoPort } = await ready;
    mesh = await Mesh.start({
      selfId: "a",
      clusterName: "bench",
      listenHost: HOST,
      listenPort: selfPort,
      peers: [{ id: "b", address: `${HOST}:${peerPort}` }],
      security: { mode: "psk", key: Buffer.from(psk, "hex") },
      logger: meshLogger(),
    });
    const linked = mesh;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("mesh link did not come up")), CHILD_READY_TIMEOUT_MS);
      const check = () => {
        if (linked.peers().some((p) => p.connected)) {
          clearTimeout(timer);
          resolve();
        }
      };
      linked.on("link:up", check);
      check();
    });
    const meshTransport: Transport = {
      name: "mesh (TLS-PSK)",
      request: (p) => linked.request("b", CHANNEL, p),
    };
    const plain = await plainWsTransport(echoPort);
    closePlain = plain.close;

    const results = [];
    for (const transport of [meshTransport, plain.transport]) {
      const latency = await measureLatency(transport, samples);
      const throughput = await measureThroughput(transport, seconds);
      results.push({ transport: transport.name, latency, throughput });
    }
    report(results);
  } finally {
    closePlain?.();
    await mesh?.close();
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, "SIGTERM");
  }
}

function report(
  results: Array<{ transport: string; latency: LatencyResult; throughput: ThroughputResult }>,
): void {
  const cpu = cpus();
  const machine = {
    cpu: cpu[0]?.model ?? "unknown",
    cores: cpu.length,
    os: `${platform()} ${release()}`,
    node: process.version,
  };
  const date = new Date().toISOString();
  const [mesh, plain] = results;
  if (mesh === undefined || plain === undefined) throw new Error("missing results");
  const ratio = {
    p50: mesh.latency.p50Ms / plain.latency.p50Ms,
    p99: mesh.latency.p99Ms / plain.latency.p99Ms,
    throughput: mesh.throughput.requestsPerSecond / plain.throughput.requestsPerSecond,
  };
  console.log(`mesh_rtt  ${date}`);
  console.log(`machine   ${machine.cpu}, ${machine.cores} cores, ${machine.os}, Node ${machine.node}`);
  console.log(`payload   ${PAYLOAD_BYTES} B, 2 processes on ${HOST}`);
  console.log("");
  const header = ["transport", "p50 ms", "p90 ms", "p99 ms", "mean ms", `req/s @${INFLIGHT}`];
  const rows = results.map((r) => [
    r.transport,
    r.latency.p50Ms.toFixed(3),
    r.latency.p90Ms.toFixed(3),
    r.latency.p99Ms.toFixed(3),
    r.latency.meanMs.toFixed(3),
    Math.round(r.throughput.requestsPerSecond).toString(),
  ]);
  rows.push([
    "mesh / plain",
    ratio.p50.toFixed(2),
    "",
    ratio.p99.toFixed(2),
    "",
    ratio.throughput.toFixed(2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join("  ");
  console.log(line(header));
  for (const row of rows) console.log(line(row));
  console.log("");
  console.log("targets   mesh p50 <= 0.3 ms, >= 20000 req/s with 64 in flight");

  const file = join(dirname(fileURLToPath(import.meta.url)), "results", "mesh_rtt.json");
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(
    file,
    `${JSON.stringify({ bench: "mesh_rtt", date, machine, payloadBytes: PAYLOAD_BYTES, results, ratio }, null, 2)}\n`,
  );
  console.log(`wrote     ${file}`);
}

if (args.responder) await runResponder();
else await runParent();
