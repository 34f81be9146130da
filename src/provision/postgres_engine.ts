// PostgreSQL logical replication as a ProvisionEngine. For each database and replica, in idempotent steps
// each behind the fence: the follower role on the primary; the database on the replica (owner, encoding,
// collation, a marker comment); the tables it lacks (pg_dump --schema-only); the publication `tandem` and
// the follower's SELECT grants on the primary; the replication slot on the primary, then the subscription on
// the replica using it (create_slot = false); a refresh when the publication has tables the subscription
// has not. Slot and subscription share one name per replica and database (postgres_names.ts).
import type { Readable } from "node:stream";
import type { Logger } from "pino";
import type { DatabaseInfo, Fence, Precondition, ProvisionEngine, ReplicaDatabaseStatus } from "./engine.ts";
import { checkPreconditions } from "./postgres_check.ts";
import { PostgresConnections } from "./postgres_connections.ts";
import { dumpStream } from "./postgres_dump.ts";
import { ensureFollowerRole, type FollowerRole } from "./postgres_follower.ts";
import {
  connectionParts,
  libpqConninfo,
  markerPrefix,
  quoteIdent,
  quoteLiteral,
  type ServerTarget,
  selected,
  subscriptionName,
} from "./postgres_names.ts";
import { ensurePublication } from "./postgres_publication.ts";
import { ensureSchema } from "./postgres_schema.ts";
import { readStatus } from "./postgres_status.ts";
import {
  dropSubscription,
  ensureSlot,
  ensureSubscription,
  refreshWhenBehind,
} from "./postgres_subscription.ts";

export interface PostgresEngineOptions {
  primary: ServerTarget;
  replicas: ServerTarget[];
  /** Database name patterns (`*`, `?`); default every database. */
  include?: string[];
  exclude?: string[];
  follower: FollowerRole;
  logger: Logger;
}

export class PostgresEngine implements ProvisionEngine {
  private readonly primary: ServerTarget;
  private readonly replicas: ServerTarget[];
  private readonly include: string[];
  private readonly exclude: string[];
  private readonly follower: FollowerRole;
  private readonly logger: Logger;
  private readonly connections: PostgresConnections;
  private readonly errorCounts = new Map<string, number>();

  constructor(options: PostgresEngineOptions) {
    this.primary = options.primary;
    this.replicas = options.replicas;
    this.include = options.include ?? ["*"];
    this.exclude = options.exclude ?? [];
    this.follower = { ...options.follower };
    this.logger = options.logger;
    const servers = [options.primary, ...options.replicas];
    this.connections = new PostgresConnections(options.logger, () => [
      this.follower.password,
      ...servers.map((server) => connectionParts(server).password),
    ]);
    for (const server of servers) connectionParts(server);
    const names = servers.map((server) => server.name);
    if (new Set(names).size !== names.length) {
      throw new Error(`server names must differ: ${names.join(", ")}`);
    }
  }

  check(): Promise<Precondition[]> {
    return checkPreconditions({
      connections: this.connections,
      primary: this.primary,
      replicas: this.replicas,
      databases: () => this.databases(),
    });
  }

  async databases(): Promise<DatabaseInfo[]> {
    const rows = await this.connections.query<DatabaseInfo>(
      this.primary,
      undefined,
      `SELECT datname AS name, pg_get_userbyid(datdba) AS owner, pg_encoding_to_char(encoding) AS encoding,
              datcollate AS collate, datctype AS ctype
         FROM pg_database WHERE NOT datistemplate AND datallowconn AND datname <> 'postgres' ORDER BY datname`,
    );
    return rows.filter((row) => selected(row.name, this.include, this.exclude));
  }

  async dump(database: string): Promise<{ stream: Readable; server: string }> {
    // A replica whose copy is streaming spares the primary the dump's load; else the primary.
    for (const replica of this.replicas) {
      const status = await this.status(database, replica.name).catch(() => null);
      if (status?.state === "streaming")
        return { stream: dumpStream(replica, database), server: replica.name };
    }
    return { stream: dumpStream(this.primary, database), server: this.primary.name };
  }

