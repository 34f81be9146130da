// The state, lag and drift of one database on one replica, read only. PostgreSQL 15 keeps a subscription's
// worker errors in the server log only; pg_stat_subscription_stats counts them, so a count that grew since
// the previous look is reported as an error (the counts are remembered per subscription by the caller).
import type { ReplicaDatabaseStatus, ReplicaState } from "./engine.ts";
import { type PostgresConnections, PostgresServerError } from "./postgres_connections.ts";
import { type ServerTarget, subscriptionName } from "./postgres_names.ts";
import { listColumns, schemaDrift } from "./postgres_schema.ts";

export interface StatusInputs {
  connections: PostgresConnections;
  primary: ServerTarget;
  replica: ServerTarget;
  database: string;
  /** Error counts seen at the previous look, per subscription; updated here. */
  errorCounts: Map<string, number>;
}

interface SubscriptionRow {
  oid: number;
  enabled: boolean;
  slot: string | null;
}

interface WorkerRow {
  pid: number | null;
  sent_seconds: string | null;
}

/** Connection failures become a reason (status never throws for a server that is down). */
async function attempt<T>(read: () => Promise<T>): Promise<{ value: T } | { error: string }> {
  try {
    return { value: await read() };
  } catch (error) {
    if (error instanceof PostgresServerError) return { error: error.message };
    throw error;
  }
}

export async function readStatus(inputs: StatusInputs): Promise<ReplicaDatabaseStatus> {
  const { connections, primary, replica, database } = inputs;
  const name = subscriptionName(replica.name, database);
  const result = (
    state: ReplicaState,
    lastError: string | null,
    more: Partial<ReplicaDatabaseStatus> = {},
  ) => ({
    database,
    replica: replica.name,
    state,
    lagBytes: null,
    lagSeconds: null,
    drift: [],
    lastError,
    ...more,
  });
  const exists = await attempt(() =>
    connections.query(replica, undefined, "SELECT 1 FROM pg_database WHERE datname = $1", [database]),
  );
  if ("error" in exists) return result("error", exists.error);
  if (exists.value.length === 0) return result("pending", null);

  const replicaSide = await attempt(() => readReplicaSide(connections, replica, database, name));
  if ("error" in replicaSide) return result("error", replicaSide.error);
  const { subscription, states, worker, errorCount, columns } = replicaSide.value;
  const primarySide = await attempt(async () => ({
    slot: await connections.query<{ lag: string | null }>(
      primary,
      undefined,
      "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS lag FROM pg_replication_slots WHERE slot_name = $1",
      [name],
    ),
    columns: await listColumns(connections, primary, database),
  }));
  const drift = "value" in primarySide ? schemaDrift(primarySide.value.columns, columns) : [];
  if (subscription === undefined) return result("pending", null, { drift });

  const previous = inputs.errorCounts.get(name);
  inputs.errorCounts.set(name, errorCount);
  const lagBytes = "value" in primarySide ? numberOrNull(primarySide.value.slot[0]?.lag) : null;
  const caughtUp = lagBytes !== null && lagBytes <= 0;
  const lagSeconds = caughtUp ? 0 : worker === undefined ? null : numberOrNull(worker.sent_seconds);
  const more = { drift, lagBytes, lagSeconds: lagSeconds === null ? null : Math.max(0, lagSeconds) };

  if ("error" in primarySide) return result("error", primarySide.error, more);
  if (!subscription.enabled) return result("error", `subscription ${name} is disabled`, more);
  if (primarySide.value.slot.length === 0) {
    return result("error", `replication slot ${name} is missing on the primary`, more);
  }
  if (previous !== undefined && errorCount > previous) {
    const count = errorCount - previous;
    return result(
      "error",
      `${count} replication error(s) since the previous look (see ${replica.name}'s server log)`,
      more,
    );
  }
  if (states.some((state) => state !== "r" && state !== "s")) return result("copying", null, more);
  if (worker?.pid == null) {
    return errorCount > 0
      ? result(
          "error",
          `no apply worker runs for subscription ${name} (see ${replica.name}'s server log)`,
          more,
        )
      : result("pending", null, more);
  }
  return result("streaming", null, more);
}

async function readReplicaSide(
  connections: PostgresConnections,
  replica: ServerTarget,
  database: string,
  name: string,
) {
  const [subscription] = await connections.query<SubscriptionRow>(
    replica,
    database,
    `SELECT s.oid::int AS oid, s.subenabled AS enabled, s.subslotname AS slot FROM pg_subscription s
      WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [name],
  );
  const columns = await listColumns(connections, replica, database);
  if (subscription === undefined)
    return { subscription, states: [], worker: undefined, errorCount: 0, columns };
  const states = await connections.query<{ state: string }>(
    replica,
    database,
    "SELECT srsubstate AS state FROM pg_subscription_rel WHERE srsubid = $1",
    [subscription.oid],
  );
  const [worker] = await connections.query<WorkerRow>(
    replica,
    database,
    `SELECT pid, EXTRACT(EPOCH FROM now() - last_msg_send_time)::text AS sent_seconds
       FROM pg_stat_subscription WHERE subid = $1 AND relid IS NULL`,
    [subscription.oid],
  );
  // pg_stat_subscription_stats is PostgreSQL 15's; before it, worker errors are in the server log only.
  const [{ version } = { version: 0 }] = await connections.query<{ version: number }>(
    replica,
    database,
    "SELECT current_setting('server_version_num')::int AS version",
  );
  const [stats] =
    version >= 150000
      ? await connections.query<{ errors: number }>(
          replica,
          database,
          "SELECT (apply_error_count + sync_error_count)::int AS errors FROM pg_stat_subscription_stats WHERE subid = $1",
          [subscription.oid],
        )
      : [];
  return {
    subscription,
    states: states.map((row) => row.state),
    worker,
    errorCount: stats?.errors ?? 0,
    columns,
  };
}

function numberOrNull(text: string | null | undefined): number | null {
  if (text === null || text === undefined) return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}
