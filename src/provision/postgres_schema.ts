// Tables and their columns on each side, the schema copy (pg_dump --schema-only of the primary's database
// piped into psql on the replica's, in one transaction) and the drift between the two.
import { spawn } from "node:child_process";
import { accessSync, constants, readdirSync } from "node:fs";
import { delimiter, join } from "node:path";
import type { Logger } from "pino";
import type { Drift } from "./engine.ts";
import type { PostgresConnections } from "./postgres_connections.ts";
import {
  type ConnectionParts,
  connectionParts,
  describeServer,
  libpqConninfo,
  maskSecret,
  qualified,
  quoteIdent,
  type ServerTarget,
} from "./postgres_names.ts";

export interface TableName {
  schema: string;
  name: string;
}

export interface ColumnRow {
  schema: string;
  table: string;
  column: string;
  type: string;
}

/** Permanent user tables (partitions included, those an extension owns left out: it makes them itself). */
const userTablesWhere = `
  c.relkind IN ('r', 'p') AND c.relpersistence = 'p'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`;

export async function listTables(
  connections: PostgresConnections,
  target: ServerTarget,
  database: string,
): Promise<TableName[]> {
  return connections.query<TableName>(
    target,
    database,
    `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${userTablesWhere} ORDER BY 1, 2`,
  );
}

export async function listColumns(
  connections: PostgresConnections,
  target: ServerTarget,
  database: string,
): Promise<ColumnRow[]> {
  return connections.query<ColumnRow>(
    target,
    database,
    `SELECT n.nspname AS schema, c.relname AS table, a.attname AS column,
            format_type(a.atttypid, a.atttypmod) AS type
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE a.attnum > 0 AND NOT a.attisdropped AND ${userTablesWhere} ORDER BY 1, 2, a.attnum`,
  );
}

export function tableKey(table: TableName): string {
  return `${table.schema}.${table.name}`;
}

export function missingTables(primary: readonly TableName[], replica: readonly TableName[]): TableName[] {
  const present = new Set(replica.map(tableKey));
  return primary.filter((table) => !present.has(tableKey(table)));
}

/** One entry per difference: a table or column the replica lacks, a type that differs, a column it adds. */
export function schemaDrift(primary: readonly ColumnRow[], replica: readonly ColumnRow[]): Drift[] {
  const byTable = (rows: readonly ColumnRow[]) => {
    const tables = new Map<string, Map<string, string>>();
    for (const row of rows) {
      const key = `${row.schema}.${row.table}`;
      const columns = tables.get(key) ?? new Map<string, string>();
      columns.set(row.column, row.type);
      tables.set(key, columns);
    }
    return tables;
  };
  const theirs = byTable(replica);
  const drift: Drift[] = [];
  for (const [table, columns] of byTable(primary)) {
    const copy = theirs.get(table);
    if (copy === undefined) {
      drift.push({ table, difference: "table missing on the replica" });
      continue;
    }
    for (const [column, type] of columns) {
      const theirType = copy.get(column);
      if (theirType === undefined)
        drift.push({ table, difference: `column ${column} missing on the replica` });
      else if (theirType !== type) {
        drift.push({
          table,
          difference: `column ${column}: ${type} on the primary, ${theirType} on the replica`,
        });
      }
    }
    for (const column of copy.keys()) {
      if (!columns.has(column)) drift.push({ table, difference: `column ${column} only on the replica` });
    }
  }
  return drift;
}

/** A PostgreSQL client program: in PATH, else in Debian's folder of the newest installed version. */
export function findPostgresTool(tool: string): string | undefined {
  const dirs = (process.env.PATH ?? "").split(delimiter).filter(Boolean);
  try {
    const versions = readdirSync("/usr/lib/postgresql").filter((name) => /^\d+$/.test(name));
    for (const version of versions.sort((a, b) => Number(b) - Number(a))) {
      dirs.push(join("/usr/lib/postgresql", version, "bin"));
    }
  } catch {}
  for (const dir of dirs) {
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return join(dir, tool);
    } catch {}
  }
  return undefined;
}

export interface SchemaCopy {
  primary: ServerTarget;
  replica: ServerTarget;
  database: string;
  /** Only these tables (with what they own: sequences, indexes, constraints); every object when undefined. */
  tables: TableName[] | undefined;
  /** Kept only when every owning role exists on the replica. */
  keepOwners: boolean;
  /** Kept only when every grantee exists on the replica; grants to `dropGrantsTo` are left out anyway. */
  keepPrivileges: boolean;
  /** The follower role: it reads on the primary and does not exist on the replica. */
  dropGrantsTo: string;
}

const schemaCopyTimeoutMs = 10 * 60_000;

