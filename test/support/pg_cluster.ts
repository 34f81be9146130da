// Throwaway PostgreSQL clusters for tests: initdb as the `postgres` user into a fresh temp folder, on a free
// 127.0.0.1 port with its unix socket inside that folder, run in the foreground and stopped by its pid, so a
// test never touches the machine's own PostgreSQL (5432). Removed by dispose(), or when the process exits.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import {
  accessSync,
  appendFileSync,
  chownSync,
  closeSync,
  constants,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freeBasePort } from "./free_ports.ts";
import { findBinary } from "./tool_gate.ts";

/** A PostgreSQL server program: in PATH, else in Debian's folder of the newest installed version. */
export function findPostgresBinary(binary: string): string | undefined {
  const inPath = findBinary(binary);
  if (inPath !== undefined) return inPath;
  let versions: string[] = [];
  try {
    versions = readdirSync("/usr/lib/postgresql").filter((name) => /^\d+$/.test(name));
  } catch {}
  for (const version of versions.sort((a, b) => Number(b) - Number(a))) {
    const path = join("/usr/lib/postgresql", version, "bin", binary);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {}
  }
  return undefined;
}

export const initdbBinary = findPostgresBinary("initdb");
export const postgresBinary = findPostgresBinary("postgres");

/** What is missing to run clusters, for testGate(), or undefined. */
export const pgClusterUnsupported =
  initdbBinary === undefined || postgresBinary === undefined
    ? "PostgreSQL's initdb and postgres (apt-get install postgresql)"
    : undefined;

export interface PgClusterOptions {
  /** `logical` (a primary, the default) or `replica` (to test the precondition). */
  walLevel?: "logical" | "replica";
  /** TCP logins need this password (scram-sha-256) instead of being trusted; the unix socket stays trusted. */
  password?: string;
  /** The name used in messages (and the temp folder's name). */
  name?: string;
}

