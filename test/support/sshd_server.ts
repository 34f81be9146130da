// A private OpenSSH server for the sftp blob store's tests: Debian's sshd on a free 127.0.0.1 port with a
// host key, a client key and an sshd_config of its own in a temp folder (key login only, internal-sftp), run
// in the foreground and stopped by its pid, so a test never needs or touches the machine's sshd.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { freeBasePort } from "./free_ports.ts";
import { accepting } from "./test_server.ts";
import { findBinary } from "./tool_gate.ts";

export const sshdBinary = findBinary("sshd");
export const sshKeygenBinary = findBinary("ssh-keygen");

export interface SshKey {
  /** The private key file's text (OpenSSH format, no passphrase). */
  privateKey: string;
  /** The public key as one line `ssh-ed25519 AAAA...`, without its comment (how a host key is pinned). */
  publicKey: string;
  privateKeyFile: string;
}

/** A fresh ed25519 key pair at `path` (and `path`.pub). */
export function generateSshKey(path: string): SshKey {
  if (sshKeygenBinary === undefined) throw new Error("ssh-keygen is not installed");
  execFileSync(sshKeygenBinary, ["-q", "-t", "ed25519", "-N", "", "-C", "tandem-test", "-f", path]);
  const [type, blob] = readFileSync(`${path}.pub`, "utf8").trim().split(/\s+/);
  return { privateKey: readFileSync(path, "utf8"), publicKey: `${type} ${blob}`, privateKeyFile: path };
}

export class SshdServer {
  readonly port: number;
  /** The temp folder holding keys and config; tests may keep their remote folders under it too. */
  readonly dir: string;
  /** Who logs in: the user the tests run as (root, whose key login sshd allows by default). */
  readonly username = userInfo().username;
  /** The server's host key, `ssh-ed25519 AAAA...` (what a store pins). */
  readonly hostKey: string;
  /** The private key the server accepts. */
  readonly clientKey: SshKey;
  private readonly config: string;
  private child: ChildProcess | null = null;
  private stderr = "";

  private constructor(port: number, dir: string, hostKey: string, clientKey: SshKey, config: string) {
    this.port = port;
    this.dir = dir;
    this.hostKey = hostKey;
    this.clientKey = clientKey;
    this.config = config;
  }

  static async start(): Promise<SshdServer> {
    if (sshdBinary === undefined) throw new Error("sshd is not installed (apt-get install openssh-server)");
    // sshd refuses to start without its privilege separation folder (made by the package's service unit).
    mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
    const dir = mkdtempSync(join(tmpdir(), "tandem-sshd-"));
    const hostKey = generateSshKey(join(dir, "host_ed25519"));
    const clientKey = generateSshKey(join(dir, "client_ed25519"));
    writeFileSync(join(dir, "authorized_keys"), `${clientKey.publicKey}\n`, { mode: 0o600 });
    const port = await freeBasePort(1);
    const config = join(dir, "sshd_config");
    writeFileSync(
      config,
      [
        `Port ${port}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${hostKey.privateKeyFile}`,
        `PidFile ${join(dir, "sshd.pid")}`,
        `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        // The temp folder is not root-owned 0755 all the way up, which StrictModes would refuse.
        "StrictModes no",
        "UsePAM no",
        "Subsystem sftp internal-sftp",
        "",
      ].join("\n"),
    );
    const server = new SshdServer(port, dir, hostKey.publicKey, clientKey, config);
    try {
      await server.startProcess();
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
    return server;
  }

  /** Stops it, dropping every connection, and starts it again on the same port with the same keys. */
  async restart(): Promise<void> {
    await this.stopProcess();
    await this.startProcess();
  }

  /** Stops it (and its connections) and removes its folder. */
  async stop(): Promise<void> {
    await this.stopProcess();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async startProcess(): Promise<void> {
    // -D: foreground, so the pid is sshd's own; -e: its log to stderr, kept to explain a failed start.
    const child = spawn(sshdBinary!, ["-D", "-e", "-f", this.config], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.child = child;
    this.stderr = "";
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (text: string) => {
      this.stderr = (this.stderr + text).slice(-4000);
    });
    const deadline = Date.now() + 15_000;
    while (!(await accepting(this.port))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        await this.stopProcess();
        throw new Error(`sshd did not listen on 127.0.0.1:${this.port}: ${this.stderr.trim()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  private async stopProcess(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child === null || child.pid === undefined) return;
    // Each connection is a process of its own (in its own session) that outlives the listener: ended first,
    // while they are still the listener's descendants.
    for (const pid of descendantsOf(child.pid)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    await once(child, "exit");
  }
}

/** Every process below `root` in the process tree (Linux's /proc). */
function descendantsOf(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    // The fields after the command name (which may hold spaces): state, then the parent's pid.
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
  }
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}