/** pg_dump --schema-only of the primary's database into psql on the replica's, in a single transaction. */
export async function copySchema(copy: SchemaCopy): Promise<void> {
  const args = ["--schema-only", "--no-publications", "--no-subscriptions", "--no-tablespaces"];
  // Quoted identifiers always, so the follower's grants are found by exact text below.
  args.push("--quote-all-identifiers");
  if (!copy.keepOwners) args.push("--no-owner");
  if (!copy.keepPrivileges) args.push("--no-privileges");
  for (const table of copy.tables ?? []) args.push("-t", qualified(table.schema, table.name));
  const dump = await runTool("pg_dump", args, copy.primary, copy.database, undefined);
  const grantee = `"${copy.dropGrantsTo.replace(/"/g, '""')}"`;
  const script = dump
    .split("\n")
    .filter(
      (line) =>
        !(
          /^(GRANT|REVOKE) /.test(line) &&
          (line.endsWith(` TO ${grantee};`) || line.endsWith(` FROM ${grantee};`))
        ),
    )
    .join("\n");
  const psqlArgs = ["--no-psqlrc", "--quiet", "--single-transaction", "-v", "ON_ERROR_STOP=1", "-f", "-"];
  await runTool("psql", psqlArgs, copy.replica, copy.database, script);
}

/** The environment of a client program (pg_dump, psql, pg_restore): the password in PGPASSWORD, never argv. */
export function clientToolEnv(parts: ConnectionParts): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PGCONNECT_TIMEOUT: "10", PGAPPNAME: "tandem-provision" };
  delete env.PGPASSWORD;
  delete env.PGSERVICE;
  if (parts.password !== undefined) env.PGPASSWORD = parts.password;
  return env;
}

/** Runs a client program against `database` of `target`; its password in PGPASSWORD, never in argv. */
export function runTool(
  tool: string,
  args: string[],
  target: ServerTarget,
  database: string,
  input: string | undefined,
): Promise<string> {
  const binary = findPostgresTool(tool);
  const where = describeServer(target, database);
  if (binary === undefined) {
    return Promise.reject(new Error(`${tool} is not installed (apt-get install postgresql-client)`));
  }
  const parts = connectionParts(target, database);
  return new Promise((resolve, reject) => {
    const child = spawn(binary, [...args, `--dbname=${libpqConninfo(parts, false)}`], {
      env: clientToolEnv(parts),
      stdio: ["pipe", "pipe", "pipe"],
      timeout: schemaCopyTimeoutMs,
    });
    const stdout: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (text: string) => {
      stderr = (stderr + text).slice(-4000);
    });
    child.stdin.on("error", () => {});
    child.stdin.end(input ?? "");
    child.once("error", (error) => reject(new Error(`${tool} on ${where}: ${error.message}`)));
    child.once("close", (code, signal) => {
      if (code === 0) return resolve(Buffer.concat(stdout).toString("utf8"));
      const reason = maskSecret(stderr.trim(), parts.password) || `exit ${code ?? signal}`;
      reject(new Error(`${tool} on ${where} failed: ${reason}`));
    });
  });
}

/** What a step of ensureReplicated works on. */
export interface StepInputs {
  connections: PostgresConnections;
  primary: ServerTarget;
  replica: ServerTarget;
  database: string;
  /** The follower role's name. */
  follower: string;
  logger: Logger;
}

/**
 * Creates on the replica the tables it lacks: the whole schema (types, functions, sequences...) while it has
 * no table yet, else only the missing tables (with their sequences, indexes and constraints) in their schemas.
 */
export async function ensureSchema(inputs: StepInputs): Promise<void> {
  const { connections, primary, replica, database, logger } = inputs;
  const [onPrimary, onReplica] = await Promise.all([
    listTables(connections, primary, database),
    listTables(connections, replica, database),
  ]);
  const missing = missingTables(onPrimary, onReplica);
  if (missing.length === 0) return;
  const whole = onReplica.length === 0;
  // Owners (and the bootstrap superuser, which owns without a pg_shdepend row) and grantees on the primary.
  const roles = await connections.query<{ role: string; kind: string }>(
    primary,
    database,
    `SELECT rolname AS role, 'o' AS kind FROM pg_roles WHERE oid = 10
     UNION SELECT r.rolname, s.deptype::text FROM pg_shdepend s JOIN pg_roles r ON r.oid = s.refobjid
      WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND s.refclassid = 'pg_authid'::regclass AND s.deptype IN ('o', 'a')`,
  );
  const present = await connections.query<{ role: string }>(
    replica,
    undefined,
    "SELECT rolname AS role FROM pg_roles WHERE rolname = ANY($1)",
    [[...new Set(roles.map((r) => r.role))]],
  );
  const exists = new Set(present.map((row) => row.role));
  const keepOwners = roles.filter((r) => r.kind === "o").every((r) => exists.has(r.role));
  const keepPrivileges = roles
    .filter((r) => r.kind === "a" && r.role !== inputs.follower)
    .every((r) => exists.has(r.role));
  if (!whole) {
    for (const schema of new Set(missing.map((table) => table.schema))) {
      await connections.query(replica, database, `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    }
  }
  await copySchema({
    primary,
    replica,
    database,
    tables: whole ? undefined : missing,
    keepOwners,
    keepPrivileges,
    dropGrantsTo: inputs.follower,
  });
  logger.info(
    { tables: missing.map(tableKey), whole, keepOwners, keepPrivileges },
    "schema copied to the replica",
  );
}