  async ensureReplicated(
    database: DatabaseInfo,
    replicaName: string,
    fence: Fence,
  ): Promise<ReplicaDatabaseStatus> {
    const replica = this.replicaNamed(replicaName);
    const logger = this.logger.child({ database: database.name, replica: replica.name });
    const steps = {
      connections: this.connections,
      primary: this.primary,
      replica,
      database: database.name,
      logger,
    };
    const subscription = {
      ...steps,
      name: subscriptionName(replica.name, database.name),
      conninfo: this.conninfo(database.name),
    };
    fence();
    await ensureFollowerRole(this.connections, this.primary, this.follower, logger);
    fence();
    await this.ensureReplicaDatabase(database, replica, logger);
    fence();
    await ensureSchema({ ...steps, follower: this.follower.role });
    fence();
    await ensurePublication({ ...steps, follower: this.follower.role });
    fence();
    await ensureSlot(subscription);
    fence();
    if (!(await ensureSubscription(subscription))) {
      fence();
      await refreshWhenBehind(subscription);
    }
    return this.status(database.name, replica.name);
  }

  status(database: string, replicaName: string): Promise<ReplicaDatabaseStatus> {
    return readStatus({
      connections: this.connections,
      primary: this.primary,
      replica: this.replicaNamed(replicaName),
      database,
      errorCounts: this.errorCounts,
    });
  }

  async orphans(replicaName: string): Promise<string[]> {
    const replica = this.replicaNamed(replicaName);
    const wanted = new Set((await this.databases()).map((d) => d.name));
    const rows = await this.connections.query<{
      name: string;
      comment: string | null;
      subscriptions: string[];
    }>(
      replica,
      undefined,
      `SELECT d.datname AS name, shobj_description(d.oid, 'pg_database') AS comment,
              array(SELECT s.subname FROM pg_subscription s WHERE s.subdbid = d.oid)::text[] AS subscriptions
         FROM pg_database d WHERE NOT d.datistemplate AND d.datname <> 'postgres' ORDER BY d.datname`,
    );
    const marker = `${markerPrefix}${this.primary.name}`;
    const ours = rows.filter(
      (row) => row.comment === marker || row.subscriptions.includes(subscriptionName(replica.name, row.name)),
    );
    return ours.map((row) => row.name).filter((name) => !wanted.has(name));
  }

  async dropOrphan(database: string, replicaName: string, fence: Fence): Promise<void> {
    const replica = this.replicaNamed(replicaName);
    if (!(await this.orphans(replica.name)).includes(database)) {
      throw new Error(`${database} on ${replica.name} is not an orphan of ${this.primary.name}: not dropped`);
    }
    if (database === connectionParts(replica).database) {
      throw new Error(`${database} is the database Tandem connects to on ${replica.name}: not dropped`);
    }
    const logger = this.logger.child({ database, replica: replica.name });
    const name = subscriptionName(replica.name, database);
    const inputs = { connections: this.connections, primary: this.primary, replica, database, name, logger };
    await dropSubscription(inputs, fence);
    fence();
    await this.connections.closeDatabase(replica, database);
    const [{ version } = { version: 0 }] = await this.connections.query<{ version: number }>(
      replica,
      undefined,
      "SELECT current_setting('server_version_num')::int AS version",
    );
    const force = version >= 130000 ? " WITH (FORCE)" : "";
    await this.connections.query(
      replica,
      undefined,
      `DROP DATABASE IF EXISTS ${quoteIdent(database)}${force}`,
    );
    logger.info("orphan database dropped on the replica");
  }

  async release(database: string, replicaName: string, fence: Fence): Promise<void> {
    const replica = this.replicaNamed(replicaName);
    const logger = this.logger.child({ database, replica: replica.name });
    const name = subscriptionName(replica.name, database);
    await dropSubscription(
      { connections: this.connections, primary: this.primary, replica, database, name, logger },
      fence,
    );
    await this.connections.closeDatabase(this.primary, database);
    logger.info("replication released: the copy stays on the replica");
  }

  async applyMode(mode: "async" | "sync" | "auto", fence: Fence): Promise<string> {
    // The subscriptions Tandem runs from this primary: their slots, named as the subscriptions, which
    // are also the application names their walsenders report (what synchronous_standby_names lists).
    const slots = await this.connections.query<{ name: string }>(
      this.primary,
      undefined,
      "SELECT slot_name AS name FROM pg_replication_slots WHERE slot_type = 'logical' AND slot_name LIKE 'tandem\\_%' ORDER BY 1",
    );
    const [{ current } = { current: "" }] = await this.connections.query<{ current: string }>(
      this.primary,
      undefined,
      "SELECT current_setting('synchronous_standby_names') AS current",
    );
    const ours = isTandemStandbyList(current);
    // sync: a commit on the primary waits until one of them has it (any replica, any of its databases'
    // walsenders: each confirms the WAL it has read). async: Tandem's own list, if it set one, goes.
    // auto: the primary's setting, whoever wrote it, is what the replicas follow: left as it is.
    const desired =
      mode === "sync" && slots.length > 0
        ? `ANY 1 (${slots.map((slot) => quoteIdent(slot.name)).join(", ")})`
        : mode === "async" && ours
          ? ""
          : current;
    if (mode === "auto") return current;
    if (mode === "sync" && current !== "" && !ours) {
      throw new Error(
        `${this.primary.name} already has synchronous_standby_names = '${current}', set outside Tandem: not replaced (mode sync)`,
      );
    }
    if (desired === current) return current;
    fence();
    await this.connections.query(
      this.primary,
      undefined,
      desired === ""
        ? "ALTER SYSTEM RESET synchronous_standby_names"
        : `ALTER SYSTEM SET synchronous_standby_names = ${quoteLiteral(desired)}`,
    );
    await this.connections.query(this.primary, undefined, "SELECT pg_reload_conf()");
    this.logger.info({ synchronousStandbyNames: desired }, "synchronous standbys set on the primary");
    return desired;
  }

