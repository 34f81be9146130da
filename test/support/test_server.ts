// A server of the test's own (Debian's nats-server, redis-server, moto's S3), on a free port with its own
// data folder, so a test can stop and start it without touching the machine's shared one; stopped by its pid.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { createConnection } from "node:net";
import { freeBasePort } from "./free_ports.ts";
import { findBinary } from "./tool_gate.ts";

export const natsServerBinary = findBinary("nats-server");
export const redisServerBinary = findBinary("redis-server");
/** The Pub/Sub emulator of the Cloud SDK, where `gcloud info` says the SDK is (Debian's package path). */
export const pubsubEmulatorBinary = (() => {
  const path = "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator";
  return existsSync(path) ? path : undefined;
})();

let motoPython: string | undefined | null = null;
/**
 * python3, when it can import moto's server (`pip install 'moto[server]'`); asked on first use only, as
 * importing moto takes a second and most tests that load this file never need it.
 */
export function motoServerPython(): string | undefined {
  if (motoPython === null) {
    const python = findBinary("python3");
    const importable =
      python !== undefined &&
      spawnSync(python, ["-c", "import moto.server"], { stdio: "ignore", timeout: 60_000 }).status === 0;
    motoPython = importable ? python : undefined;
  }
  return motoPython;
}

export class TestServer {
  readonly port: number;
  private readonly binary: string;
  private readonly args: string[];
  /** How long it may take to listen (a JVM starts slowly). */
  private readonly readyMs: number;
  private child: ChildProcess | null = null;

  private constructor(binary: string, port: number, args: string[], readyMs: number) {
    this.binary = binary;
    this.port = port;
    this.args = args;
    this.readyMs = readyMs;
  }

  /** NATS with JetStream, storing under `dir`. */
  static async nats(dir: string): Promise<TestServer> {
    if (natsServerBinary === undefined) throw new Error("nats-server is not installed");
    const port = await freeBasePort(1);
    return TestServer.started(natsServerBinary, port, [
      "-a",
      "127.0.0.1",
      "-p",
      String(port),
      "-js",
      "-sd",
      dir,
    ]);
  }

  /** Redis with an append-only file under `dir`, fsync'd always (so a restart keeps what it acknowledged). */
  static async redis(dir: string): Promise<TestServer> {
    if (redisServerBinary === undefined) throw new Error("redis-server is not installed");
    const port = await freeBasePort(1);
    const args = ["--bind", "127.0.0.1", "--port", String(port), "--dir", dir, "--appendonly", "yes"];
    return TestServer.started(redisServerBinary, port, [...args, "--appendfsync", "always", "--save", ""]);
  }

  /** The Pub/Sub emulator (in memory: a restart forgets everything). */
  static async pubsub(): Promise<TestServer> {
    if (pubsubEmulatorBinary === undefined) throw new Error("the Pub/Sub emulator is not installed");
    const port = await freeBasePort(1);
    return TestServer.started(pubsubEmulatorBinary, port, ["--host=127.0.0.1", `--port=${port}`], 60_000);
  }

  /** moto's server: S3 (and the rest of AWS, IAM included) in memory, so every start is empty. */
  static async moto(): Promise<TestServer> {
    const python = motoServerPython();
    if (python === undefined) throw new Error("moto's server is not installed for python3");
    const port = await freeBasePort(1);
    const args = ["-m", "moto.server", "-H", "127.0.0.1", "-p", String(port)];
    return TestServer.started(python, port, args, 30_000);
  }

  private static async started(
    binary: string,
    port: number,
    args: string[],
    readyMs = 15_000,
  ): Promise<TestServer> {
    const server = new TestServer(binary, port, args, readyMs);
    await server.start();
    return server;
  }

  /** (Again) on the same port and folder: what it held before is there. */
  async start(): Promise<void> {
    this.child = spawn(this.binary, this.args, { stdio: "ignore" });
    const deadline = Date.now() + this.readyMs;
    while (!(await accepting(this.port))) {
      if (Date.now() > deadline) throw new Error(`${this.binary} did not listen on ${this.port}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child === null || child.exitCode !== null) return;
    child.kill("SIGTERM");
    await once(child, "exit");
  }
}

export function accepting(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
