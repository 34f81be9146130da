// Network namespaces for partition tests. One namespace per host, each joined by a veth pair to a bridge that
// lives in a namespace of its own, so the root namespace's interfaces and routes are never touched; addresses
// come from 10.213.<random>.0/24 and exist only inside those namespaces. nftables rules inside one host's
// namespace cut its links. Everything the lab starts or creates is removed by dispose(), by exit and signal
// hooks as a last resort, and by the next lab if a run was killed (SIGKILL) before any of those could run.
import { type ChildProcess, execFileSync, type SpawnOptions, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readlinkSync, statSync } from "node:fs";
import { createInterface } from "node:readline";
import { testGate } from "./tool_gate.ts";

export const netnsInstallHint = "install the tools with `apt-get install nftables iproute2` and run as root";

/** The nftables table a partition lives in: deleting it heals every rule at once. */
const partitionTable = "tandem_partition";
/** Namespace names carry the creating pid so a later run can sweep what a killed run left behind. */
const namespacePattern = /^tdm-(\d+)-[0-9a-f]+-/;
const commandTimeoutMs = 5_000;
const exitWaitMs = 2_000;
const teardownSignals: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/** An `ip` or `nft` command failed; the message carries its stderr (no secrets pass through these tools). */
export class NetnsCommandError extends Error {
  override readonly name = "NetnsCommandError";
}

function run(command: string, args: string[], input?: string): string {
  try {
    return execFileSync(command, args, {
      input,
      encoding: "utf8",
      stdio: ["pipe", "pipe", "pipe"],
      timeout: commandTimeoutMs,
    });
  } catch (cause) {
    const stderr = (cause as { stderr?: string }).stderr?.trim();
    throw new NetnsCommandError(`${command} ${args.join(" ")} failed${stderr ? `: ${stderr}` : ""}`, {
      cause,
    });
  }
}

export type NetnsSupport = { ok: true } | { ok: false; missing: string };

/** Whether this machine lets us create a namespace and load nftables rules in it. */
/**
 * For a namespace test's describe(): `skip` (with what is missing and how to install it) where the tools
 * are missing, except under CI=true, where a missing tool is a broken environment: then `unsupported` is
 * set and the test fails with it (`if (unsupported) assert.fail(unsupported)` in its before()).
 */
export function netnsTestGate(
  support: NetnsSupport = netnsSupport(),
  installHint = netnsInstallHint,
): { unsupported: string | undefined; skip: string | false } {
  return testGate(support.ok ? undefined : `this test needs ${support.missing}; ${installHint}`);
}

export function netnsSupport(): NetnsSupport {
  if (process.getuid?.() !== 0) return { ok: false, missing: "root privileges" };
  for (const [tool, args] of [
    ["ip", ["-V"]],
    ["nft", ["--version"]],
  ] as const) {
    try {
      run(tool, [...args]);
    } catch {
      return { ok: false, missing: `the \`${tool}\` command` };
    }
  }
  const probe = `tdm-${process.pid}-${randomBytes(2).toString("hex")}-probe`;
  try {
    run("ip", ["netns", "add", probe]);
    run("ip", ["netns", "exec", probe, "nft", "list", "ruleset"]);
    return { ok: true };
  } catch (cause) {
    return { ok: false, missing: `permission to use network namespaces and nftables (${String(cause)})` };
  } finally {
    try {
      run("ip", ["netns", "del", probe]);
    } catch {
      // The add failed, so there is nothing to delete.
    }
  }
}

export interface NetnsHost {
  name: string;
  namespace: string;
  address: string;
}

/** `both`: nothing in or out between the host and the others; `inbound`: the host still sends, hears nothing. */
export type PartitionDirection = "both" | "inbound";

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function killPids(pids: Iterable<number>): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

