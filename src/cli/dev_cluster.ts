// `tandem dev`: a local cluster on loopback with the built-in defaults, for trying Tandem and for tests.
// Writes one config per node plus the CA and certificates into a folder, then runs one agent process each.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { stringify } from "yaml";
import type { PemPair } from "../pki/index.ts";
import { agentEnv, agentNodeFlags } from "./agent_flags.ts";

export interface DevClusterOptions {
  nodes: number;
  dir: string;
  basePort: number;
  security: "mtls" | "psk";
  witness: boolean;
}

export interface DevNode {
  id: string;
  configPath: string;
  meshPort: number;
  apiPort: number;
  apiUrl: string;
}

export function devNodes(options: DevClusterOptions): DevNode[] {
  const dir = resolve(options.dir);
  return Array.from({ length: options.nodes }, (_, index) => {
    const id = `n${index + 1}`;
    const meshPort = options.basePort + index * 10;
    return {
      id,
      configPath: join(dir, `${id}.yml`),
      meshPort,
      apiPort: meshPort + 1,
      apiUrl: `http://127.0.0.1:${meshPort + 1}`,
    };
  });
}

function writeSecret(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
}

async function ensureTls(dir: string, nodeIds: string[]): Promise<void> {
  // Loaded on use: `tandem agent` shares this binary and must not load the X.509 libraries.
  const { createClusterCa, issueCertificate } = await import("../pki/index.ts");
  const tls = join(dir, "tls");
  mkdirSync(tls, { recursive: true, mode: 0o700 });
  const caPath = join(tls, "ca.pem");
  let ca: PemPair;
  if (existsSync(caPath)) {
    ca = { certPem: readFileSync(caPath, "utf8"), keyPem: readFileSync(join(tls, "ca-key.pem"), "utf8") };
  } else {
    ca = await createClusterCa({ commonName: "tandem-dev-ca", validDays: 365 });
    writeFileSync(caPath, ca.certPem);
    writeSecret(join(tls, "ca-key.pem"), ca.keyPem);
  }
  for (const id of nodeIds) {
    if (existsSync(join(tls, `${id}.pem`))) continue;
    const pair = await issueCertificate(ca, { commonName: id, kind: "node", validDays: 365 });
    writeFileSync(join(tls, `${id}.pem`), pair.certPem);
    writeSecret(join(tls, `${id}-key.pem`), pair.keyPem);
  }
}

/** Writes configs (and key material on first use) for every node; returns the nodes. */
export async function prepareDevCluster(options: DevClusterOptions): Promise<DevNode[]> {
  const dir = resolve(options.dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const nodes = devNodes(options);
  if (options.security === "mtls")
    await ensureTls(
      dir,
      nodes.map((n) => n.id),
    );
  const pskPath = join(dir, "psk.key");
  if (options.security === "psk" && !existsSync(pskPath)) {
    writeSecret(pskPath, `${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex")}\n`);
  }
  nodes.forEach((node, index) => {
    const isWitness = options.witness && index === nodes.length - 1;
    const roleOf = (i: number) => (options.witness && i === nodes.length - 1 ? "witness" : "member");
    const config = {
      cluster_name: "tandem-dev",
      node: { id: node.id, role: isWitness ? "witness" : "member", priority: 100 },
      listen: `127.0.0.1:${node.meshPort}`,
      api: { listen: `127.0.0.1:${node.apiPort}` },
      data_dir: `data/${node.id}`,
      peers: nodes
        .map((peer, i) => ({ peer, i }))
        .filter(({ peer }) => peer.id !== node.id)
        .map(({ peer, i }) => ({
          id: peer.id,
          address: `127.0.0.1:${peer.meshPort}`,
          role: roleOf(i),
          priority: 100,
        })),
      security:
        options.security === "mtls"
          ? {
              mode: "mtls",
              ca_file: "tls/ca.pem",
              cert_file: `tls/${node.id}.pem`,
              key_file: `tls/${node.id}-key.pem`,
            }
          : { mode: "psk", psk_file: "psk.key" },
      log: { level: "info" },
    };
    writeFileSync(
      node.configPath,
      `# Written by tandem dev; edit freely, it is rewritten on the next run.\n${stringify(config)}`,
    );
  });
  return nodes;
}

/**
 * Starts `tandem agent` for one node with this Node binary and, by default, this process's entry script, with
 * the agent's V8 flags ($TANDEM_AGENT_NODE_FLAGS when set, as `tandem agent` itself would take them) and
 * malloc tunables, so it need not re-execute itself.
 */
export function spawnAgent(
  configPath: string,
  entry = process.argv[1],
  agentArgs: readonly string[] = [],
): ChildProcess {
  if (!entry) throw new Error("cannot find the tandem entry script");
  const args = [...agentNodeFlags(), entry, "agent", "--config", configPath, ...agentArgs];
  return spawn(process.execPath, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: agentEnv(),
    // Its own process group: a terminal's Ctrl-C reaches only the parent, which stops agents one signal each.
    detached: true,
  });
}

const levelNames: Record<number, string> = {
  10: "TRACE",
  20: "DEBUG",
  30: "INFO",
  40: "WARN",
  50: "ERROR",
  60: "FATAL",
};
const hiddenKeys = new Set(["level", "time", "pid", "hostname", "node", "msg"]);

/** One pino JSON line → `12:00:01.234 n1 INFO  leader changed leader=n2 term=3`. */
export function formatLogLine(line: string, fallbackNode: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return `${fallbackNode} | ${line}`;
  }
  const time = new Date(typeof record.time === "number" ? record.time : Date.now())
    .toISOString()
    .slice(11, 23);
  const level = (levelNames[record.level as number] ?? "INFO").padEnd(5);
  const fields = Object.entries(record)
    .filter(([key]) => !hiddenKeys.has(key))
    .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(" ");
  return `${time} ${String(record.node ?? fallbackNode).padEnd(3)} ${level} ${record.msg ?? ""}${fields ? ` ${fields}` : ""}`;
}

export function pipeLogs(child: ChildProcess, nodeId: string, write: (line: string) => void): void {
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream }).on("line", (line) => write(formatLogLine(line, nodeId)));
  }
}
