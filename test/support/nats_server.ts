// A NATS server with JetStream of the test's own (Debian's nats-server), on a free port with its own store
// folder, so a test can stop and start it without touching the machine's shared one; stopped by its pid.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createConnection } from "node:net";
import { freeBasePort } from "./free_ports.ts";
import { findBinary } from "./tool_gate.ts";

export const natsServerBinary = findBinary("nats-server");

export class TestNatsServer {
  readonly port: number;
  private readonly storeDir: string;
  private child: ChildProcess | null = null;

  private constructor(port: number, storeDir: string) {
    this.port = port;
    this.storeDir = storeDir;
  }

  static async start(storeDir: string): Promise<TestNatsServer> {
    const server = new TestNatsServer(await freeBasePort(1), storeDir);
    await server.start();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** (Again) on the same port and store: what it held before is there. */
  async start(): Promise<void> {
    if (natsServerBinary === undefined) throw new Error("nats-server is not installed");
    this.child = spawn(
      natsServerBinary,
      ["-a", "127.0.0.1", "-p", String(this.port), "-js", "-sd", this.storeDir],
      {
        stdio: "ignore",
      },
    );
    const deadline = Date.now() + 15_000;
    while (!(await accepting(this.port))) {
      if (Date.now() > deadline) throw new Error(`nats-server did not listen on ${this.port}`);
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