function namespacePids(namespace: string): number[] {
  try {
    return run("ip", ["netns", "pids", namespace]).split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function listNamespaces(): string[] {
  return run("ip", ["netns", "list"])
    .split("\n")
    .map((line) => line.split(" ")[0] ?? "")
    .filter(Boolean);
}

/** Removes namespaces (and whatever still runs in them) whose creating test process no longer exists. */
function sweepAbandonedNamespaces(): void {
  for (const namespace of listNamespaces()) {
    const match = namespacePattern.exec(namespace);
    if (!match || pidAlive(Number(match[1]))) continue;
    killPids(namespacePids(namespace));
    run("ip", ["netns", "del", namespace]);
  }
}

export class NetnsLab {
  readonly hosts: readonly NetnsHost[];
  private readonly bridgeNamespace: string;
  private readonly children = new Set<ChildProcess>();
  private readonly namespaces: string[] = [];
  /** Hosts whose partition rules are loaded. */
  private readonly isolated = new Set<string>();
  private disposed = false;
  private readonly exitHook = () => this.teardownNow();
  /** A signal skips the exit hook: tear down, then re-raise so the process still dies of that signal. */
  private readonly signalHook = (signal: NodeJS.Signals) => {
    this.teardownNow();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };

  private constructor(prefix: string, hostNames: readonly string[]) {
    const subnet = `10.213.${randomBytes(1)[0]}`;
    this.bridgeNamespace = `${prefix}-br`;
    this.hosts = hostNames.map((name, index) => ({
      name,
      namespace: `${prefix}-${name}`,
      address: `${subnet}.${index + 1}`,
    }));
    process.once("exit", this.exitHook);
    for (const signal of teardownSignals) process.once(signal, this.signalHook);
  }

  /** Creates the bridge namespace and one namespace per host name, wired and addressed. */
  static create(hostNames: readonly string[]): NetnsLab {
    sweepAbandonedNamespaces();
    const lab = new NetnsLab(`tdm-${process.pid}-${randomBytes(3).toString("hex")}`, hostNames);
    try {
      lab.build();
    } catch (error) {
      lab.teardownNow();
      throw error;
    }
    return lab;
  }

  private build(): void {
    const bridge = this.bridgeNamespace;
    this.addNamespace(bridge);
    run("ip", ["-n", bridge, "link", "add", "br0", "type", "bridge"]);
    run("ip", ["-n", bridge, "link", "set", "br0", "up"]);
    this.hosts.forEach((host, index) => {
      // Created inside the bridge namespace with the peer end born in the host's namespace: the veth
      // never appears in the root namespace, not even for a moment.
      const port = `p${index}`;
      this.addNamespace(host.namespace);
      run("ip", [
        "-n",
        bridge,
        "link",
        "add",
        port,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        host.namespace,
      ]);
      run("ip", ["-n", bridge, "link", "set", port, "master", "br0"]);
      run("ip", ["-n", bridge, "link", "set", port, "up"]);
      run("ip", ["-n", host.namespace, "link", "set", "lo", "up"]);
      run("ip", ["-n", host.namespace, "addr", "add", `${host.address}/24`, "dev", "eth0"]);
      run("ip", ["-n", host.namespace, "link", "set", "eth0", "up"]);
    });
  }

  private addNamespace(namespace: string): void {
    run("ip", ["netns", "add", namespace]);
    this.namespaces.push(namespace);
  }

  host(name: string): NetnsHost {
    const host = this.hosts.find((h) => h.name === name);
    if (!host) throw new Error(`no host ${name} in this lab`);
    return host;
  }

  /** Runs a program inside a host's namespace; `ip netns exec` execs it, so the child's pid is the program's. */
  spawn(name: string, command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn("ip", ["netns", "exec", this.host(name).namespace, command, ...args], options);
    this.children.add(child);
    child.once("exit", () => this.children.delete(child));
    return child;
  }

  /** Whether `pid` runs in the host's namespace (same network namespace inode as the lab's mount). */
  runsIn(pid: number, name: string): boolean {
    const link = readlinkSync(`/proc/${pid}/ns/net`);
    return link === `net:[${statSync(`/run/netns/${this.host(name).namespace}`).ino}]`;
  }

  /** Drops traffic between `name` and every other host, inside `name`'s namespace only. */
  isolate(name: string, direction: PartitionDirection): void {
    const others = this.hosts.filter((h) => h.name !== name).map((h) => h.address);
    if (others.length === 0) throw new Error("nothing to isolate from");
    const set = `{ ${others.join(", ")} }`;
    const output =
      direction === "both"
        ? [
            "  chain output {",
            "    type filter hook output priority 0; policy accept;",
            `    ip daddr ${set} drop`,
            "  }",
          ]
        : [];
    const rules = [
      `table inet ${partitionTable} {`,
      "  chain input {",
      "    type filter hook input priority 0; policy accept;",
      `    ip saddr ${set} drop`,
      "  }",
      ...output,
      "}",
      "",
    ].join("\n");
    run("ip", ["netns", "exec", this.host(name).namespace, "nft", "-f", "-"], rules);
    this.isolated.add(name);
  }

  /** Removes `name`'s partition rules; a host that is not isolated is left as it is. */
  heal(name: string): void {
    if (!this.isolated.delete(name)) return;
    run("ip", ["netns", "exec", this.host(name).namespace, "nft", "delete", "table", "inet", partitionTable]);
  }

  /** Kills what the lab started, waits (bounded) for it to exit, then deletes every namespace. */
  async dispose(): Promise<void> {
    const exits = [...this.children].map(
      (child) => new Promise<void>((resolve) => child.once("exit", () => resolve())),
    );
    killPids(this.childPids());
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(exits),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, exitWaitMs);
      }),
    ]);
    clearTimeout(timer);
    this.teardownNow();
  }

  private childPids(): number[] {
    return [...this.children].flatMap((child) => (child.pid === undefined ? [] : [child.pid]));
  }

  /** Synchronous, so it also runs from the exit hook. Deleting the bridge namespace removes every veth. */
  private teardownNow(): void {
    if (this.disposed) return;
    this.disposed = true;
    process.removeListener("exit", this.exitHook);
    for (const signal of teardownSignals) process.removeListener(signal, this.signalHook);
    killPids(this.childPids());
    for (const namespace of this.namespaces.toReversed()) {
      killPids(namespacePids(namespace));
      try {
        run("ip", ["netns", "del", namespace]);
      } catch {
        // Keep going: the remaining namespaces must go too, and the next lab sweeps this one.
      }
    }
  }
}

