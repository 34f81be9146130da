// Preconditions of logical replication, each with the fix to print: every server reachable with the
// configured credentials and at PostgreSQL 10 or later; on the primary wal_level = logical, replication
// slots and WAL senders free for every subscription, and no published table without a key or replica
// identity; on each replica, logical replication workers (and the worker processes they come from).
import type { DatabaseInfo, Precondition } from "./engine.ts";
import { type PostgresConnections, PostgresServerError } from "./postgres_connections.ts";
import { qualified, type ServerTarget, subscriptionName } from "./postgres_names.ts";

/** Slots and WAL senders an initial copy uses besides the subscription's own (max_sync_workers_per_subscription). */
const copyHeadroom = 2;
const logicalVersionMin = 100000;

interface Settings {
  version_num: number;
  version: string;
  wal_level: string;
  max_replication_slots: number;
  max_wal_senders: number;
  max_logical_replication_workers: number;
  max_worker_processes: number;
}

export interface CheckInputs {
  connections: PostgresConnections;
  primary: ServerTarget;
  replicas: ServerTarget[];
  /** The selected databases, or the reason they could not be listed. */
  databases: () => Promise<DatabaseInfo[]>;
}

async function settingsOf(
  connections: PostgresConnections,
  server: ServerTarget,
  problems: Precondition[],
): Promise<Settings | undefined> {
  try {
    const [row] = await connections.query<Settings>(
      server,
      undefined,
      `SELECT current_setting('server_version_num')::int AS version_num, current_setting('server_version') AS version,
              current_setting('wal_level') AS wal_level,
              current_setting('max_replication_slots')::int AS max_replication_slots,
              current_setting('max_wal_senders')::int AS max_wal_senders,
              coalesce(current_setting('max_logical_replication_workers', true), '0')::int AS max_logical_replication_workers,
              current_setting('max_worker_processes')::int AS max_worker_processes`,
    );
    if (row === undefined) throw new Error("no settings row");
    if (row.version_num < logicalVersionMin) {
      problems.push({
        server: server.name,
        problem: `PostgreSQL ${row.version} has no logical replication (10 or later is needed; 15 is tested)`,
        fix: `upgrade ${server.name} to PostgreSQL 10 or later`,
      });
      return undefined;
    }
    return row;
  } catch (error) {
    if (!(error instanceof PostgresServerError)) throw error;
    problems.push({
      server: server.name,
      problem: error.message,
      fix: `check that ${server.name} runs and that the URL, user and password configured for it are right`,
    });
    return undefined;
  }
}

export async function checkPreconditions(inputs: CheckInputs): Promise<Precondition[]> {
  const { connections, primary, replicas } = inputs;
  const problems: Precondition[] = [];
  const primarySettings = await settingsOf(connections, primary, problems);
  const replicaSettings = await Promise.all(
    replicas.map((replica) => settingsOf(connections, replica, problems)),
  );
  if (primarySettings === undefined) return problems;
  const databases = await inputs.databases();
  if (primarySettings.wal_level !== "logical") {
    problems.push({
      server: primary.name,
      problem: `wal_level is ${primarySettings.wal_level}: logical replication needs wal_level = logical`,
      fix: `ALTER SYSTEM SET wal_level = logical; then restart ${primary.name}`,
    });
  }
  await checkSenders(connections, primary, replicas, databases, primarySettings, problems);
  for (const database of databases) await checkKeys(connections, primary, database.name, problems);
  for (const [index, replica] of replicas.entries()) {
    const settings = replicaSettings[index];
    if (settings !== undefined) await checkWorkers(connections, replica, databases, settings, problems);
  }
  return problems;
}

