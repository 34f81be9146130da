// Pools of node-postgres connections, one per server and database, opened on first use and closed by
// close(). Every failure is rethrown as a PostgresServerError naming the server (its URL with no password),
// so an operator reads which server refused and why, and never the password.

import pg from "pg";
import type { Logger } from "pino";
import { connectionParts, describeServer, maskSecret, type ServerTarget } from "./postgres_names.ts";

export class PostgresServerError extends Error {
  /** The server's configured name. */
  readonly server: string;
  /** SQLSTATE, when the server answered with an error. */
  readonly code: string | undefined;

  constructor(server: string, message: string, code: string | undefined, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PostgresServerError";
    this.server = server;
    this.code = code;
  }
}

const connectTimeoutMs = 10_000;
/** A last resort against a server that stopped answering (a slot waits for running transactions first). */
const queryTimeoutMs = 10 * 60_000;
const idleTimeoutMs = 30_000;
const poolSizeMax = 2;

/** What a refused login or an unreachable server says, with a hint for the common cases. */
function connectReason(error: unknown): string {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  if (code === "28P01" || code === "28000")
    return `${message} (check the user and password configured for it)`;
  if (code === "ECONNREFUSED") return `${message} (is the server running?)`;
  return message;
}

export class PostgresConnections {
  private readonly pools = new Map<string, { pool: pg.Pool; target: ServerTarget }>();
  private readonly logger: Logger;
  /** Every password the engine knows (servers' and the follower's), masked in any message passed on. */
  private readonly secrets: () => Array<string | undefined>;

  constructor(logger: Logger, secrets: () => Array<string | undefined>) {
    this.logger = logger;
    this.secrets = secrets;
  }

  /** `text` with every known password replaced by ***. */
  mask(text: string): string {
    return [...this.secrets()].reduce<string>((masked, secret) => maskSecret(masked, secret), text);
  }

  /** Runs one statement on `database` of `target` (its URL's own database when not given). */
  async query<R extends pg.QueryResultRow = Record<string, unknown>>(
    target: ServerTarget,
    database: string | undefined,
    sql: string,
    params: unknown[] = [],
  ): Promise<R[]> {
    const where = describeServer(target, database);
    const pool = this.poolFor(target, database);
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (error) {
      const message = this.mask(
        maskSecret(`cannot connect to ${where}: ${connectReason(error)}`, passwordOf(target)),
      );
      throw new PostgresServerError(target.name, message, (error as { code?: string }).code, {
        cause: error,
      });
    }
    try {
      const result = await client.query<R>(sql, params);
      client.release();
      return result.rows;
    } catch (error) {
      // A server error leaves the session usable; a lost connection does not.
      const code = (error as { code?: string }).code;
      client.release(
        code === undefined || code.startsWith("57P") || code.startsWith("08") ? true : undefined,
      );
      const text = `${where}: ${error instanceof Error ? error.message : String(error)}`;
      const message = this.mask(maskSecret(text, passwordOf(target)));
      throw new PostgresServerError(target.name, message, code, { cause: error });
    }
  }

  /** Closes the pool of one database (before it is dropped: DROP DATABASE refuses while sessions are in it). */
  async closeDatabase(target: ServerTarget, database: string): Promise<void> {
    const key = poolKey(target, database);
    const entry = this.pools.get(key);
    this.pools.delete(key);
    await entry?.pool.end().catch(() => {});
  }

  async close(): Promise<void> {
    const entries = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(entries.map((entry) => entry.pool.end().catch(() => {})));
  }

  private poolFor(target: ServerTarget, database: string | undefined): pg.Pool {
    const key = poolKey(target, database);
    const existing = this.pools.get(key);
    if (existing !== undefined) return existing.pool;
    const parts = connectionParts(target, database);
    const ssl =
      parts.sslmode === undefined || parts.sslmode === "disable" || parts.sslmode === "prefer"
        ? false
        : parts.sslmode === "verify-ca" || parts.sslmode === "verify-full"
          ? true
          : { rejectUnauthorized: false };
    const pool = new pg.Pool({
      host: parts.host,
      port: parts.port,
      user: parts.user,
      database: parts.database,
      password: parts.password,
      ssl,
      max: poolSizeMax,
      idleTimeoutMillis: idleTimeoutMs,
      connectionTimeoutMillis: connectTimeoutMs,
      application_name: "tandem-provision",
      keepAlive: true,
      query_timeout: queryTimeoutMs,
    });
    // An idle session the server ends (a restart) is reported here; the pool drops it and opens another later.
    pool.on("error", (error) => {
      const server = describeServer(target, database);
      this.logger.debug(
        { server },
        `idle connection lost: ${this.mask(maskSecret(error.message, passwordOf(target)))}`,
      );
    });
    this.pools.set(key, { pool, target });
    return pool;
  }
}

function passwordOf(target: ServerTarget): string | undefined {
  return connectionParts(target).password;
}

function poolKey(target: ServerTarget, database: string | undefined): string {
  return JSON.stringify([target.name, database ?? null]);
}
