// A database's backup and restore with PostgreSQL's own tools: pg_dump in custom format streamed out (from
// a replica, or the primary where there is none), and pg_restore of such a dump into a new database.
// Passwords go in PGPASSWORD, never argv; a failure says the tool, the server and its masked stderr.
import { spawn } from "node:child_process";
import { PassThrough, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  connectionParts,
  describeServer,
  libpqConninfo,
  maskSecret,
  quoteIdent,
  type ServerTarget,
} from "./postgres_names.ts";
import { clientToolEnv, findPostgresTool, runTool } from "./postgres_schema.ts";

/** The dump's bytes as pg_dump writes them; the stream fails if pg_dump exits with an error. */
export function dumpStream(target: ServerTarget, database: string): Readable {
  const binary = findPostgresTool("pg_dump");
  if (binary === undefined) throw new Error("pg_dump is not installed (apt-get install postgresql-client)");
  const parts = connectionParts(target, database);
  const child = spawn(
    binary,
    ["--format=custom", "--no-password", `--dbname=${libpqConninfo(parts, false)}`],
    {
      env: clientToolEnv(parts),
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const out = new PassThrough();
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (text: string) => {
    stderr = (stderr + text).slice(-4000);
  });
  child.stdout.pipe(out, { end: false });
  // A reader that gives up stops pg_dump.
  out.once("close", () => child.exitCode === null && child.kill());
  child.once("error", (error) =>
    out.destroy(new Error(`pg_dump of ${describeServer(target, database)}: ${error.message}`)),
  );
  child.once("close", (code, signal) => {
    if (code === 0) return void out.end();
    const reason = maskSecret(stderr.trim(), parts.password) || `exit ${code ?? signal}`;
    out.destroy(new Error(`pg_dump of ${describeServer(target, database)} failed: ${reason}`));
  });
  return out;
}

/** Creates `database` on `target` (it must not exist) and restores the custom-format dump `source` into it. */
export async function restoreInto(target: ServerTarget, database: string, source: Readable): Promise<void> {
  const binary = findPostgresTool("pg_restore");
  if (binary === undefined)
    throw new Error("pg_restore is not installed (apt-get install postgresql-client)");
  await runTool(
    "psql",
    ["--no-psqlrc", "-v", "ON_ERROR_STOP=1", "-c", `CREATE DATABASE ${quoteIdent(database)}`],
    target,
    connectionParts(target).database,
    undefined,
  );
  const parts = connectionParts(target, database);
  const child = spawn(
    binary,
    ["--no-owner", "--exit-on-error", "--no-password", `--dbname=${libpqConninfo(parts, false)}`],
    {
      env: clientToolEnv(parts),
      stdio: ["pipe", "ignore", "pipe"],
    },
  );
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (text: string) => {
    stderr = (stderr + text).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve(code));
  });
  await pipeline(source, child.stdin).catch((error: Error) => {
    child.kill();
    throw error;
  });
  const code = await exited;
  if (code !== 0) {
    const reason = maskSecret(stderr.trim(), parts.password) || `exit ${code}`;
    throw new Error(`pg_restore into ${describeServer(target, database)} failed: ${reason}`);
  }
}