async function checkSenders(
  connections: PostgresConnections,
  primary: ServerTarget,
  replicas: ServerTarget[],
  databases: DatabaseInfo[],
  settings: Settings,
  problems: Precondition[],
): Promise<void> {
  const expected = new Set(replicas.flatMap((r) => databases.map((d) => subscriptionName(r.name, d.name))));
  const slots = await connections.query<{ name: string }>(
    primary,
    undefined,
    "SELECT slot_name AS name FROM pg_replication_slots",
  );
  const missing = [...expected].filter((name) => !slots.some((slot) => slot.name === name)).length;
  const free = settings.max_replication_slots - slots.length;
  if (missing > 0 && free < missing + copyHeadroom) {
    const needed = slots.length + missing + copyHeadroom;
    problems.push({
      server: primary.name,
      problem: `${free} of ${settings.max_replication_slots} replication slots are free; ${missing} more are needed (one per database per replica) and ${copyHeadroom} for initial copies`,
      fix: `ALTER SYSTEM SET max_replication_slots = ${needed}; then restart ${primary.name}`,
    });
  }
  const [senders] = await connections.query<{ others: number }>(
    primary,
    undefined,
    "SELECT count(*) FILTER (WHERE NOT application_name = ANY($1))::int AS others FROM pg_stat_replication",
    [[...expected]],
  );
  const needed = (senders?.others ?? 0) + expected.size + copyHeadroom;
  if (settings.max_wal_senders < needed) {
    problems.push({
      server: primary.name,
      problem: `max_wal_senders is ${settings.max_wal_senders}; ${expected.size} subscriptions, ${senders?.others ?? 0} other senders and ${copyHeadroom} initial copies need ${needed}`,
      fix: `ALTER SYSTEM SET max_wal_senders = ${needed}; then restart ${primary.name}`,
    });
  }
}

/** Tables that cannot be published safely: updates and deletes on them fail once in a publication. */
async function checkKeys(
  connections: PostgresConnections,
  primary: ServerTarget,
  database: string,
  problems: Precondition[],
): Promise<void> {
  const tables = await connections.query<{ schema: string; name: string }>(
    primary,
    database,
    `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND c.relpersistence = 'p'
        AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
        AND (c.relreplident = 'n' OR (c.relreplident = 'd'
             AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))
      ORDER BY 1, 2`,
  );
  for (const table of tables) {
    const name = qualified(table.schema, table.name);
    problems.push({
      server: primary.name,
      problem: `table ${name} in database ${database} has no primary key or replica identity: once published, updates and deletes on it fail`,
      fix: `ALTER TABLE ${name} REPLICA IDENTITY FULL; (in database ${database}), or add a primary key`,
    });
  }
}

async function checkWorkers(
  connections: PostgresConnections,
  replica: ServerTarget,
  databases: DatabaseInfo[],
  settings: Settings,
  problems: Precondition[],
): Promise<void> {
  const ours = new Set(databases.map((d) => subscriptionName(replica.name, d.name)));
  const [row] = await connections.query<{ others: number }>(
    replica,
    undefined,
    "SELECT count(*) FILTER (WHERE subenabled AND NOT subname = ANY($1))::int AS others FROM pg_subscription",
    [[...ours]],
  );
  // One apply worker per subscription, and one more at least to copy tables.
  const needed = (row?.others ?? 0) + ours.size + 1;
  if (settings.max_logical_replication_workers < needed) {
    problems.push({
      server: replica.name,
      problem: `max_logical_replication_workers is ${settings.max_logical_replication_workers}; ${ours.size} subscriptions and ${row?.others ?? 0} others need ${needed} (one apply worker each and one to copy)`,
      fix: `ALTER SYSTEM SET max_logical_replication_workers = ${needed + copyHeadroom}; then restart ${replica.name}`,
    });
  }
  // Before PostgreSQL 18, a replica's max_replication_slots also caps its replication origins: one per
  // subscription and one per table being copied. Short, a subscription's apply worker cannot start, and
  // the server says so only in its log (its tables would look forever "copying").
  if (settings.version_num < 180000) {
    const origins = (row?.others ?? 0) + ours.size + copyHeadroom;
    if (settings.max_replication_slots < origins) {
      problems.push({
        server: replica.name,
        problem: `max_replication_slots is ${settings.max_replication_slots}; on a replica it also limits replication origins: ${ours.size} subscriptions, ${row?.others ?? 0} others and ${copyHeadroom} initial copies need ${origins}`,
        fix: `ALTER SYSTEM SET max_replication_slots = ${origins}; then restart ${replica.name}`,
      });
    }
  }
  const workers = Math.max(needed, settings.max_logical_replication_workers) + 1;
  if (settings.max_worker_processes < workers) {
    problems.push({
      server: replica.name,
      problem: `max_worker_processes is ${settings.max_worker_processes}: logical replication workers and their launcher need ${workers}`,
      fix: `ALTER SYSTEM SET max_worker_processes = ${workers + copyHeadroom}; then restart ${replica.name}`,
    });
  }
}