  useFollowerPassword(password: string): void {
    this.follower.password = password;
  }

  async rotatePassword(password: string, fence: Fence): Promise<void> {
    fence();
    this.follower.password = password;
    await ensureFollowerRole(this.connections, this.primary, this.follower, this.logger, true);
    const failures: string[] = [];
    for (const replica of this.replicas) {
      try {
        const subscriptions = await this.connections.query<{ name: string; database: string }>(
          replica,
          undefined,
          `SELECT s.subname AS name, d.datname AS database FROM pg_subscription s
             JOIN pg_database d ON d.oid = s.subdbid ORDER BY 2`,
        );
        for (const { name, database } of subscriptions) {
          if (name !== subscriptionName(replica.name, database)) continue;
          fence();
          const conninfo = quoteLiteral(this.conninfo(database));
          await this.connections.query(
            replica,
            database,
            `ALTER SUBSCRIPTION ${quoteIdent(name)} CONNECTION ${conninfo}`,
          );
        }
      } catch (error) {
        if (error instanceof Error && error.name === "StaleTermError") throw error;
        failures.push(error instanceof Error ? error.message : String(error));
      }
    }
    if (failures.length > 0) {
      throw new Error(`the follower's password is set on the primary, not yet on: ${failures.join("; ")}`);
    }
    this.logger.info({ role: this.follower.role }, "follower password rotated");
  }

  close(): Promise<void> {
    return this.connections.close();
  }

  private replicaNamed(name: string): ServerTarget {
    const replica = this.replicas.find((r) => r.name === name);
    if (replica === undefined) throw new Error(`no replica named ${name}`);
    return replica;
  }

  /** How the replica reaches the primary's database: as the follower, over the primary's configured address. */
  private conninfo(database: string): string {
    const parts = connectionParts(this.primary, database);
    return libpqConninfo({ ...parts, user: this.follower.role, password: this.follower.password }, true);
  }

  private async ensureReplicaDatabase(
    database: DatabaseInfo,
    replica: ServerTarget,
    logger: Logger,
  ): Promise<void> {
    const [existing] = await this.connections.query<{ comment: string | null }>(
      replica,
      undefined,
      "SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1",
      [database.name],
    );
    if (existing === undefined) {
      const [owner] = await this.connections.query(
        replica,
        undefined,
        "SELECT 1 FROM pg_roles WHERE rolname = $1",
        [database.owner],
      );
      if (owner === undefined) {
        await this.connections.query(replica, undefined, `CREATE ROLE ${quoteIdent(database.owner)} NOLOGIN`);
        logger.info({ role: database.owner }, "owner role created on the replica (NOLOGIN)");
      }
      await this.connections.query(
        replica,
        undefined,
        `CREATE DATABASE ${quoteIdent(database.name)} OWNER ${quoteIdent(database.owner)}
           ENCODING ${quoteLiteral(database.encoding)} LC_COLLATE ${quoteLiteral(database.collate)}
           LC_CTYPE ${quoteLiteral(database.ctype)} TEMPLATE template0`,
      );
      logger.info("database created on the replica");
    }
    // Also after a pass cut off between CREATE DATABASE and this: the subscription to come makes it ours anyway.
    if (existing?.comment == null) {
      const marker = quoteLiteral(`${markerPrefix}${this.primary.name}`);
      await this.connections.query(
        replica,
        undefined,
        `COMMENT ON DATABASE ${quoteIdent(database.name)} IS ${marker}`,
      );
    }
  }
}

/** Whether a synchronous_standby_names value is one Tandem wrote (ANY 1 of its own subscriptions). */
function isTandemStandbyList(value: string): boolean {
  return /^ANY 1 \("tandem_[^"]*"(, "tandem_[^"]*")*\)$/.test(value);
}