/** Who runs the server: the `postgres` user when this process is root (initdb refuses root), else itself. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((entry) => entry.startsWith("postgres:"));
  const [, , uid, gid] = line?.split(":") ?? [];
  if (uid === undefined || gid === undefined) throw new Error("there is no postgres user to run initdb as");
  return { uid: Number(uid), gid: Number(gid) };
}

const live = new Set<PgCluster>();
process.once("exit", () => {
  for (const cluster of live) cluster.killNow();
});

export class PgCluster {
  readonly name: string;
  readonly port: number;
  /** The temp folder: data/ and the unix socket are inside. */
  readonly dir: string;
  readonly dataDir: string;
  /** The server's log (its stderr). */
  readonly logFile: string;
  /** The superuser's password for TCP logins, when the cluster requires one. */
  readonly password: string | undefined;
  private readonly user: { uid: number; gid: number } | undefined;
  private child: ChildProcess | null = null;

  private constructor(name: string, port: number, dir: string, password: string | undefined) {
    this.name = name;
    this.port = port;
    this.dir = dir;
    this.dataDir = join(dir, "data");
    this.logFile = join(dir, "server.log");
    this.password = password;
    this.user = serverUser();
  }

  static async create(options: PgClusterOptions = {}): Promise<PgCluster> {
    if (pgClusterUnsupported !== undefined) throw new Error(`${pgClusterUnsupported} is not installed`);
    const name = options.name ?? "pg";
    const port = await freeBasePort(1);
    const dir = mkdtempSync(join(tmpdir(), `tandem-${name.replace(/[^a-z0-9]/gi, "")}-`));
    const cluster = new PgCluster(name, port, dir, options.password);
    live.add(cluster);
    try {
      cluster.initdb(options);
      await cluster.start();
    } catch (error) {
      await cluster.dispose();
      throw error;
    }
    return cluster;
  }

  private initdb(options: PgClusterOptions): void {
    if (this.user !== undefined) chownSync(this.dir, this.user.uid, this.user.gid);
    const args = ["-D", this.dataDir, "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"];
    if (this.password === undefined) {
      args.push("--auth=trust");
    } else {
      const pwfile = join(this.dir, "pwfile");
      writeFileSync(pwfile, `${this.password}\n`, { mode: 0o600 });
      if (this.user !== undefined) chownSync(pwfile, this.user.uid, this.user.gid);
      args.push("--auth-local=trust", "--auth-host=scram-sha-256", `--pwfile=${pwfile}`);
    }
    const result = spawnSync(initdbBinary!, args, {
      cwd: this.dir,
      uid: this.user?.uid,
      gid: this.user?.gid,
      encoding: "utf8",
      timeout: 120_000,
    });
    rmSync(join(this.dir, "pwfile"), { force: true });
    if (result.status !== 0) {
      throw new Error(`initdb failed for ${this.name}: ${result.error?.message ?? ""}${result.stderr}`);
    }
    const settings = {
      listen_addresses: "'127.0.0.1'",
      port: String(this.port),
      unix_socket_directories: `'${this.dir}'`,
      wal_level: options.walLevel ?? "logical",
      max_replication_slots: "40",
      max_wal_senders: "40",
      max_logical_replication_workers: "16",
      max_worker_processes: "24",
      max_connections: "100",
      shared_buffers: "16MB",
      fsync: "off",
      synchronous_commit: "off",
      full_page_writes: "off",
      // A failed apply or sync worker is retried after this long (5 s by default).
      wal_retrieve_retry_interval: "500ms",
      log_min_messages: "warning",
      log_line_prefix: "'%m [%p] %d '",
    };
    const lines = Object.entries(settings).map(([key, value]) => `${key} = ${value}`);
    appendFileSync(join(this.dataDir, "postgresql.conf"), `\n# test cluster\n${lines.join("\n")}\n`);
  }

  /** (Again) on the same port and folder, waiting until it accepts queries. */
  async start(): Promise<void> {
    if (this.child !== null) return;
    const log = openSync(this.logFile, "a");
    let child: ChildProcess;
    try {
      child = spawn(postgresBinary!, ["-D", this.dataDir], {
        cwd: this.dir,
        uid: this.user?.uid,
        gid: this.user?.gid,
        stdio: ["ignore", log, log],
      });
    } finally {
      closeSync(log);
    }
    this.child = child;
    const deadline = Date.now() + 60_000;
    while (!(await this.ready())) {
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
        await this.stop();
        throw new Error(`postgres ${this.name} did not start on ${this.port}:\n${this.logTail()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  private async ready(): Promise<boolean> {
    const client = new pg.Client({ host: this.dir, port: this.port, user: "postgres", database: "postgres" });
    client.on("error", () => {});
    try {
      await client.connect();
      await client.query("SELECT 1");
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** Fast shutdown (SIGINT: sessions ended, a clean checkpoint), waiting for the server to exit. */
  async stop(): Promise<void> {
    await this.signal("SIGINT");
  }

  /** Kills the postmaster outright (its backends notice and exit; a start then recovers). */
  async kill9(): Promise<void> {
    await this.signal("SIGKILL");
  }

  private async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill(signal);
    await exited;
  }

  /** Stops the server and removes its folder. */
  async dispose(): Promise<void> {
    await this.stop();
    live.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** For process exit: an immediate shutdown, then the folder removed. */
  killNow(): void {
    try {
      if (this.child?.pid !== undefined && this.child.exitCode === null)
        process.kill(this.child.pid, "SIGQUIT");
    } catch {}
    rmSync(this.dir, { recursive: true, force: true });
  }

  get running(): boolean {
    return this.child !== null;
  }

  /** A postgres:// URL over TCP (no password in it: give it apart, as Tandem's config does). */
  url(database: string, user = "postgres"): string {
    return `postgres://${encodeURIComponent(user)}@127.0.0.1:${this.port}/${encodeURIComponent(database)}`;
  }

  /** Runs `sql` as the superuser over the unix socket (always trusted) and returns the rows. */
  async query<R extends pg.QueryResultRow = Record<string, unknown>>(
    database: string,
    sql: string,
    params: unknown[] = [],
  ): Promise<R[]> {
    const client = new pg.Client({ host: this.dir, port: this.port, user: "postgres", database });
    client.on("error", () => {});
    await client.connect();
    try {
      return (await client.query<R>(sql, params)).rows;
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** The end of the server's log, to explain a failure. */
  logTail(lines = 40): string {
    try {
      return readFileSync(this.logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }
}
