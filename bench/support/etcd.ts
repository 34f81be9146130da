// A 3-member etcd cluster on loopback for side-by-side benches: the Debian `etcd-server` binary (etcd 3.4),
// free ports, a temporary data folder, members killed by pid and the folder removed by dispose().
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Etcd3 } from "etcd3";
import { freeBasePort } from "../../test/support/free_ports.ts";

export const ETCD_MEMBER_NAMES = ["e1", "e2", "e3"] as const;
const readyTimeoutMs = 20_000;
const readyPollMs = 100;

export interface EtcdMember {
  name: string;
  clientUrl: string;
  process: ChildProcess;
}

/** `etcd 3.4.23`, or null when no etcd binary runs here. */
export function etcdVersion(binary = "etcd"): string | null {
  try {
    const out = execFileSync(binary, ["--version"], { encoding: "utf8", timeout: 5_000 });
    const match = /etcd Version: (\S+)/.exec(out);
    return match ? `etcd ${match[1]}` : null;
  } catch {
    return null;
  }
}

export class EtcdCluster {
  readonly members: EtcdMember[];
  private readonly dir: string;

  private constructor(dir: string, members: EtcdMember[]) {
    this.dir = dir;
    this.members = members;
    process.once("exit", () => this.killAll());
  }

  /** Starts three members (client port base+10i, peer port base+10i+1) and waits until writes succeed. */
  static async start(binary = "etcd"): Promise<EtcdCluster> {
    const dir = mkdtempSync(join(tmpdir(), "tandem-bench-etcd-"));
    const basePort = await freeBasePort(ETCD_MEMBER_NAMES.length);
    const peerUrl = (i: number) => `http://127.0.0.1:${basePort + i * 10 + 1}`;
    const initialCluster = ETCD_MEMBER_NAMES.map((name, i) => `${name}=${peerUrl(i)}`).join(",");
    const members = ETCD_MEMBER_NAMES.map((name, i) => {
      const clientUrl = `http://127.0.0.1:${basePort + i * 10}`;
      const child = spawn(
        binary,
        [
          `--name=${name}`,
          `--data-dir=${join(dir, name)}`,
          `--listen-client-urls=${clientUrl}`,
          `--advertise-client-urls=${clientUrl}`,
          `--listen-peer-urls=${peerUrl(i)}`,
          `--initial-advertise-peer-urls=${peerUrl(i)}`,
          `--initial-cluster=${initialCluster}`,
          "--initial-cluster-state=new",
          "--initial-cluster-token=tandem-bench",
          "--logger=zap",
          "--log-level=error",
        ],
        { stdio: ["ignore", "ignore", "ignore"] },
      );
      return { name, clientUrl, process: child };
    });
    const cluster = new EtcdCluster(dir, members);
    try {
      await cluster.waitReady();
    } catch (error) {
      cluster.dispose();
      throw error;
    }
    return cluster;
  }

  /** A client bound to one member only, so reads and watches are served by that member. */
  client(index: number): Etcd3 {
    const member = this.members[index];
    if (!member) throw new Error(`no etcd member ${index}`);
    return new Etcd3({ hosts: member.clientUrl });
  }

  pid(index: number): number {
    const pid = this.members[index]?.process.pid;
    if (pid === undefined) throw new Error(`etcd member ${index} has no pid`);
    return pid;
  }

  dispose(): void {
    this.killAll();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private killAll(): void {
    for (const member of this.members) {
      if (member.process.pid !== undefined && member.process.exitCode === null) {
        try {
          process.kill(member.process.pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
    }
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + readyTimeoutMs;
    for (let i = 0; i < this.members.length; i++) {
      const client = this.client(i);
      try {
        for (;;) {
          try {
            await client.put("bench/ready").value(String(i));
            break;
          } catch (error) {
            if (Date.now() > deadline)
              throw new Error("etcd members did not accept writes in time", { cause: error });
            await new Promise((resolve) => setTimeout(resolve, readyPollMs));
          }
        }
      } finally {
        client.close();
      }
    }
  }
}