/** Relays JSON lines `{id, url, timeoutMs}` to fetch() and answers `{id, status, body}` or `{id, error}`. */
const relayScript = `
const out = (reply) => process.stdout.write(JSON.stringify(reply) + "\\n");
const lines = require("node:readline").createInterface({ input: process.stdin });
lines.on("line", async (line) => {
  const { id, url, timeoutMs } = JSON.parse(line);
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    out({ id, status: response.status, body: await response.text() });
  } catch (error) {
    out({ id, error: String(error && error.name) });
  }
});
lines.on("close", () => process.exit(0));
`;

interface RelayReply {
  id: number;
  status?: number;
  body?: string;
  error?: string;
}

/** Extra time the parent waits beyond the relay's own fetch timeout before giving up on an answer. */
const relayGraceMs = 1_000;

/**
 * HTTP GET from inside a host's namespace, where its loopback API lives. One long-lived node process per
 * namespace answers over stdin/stdout, so a status poll costs a pipe round trip, not a process start.
 */
export class NetnsHttpRelay {
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, (reply: RelayReply | null) => void>();
  private nextId = 1;

  constructor(lab: NetnsLab, name: string) {
    this.child = lab.spawn(name, process.execPath, ["-e", relayScript], {
      stdio: ["pipe", "pipe", "ignore"],
    });
    // A write after the relay died fails with EPIPE; its pending requests are settled by the exit handler.
    this.child.stdin?.on("error", () => {});
    createInterface({ input: this.child.stdout! }).on("line", (line) => {
      const reply = JSON.parse(line) as RelayReply;
      this.pending.get(reply.id)?.(reply);
    });
    this.child.once("exit", () => {
      for (const settle of this.pending.values()) settle(null);
    });
  }

  /** The parsed JSON body of a 2xx answer, or null (refused, timed out, non-2xx, relay gone). */
  async getJson(url: string, timeoutMs: number): Promise<unknown> {
    const id = this.nextId++;
    let timer: NodeJS.Timeout | undefined;
    const reply = await new Promise<RelayReply | null>((resolve) => {
      this.pending.set(id, resolve);
      timer = setTimeout(() => resolve(null), timeoutMs + relayGraceMs);
      this.child.stdin?.write(`${JSON.stringify({ id, url, timeoutMs })}\n`);
    });
    clearTimeout(timer);
    this.pending.delete(id);
    if (!reply?.status || reply.status < 200 || reply.status > 299 || reply.body === undefined) return null;
    return JSON.parse(reply.body) as unknown;
  }
}
