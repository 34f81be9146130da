// The replication slot on the primary and the subscription on the replica that uses it, one of each per
// replica and database, under one name (subscriptionName). The slot is made first, by Tandem, and the
// subscription then takes it with create_slot = false: a pass cut off between the two finds the slot and
// reuses it, so there is never a second slot, and nothing is lost, because the new subscription's initial
// copy takes each table as of its own snapshot and applies only the changes after it.
import type { Logger } from "pino";
import type { PostgresConnections } from "./postgres_connections.ts";
import { publicationName, qualified, quoteIdent, quoteLiteral, type ServerTarget } from "./postgres_names.ts";

export interface SubscriptionInputs {
  connections: PostgresConnections;
  primary: ServerTarget;
  replica: ServerTarget;
  database: string;
  /** The subscription's and its slot's name. */
  name: string;
  /** How the replica reaches the primary's database (libpq keywords, as the follower). */
  conninfo: string;
  logger: Logger;
}

const slotReleaseWaitMs = 15_000;

export async function ensureSlot(inputs: SubscriptionInputs): Promise<void> {
  const { connections, primary, database, name, logger } = inputs;
  const [slot] = await connections.query<{ database: string | null; plugin: string | null }>(
    primary,
    undefined,
    "SELECT database, plugin FROM pg_replication_slots WHERE slot_name = $1",
    [name],
  );
  if (slot === undefined) {
    await connections.query(primary, database, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [
      name,
    ]);
    logger.info({ slot: name }, "replication slot created on the primary");
  } else if (slot.database !== database || slot.plugin !== "pgoutput") {
    throw new Error(
      `${primary.name}: replication slot ${name} is for database ${slot.database} with ${slot.plugin}, not for ${database} with pgoutput: drop it (SELECT pg_drop_replication_slot('${name}'))`,
    );
  }
}

/** Creates the subscription if missing (true), else mends its connection, slot and enabled state (false). */
export async function ensureSubscription(inputs: SubscriptionInputs): Promise<boolean> {
  const { connections, replica, database, name, conninfo, logger } = inputs;
  const sub = quoteIdent(name);
  const [existing] = await subscriptionOf(connections, replica, database, name);
  if (existing === undefined) {
    await refuseWhenHoldingRows(inputs);
    await connections.query(
      replica,
      database,
      `CREATE SUBSCRIPTION ${sub} CONNECTION ${quoteLiteral(conninfo)} PUBLICATION ${quoteIdent(publicationName)}
         WITH (create_slot = false, slot_name = ${quoteLiteral(name)}, copy_data = true, enabled = true)`,
    );
    logger.info({ subscription: name }, "subscription created on the replica");
    return true;
  }
  if (existing.conninfo !== conninfo) {
    await connections.query(
      replica,
      database,
      `ALTER SUBSCRIPTION ${sub} CONNECTION ${quoteLiteral(conninfo)}`,
    );
    logger.info({ subscription: name }, "subscription's connection updated");
  }
  if (existing.slot !== name) {
    await connections.query(
      replica,
      database,
      `ALTER SUBSCRIPTION ${sub} SET (slot_name = ${quoteLiteral(name)})`,
    );
  }
  if (!existing.enabled) {
    await connections.query(replica, database, `ALTER SUBSCRIPTION ${sub} ENABLE`);
    logger.info({ subscription: name }, "subscription enabled");
  }
  return false;
}

/** A new subscription copies every table: rows already there (a subscription dropped by hand) would clash. */
async function refuseWhenHoldingRows(inputs: SubscriptionInputs): Promise<void> {
  const { connections, replica, database } = inputs;
  const tables = await connections.query<{ schema: string; name: string }>(
    replica,
    database,
    `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND c.relpersistence = 'p'
        AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'`,
  );
  for (const table of tables) {
    const [row] = await connections.query<{ any: boolean }>(
      replica,
      database,
      `SELECT EXISTS (SELECT 1 FROM ${qualified(table.schema, table.name)}) AS any`,
    );
    if (row?.any) {
      throw new Error(
        `${replica.name}: database ${database} has rows (in ${table.schema}.${table.name}) but no subscription, and a new one copies every table: empty its tables or drop it on ${replica.name} to copy it afresh`,
      );
    }
  }
}

/** REFRESH PUBLICATION when the publication's tables and the subscription's differ (tables added or dropped). */
export async function refreshWhenBehind(inputs: SubscriptionInputs): Promise<void> {
  const { connections, primary, replica, database, name, logger } = inputs;
  const published = await connections.query<{ table: string }>(
    primary,
    database,
    "SELECT format('%s.%s', schemaname, tablename) AS table FROM pg_publication_tables WHERE pubname = $1",
    [publicationName],
  );
  const subscribed = await connections.query<{ table: string }>(
    replica,
    database,
    `SELECT format('%s.%s', n.nspname, c.relname) AS table FROM pg_subscription_rel r
       JOIN pg_class c ON c.oid = r.srrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_subscription s ON s.oid = r.srsubid
      WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [name],
  );
  const theirs = new Set(subscribed.map((row) => row.table));
  if (published.length === theirs.size && published.every((row) => theirs.has(row.table))) return;
  await connections.query(replica, database, `ALTER SUBSCRIPTION ${quoteIdent(name)} REFRESH PUBLICATION`);
  logger.info({ subscription: name }, "subscription refreshed (tables added or dropped)");
}

export function subscriptionOf(
  connections: PostgresConnections,
  replica: ServerTarget,
  database: string,
  name: string,
) {
  return connections.query<{ enabled: boolean; slot: string | null; conninfo: string }>(
    replica,
    database,
    `SELECT subenabled AS enabled, subslotname AS slot, subconninfo AS conninfo FROM pg_subscription
      WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [name],
  );
}

/**
 * An orphan's subscription: disabled, detached from its slot (so DROP SUBSCRIPTION does not reach for the
 * primary, whose database may be gone), dropped; then its slot dropped on the primary if it is still there.
 */
export async function dropSubscription(
  inputs: Omit<SubscriptionInputs, "conninfo">,
  fence: () => void,
): Promise<void> {
  const { connections, replica, database, name, logger } = inputs;
  const sub = quoteIdent(name);
  const [existing] = await subscriptionOf(connections, replica, database, name);
  if (existing !== undefined) {
    fence();
    if (existing.enabled) await connections.query(replica, database, `ALTER SUBSCRIPTION ${sub} DISABLE`);
    fence();
    if (existing.slot !== null) {
      await connections.query(replica, database, `ALTER SUBSCRIPTION ${sub} SET (slot_name = NONE)`);
    }
    fence();
    await connections.query(replica, database, `DROP SUBSCRIPTION ${sub}`);
    logger.info({ subscription: name }, "orphan's subscription dropped");
  }
  fence();
  await dropSlot(inputs);
}

/** Drops the slot if it is there, once the walsender of the just-disabled subscription has let it go. */
async function dropSlot(inputs: Omit<SubscriptionInputs, "conninfo">): Promise<void> {
  const { connections, primary, name, logger } = inputs;
  const deadline = Date.now() + slotReleaseWaitMs;
  for (;;) {
    const [slot] = await connections.query<{ active: boolean }>(
      primary,
      undefined,
      "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
      [name],
    );
    if (slot === undefined) return;
    if (!slot.active) {
      await connections.query(primary, undefined, "SELECT pg_drop_replication_slot($1)", [name]);
      logger.info({ slot: name }, "replication slot dropped on the primary");
      return;
    }
    if (Date.now() > deadline)
      throw new Error(`${primary.name}: replication slot ${name} is still in use: not dropped`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
