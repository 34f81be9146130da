// The PostgreSQL engine against throwaway clusters (test/support/pg_cluster.ts): a primary with
// wal_level=logical and two replicas. Databases and tables reach both replicas with their rows and stream;
// drift is described; an orphan is listed and dropped only when asked; passes cut off at every step, run
// twice, leave one subscription and one slot per database and replica; a primary without wal_level=logical
// and wrong credentials give clear problems; a stopped primary fails a pass clearly, and the next converges.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pino from "pino";
import type { DatabaseInfo } from "../../src/provision/engine.ts";
import { PostgresConnections, PostgresServerError } from "../../src/provision/postgres_connections.ts";
import { PostgresEngine, type PostgresEngineOptions } from "../../src/provision/postgres_engine.ts";
import { subscriptionName } from "../../src/provision/postgres_names.ts";
import { ensurePublication } from "../../src/provision/postgres_publication.ts";
import { PgCluster, pgClusterUnsupported } from "../support/pg_cluster.ts";
import { testGate } from "../support/tool_gate.ts";
import { waitFor } from "../support/wait_for.ts";

const { unsupported, skip } = testGate(pgClusterUnsupported);

const followerPassword = "f0llower-Secret'quote";
const guardedPassword = "guarded-Secret-42";
const rotatedPassword = "rotated-Secret-99";
const wrongPassword = "not-the-Password-7";
const noFence = () => {};

describe("provisioning: the PostgreSQL engine", { skip, timeout: 600_000 }, () => {
  let primary: PgCluster;
  let r1: PgCluster;
  let r2: PgCluster;
  /** wal_level=replica, and TCP logins need a password. */
  let guarded: PgCluster;
  const engines: PostgresEngine[] = [];
  const logLines: string[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => logLines.push(line) });

  function engine(overrides: Partial<PostgresEngineOptions> = {}): PostgresEngine {
    const created = new PostgresEngine({
      primary: { name: "primary", url: primary.url("postgres") },
      replicas: [
        { name: "r1", url: r1.url("postgres") },
        { name: "r2", url: r2.url("postgres") },
      ],
      follower: { role: "tandem_follower", password: followerPassword },
      logger,
      ...overrides,
    });
    engines.push(created);
    return created;
  }

  const dump = () =>
    [primary, r1, r2].map((c) => `--- ${c.name}\n${c.logTail(15)}`).join("\n") +
    `\n--- engine\n${logLines.slice(-15).join("")}`;

  async function count(cluster: PgCluster, database: string, table: string): Promise<number> {
    try {
      const [row] = await cluster.query<{ n: number }>(database, `SELECT count(*)::int AS n FROM ${table}`);
      return row?.n ?? -1;
    } catch {
      return -1;
    }
  }

  async function waitForRows(database: string, table: string, rows: number, on = [r1, r2]): Promise<void> {
    for (const cluster of on) {
      await waitFor(
        `${rows} rows of ${database}.${table} on ${cluster.name}`,
        async () => ((await count(cluster, database, table)) === rows ? true : undefined),
        dump,
        90_000,
      );
    }
  }

  async function waitForStreaming(
    e: PostgresEngine,
    database: string,
    replicas = ["r1", "r2"],
  ): Promise<void> {
    for (const replica of replicas) {
      let last = "";
      await waitFor(
        `${database} streaming on ${replica}`,
        async () => {
          const status = await e.status(database, replica);
          last = JSON.stringify(status);
          return status.state === "streaming" ? status : undefined;
        },
        () => `${last}\n${dump()}`,
        90_000,
      );
    }
  }

  async function info(e: PostgresEngine, database: string): Promise<DatabaseInfo> {
    const found = (await e.databases()).find((d) => d.name === database);
    assert.ok(found, `${database} is listed on the primary`);
    return found;
  }

  /** A table `table` of `rows` numbered rows in `database` on the primary. */
  async function createTable(database: string, table: string, rows: number): Promise<void> {
    await primary.query(
      database,
      `CREATE TABLE ${table} (id int PRIMARY KEY); INSERT INTO ${table} SELECT generate_series(1, ${rows})`,
    );
  }

  async function ensureEverywhere(e: PostgresEngine, database: string): Promise<void> {
    const db = await info(e, database);
    for (const replica of ["r1", "r2"]) await e.ensureReplicated(db, replica, noFence);
  }

  /** Tandem's subscriptions of `database` on a replica, and slots of it on the primary. */
  async function counts(database: string): Promise<{ subscriptions: number[]; slots: number[] }> {
    const subscriptions: number[] = [];
    const slots: number[] = [];
    for (const [name, cluster] of [
      ["r1", r1],
      ["r2", r2],
    ] as const) {
      const [sub] = await cluster.query<{ n: number }>(
        "postgres",
        `SELECT count(*)::int AS n FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid
          WHERE d.datname = $1`,
        [database],
      );
      subscriptions.push(sub?.n ?? -1);
      const [slot] = await primary.query<{ n: number }>(
        "postgres",
        "SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1",
        [subscriptionName(name, database)],
      );
      slots.push(slot?.n ?? -1);
    }
    return { subscriptions, slots };
  }

  before(async () => {
    if (unsupported) assert.fail(unsupported);
    [primary, r1, r2, guarded] = await Promise.all([
      PgCluster.create({ name: "primary" }),
      PgCluster.create({ name: "r1" }),
      PgCluster.create({ name: "r2" }),
      PgCluster.create({ name: "guarded", walLevel: "replica", password: guardedPassword }),
    ]);
  });

  after(async () => {
    await Promise.allSettled(engines.map((e) => e.close()));
    await Promise.allSettled([primary, r1, r2, guarded].map((c) => c?.dispose()));
    for (const line of logLines) {
      for (const secret of [followerPassword, rotatedPassword, guardedPassword, wrongPassword]) {
        assert.ok(!line.includes(secret), `a log line shows a password: ${line}`);
      }
    }
  });

  it("replicates a database with its rows to both replicas, which then stream", async () => {
    await primary.query("postgres", "CREATE DATABASE shop");
    await primary.query(
      "shop",
      `CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, price numeric(10, 2));
       INSERT INTO items (name, price) SELECT 'item ' || i, i * 1.5 FROM generate_series(1, 200) i`,
    );
    const e = engine();
    assert.deepEqual(await e.check(), []);
    assert.deepEqual(
      (await e.databases()).map((d) => d.name),
      ["shop"],
    );
    await ensureEverywhere(e, "shop");
    await waitForRows("shop", "items", 200);
    await waitForStreaming(e, "shop");

    await primary.query(
      "shop",
      "INSERT INTO items (name) SELECT 'later ' || i FROM generate_series(1, 50) i",
    );
    await waitForRows("shop", "items", 250);
    const status = await e.status("shop", "r1");
    assert.equal(status.state, "streaming");
    assert.deepEqual(status.drift, []);
    assert.equal(status.lastError, null);
    assert.equal(typeof status.lagBytes, "number");

    // The follower: LOGIN REPLICATION on the primary, reading exactly the published tables.
    const [role] = await primary.query<{ login: boolean; replication: boolean; super: boolean }>(
      "postgres",
      "SELECT rolcanlogin AS login, rolreplication AS replication, rolsuper AS super FROM pg_roles WHERE rolname = 'tandem_follower'",
    );
    assert.deepEqual(role, { login: true, replication: true, super: false });
    const [grant] = await primary.query<{ read: boolean }>(
      "shop",
      "SELECT has_table_privilege('tandem_follower', 'public.items', 'SELECT') AS read",
    );
    assert.equal(grant?.read, true);
    // The database on the replica: same owner and encoding, marked as Tandem's.
    const [copy] = await r1.query<{ owner: string; encoding: string; comment: string }>(
      "postgres",
      `SELECT pg_get_userbyid(datdba) AS owner, pg_encoding_to_char(encoding) AS encoding,
              shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = 'shop'`,
    );
    assert.deepEqual(copy, {
      owner: "postgres",
      encoding: "UTF8",
      comment: "tandem: replicated from primary",
    });
  });

  it("makes the primary wait for its replicas in sync mode, lets go in async mode, leaves it in auto", async () => {
    const e = engine();
    const standbys = async () =>
      (
        await primary.query<{ v: string }>(
          "postgres",
          "SELECT current_setting('synchronous_standby_names') AS v",
        )
      )[0]?.v;
    const set = await e.applyMode("sync", noFence);
    assert.match(set, /^ANY 1 \("tandem_r1_shop_[0-9a-f]+", "tandem_r2_shop_[0-9a-f]+"\)$/);
    await waitFor(
      "the primary's walsenders of Tandem's subscriptions counted as synchronous",
      async () => {
        const [row] = await primary.query<{ n: number }>(
          "postgres",
          "SELECT count(*)::int AS n FROM pg_stat_replication WHERE sync_state = 'quorum' AND application_name LIKE 'tandem%'",
        );
        return (row?.n ?? 0) === 2 ? true : undefined;
      },
      dump,
    );
    // Commits go on (a replica confirms each) and arrive.
    await primary.query("shop", "INSERT INTO items (name) SELECT 'sync ' || i FROM generate_series(1, 10) i");
    await waitForRows("shop", "items", 260);
    await primary.query("shop", "DELETE FROM items WHERE name LIKE 'sync %'");
    await waitForRows("shop", "items", 250);
    assert.equal(await e.applyMode("sync", noFence), set, "unchanged when already set");
    assert.equal(await e.applyMode("async", noFence), "");
    assert.equal(await standbys(), "");
    // A list the operator set is theirs: async leaves it, sync refuses to replace it.
    await primary.query("postgres", "ALTER SYSTEM SET synchronous_standby_names = 'standby_of_ops'");
    await primary.query("postgres", "SELECT pg_reload_conf()");
    await waitFor(
      "the operator's list in effect",
      async () => ((await standbys()) === "standby_of_ops" ? true : undefined),
      dump,
    );
    assert.equal(await e.applyMode("async", noFence), "standby_of_ops");
    assert.equal(await e.applyMode("auto", noFence), "standby_of_ops", "auto leaves the primary's setting");
    await assert.rejects(e.applyMode("sync", noFence), /set outside Tandem: not replaced/);
    await primary.query("postgres", "ALTER SYSTEM RESET synchronous_standby_names");
    await primary.query("postgres", "SELECT pg_reload_conf()");
  });

  it("creates a table added since on the replicas and copies its rows", async () => {
    const e = engine();
    await primary.query(
      "shop",
      `CREATE SCHEMA sales;
       CREATE TABLE sales.orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, item int REFERENCES items, qty int);
       INSERT INTO sales.orders (item, qty) SELECT i, i % 7 FROM generate_series(1, 120) i`,
    );
    // Until the replicas have the table, their subscriptions fail to apply its rows: reported as an error.
    await e.status("shop", "r1");
    await waitFor(
      "an error on r1 while it lacks the new table",
      async () => {
        const status = await e.status("shop", "r1");
        return status.state === "error" ? status : undefined;
      },
      dump,
      30_000,
    ).then((status) => assert.match(status.lastError ?? "", /replication error.*r1's server log/));
    await ensureEverywhere(e, "shop");
    await waitForRows("shop", "sales.orders", 120);
    await waitForStreaming(e, "shop");
    await primary.query("shop", "INSERT INTO sales.orders (item, qty) VALUES (1, 1), (2, 2)");
    await waitForRows("shop", "sales.orders", 122);
  });

  it("describes drift: a column the replica lacks, a type that differs", async () => {
    const e = engine();
    await primary.query("shop", "ALTER TABLE items ADD COLUMN email text");
    await r2.query("shop", "ALTER TABLE items ALTER COLUMN name TYPE varchar(40)");
    const onR1 = await e.status("shop", "r1");
    assert.deepEqual(onR1.drift, [
      { table: "public.items", difference: "column email missing on the replica" },
    ]);
    const onR2 = await e.status("shop", "r2");
    assert.deepEqual(onR2.drift, [
      {
        table: "public.items",
        difference: "column name: text on the primary, character varying(40) on the replica",
      },
      { table: "public.items", difference: "column email missing on the replica" },
    ]);
    // Mended by hand, the drift is gone.
    await r1.query("shop", "ALTER TABLE items ADD COLUMN email text");
    await r2.query(
      "shop",
      "ALTER TABLE items ADD COLUMN email text; ALTER TABLE items ALTER COLUMN name TYPE text",
    );
    assert.deepEqual((await e.status("shop", "r2")).drift, []);
  });

  it("leaves one subscription and one slot per database and replica, whatever step a pass was cut off at", async () => {
    const e = engine();
    await primary.query("postgres", "CREATE DATABASE cut");
    await primary.query(
      "cut",
      "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 30) i",
    );
    const db = await info(e, "cut");
    const name = subscriptionName("r1", "cut");
    let slotWithoutSubscription = false;
    // A fence that fails at call n: the pass stops before its n-th step; the next pass goes one step further.
    for (let n = 1; ; n++) {
      let calls = 0;
      const fence = () => {
        if (++calls === n) throw new Error(`cut off before step ${n}`);
      };
      const done = await e.ensureReplicated(db, "r1", fence).then(
        () => true,
        (error: Error) => {
          assert.match(error.message, /cut off/);
          return false;
        },
      );
      const [slot] = await primary.query(
        "postgres",
        "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1",
        [name],
      );
      const [sub] = await r1.query("postgres", "SELECT 1 FROM pg_subscription WHERE subname = $1", [name]);
      if (slot !== undefined && sub === undefined) slotWithoutSubscription = true;
      if (done) break;
      assert.ok(n < 20, "a pass has fewer than 20 steps");
    }
    assert.ok(slotWithoutSubscription, "one pass was cut off between the slot and the subscription");

    // On r2: the slot made by an earlier pass that stopped right after it.
    await primary.query("cut", "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [
      subscriptionName("r2", "cut"),
    ]);
    await e.ensureReplicated(db, "r2", noFence);
    await ensureEverywhere(e, "cut");
    await ensureEverywhere(e, "cut");
    await waitForRows("cut", "t", 30);
    await waitForStreaming(e, "cut");
    assert.deepEqual(await counts("cut"), { subscriptions: [1, 1], slots: [1, 1] });
    assert.deepEqual(await counts("shop"), { subscriptions: [1, 1], slots: [1, 1] });
    const [publications] = await primary.query<{ n: number }>(
      "cut",
      "SELECT count(*)::int AS n FROM pg_publication",
    );
    assert.equal(publications?.n, 1);
    const [all] = await primary.query<{ n: number }>(
      "postgres",
      "SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name LIKE 'tandem\\_%'",
    );
    assert.equal(all?.n, 4, "a slot per database per replica, no more");
  });

  it("lists a database dropped on the primary as an orphan, and drops it only when asked", async () => {
    const e = engine();
    await primary.query("postgres", "CREATE DATABASE gone");
    await createTable("gone", "g", 10);
    await ensureEverywhere(e, "gone");
    await waitForRows("gone", "g", 10);
    assert.deepEqual(await e.orphans("r1"), []);

    // What an operator does: a database with logical slots cannot be dropped, so its slots go first.
    await dropOnPrimary("gone");
    assert.deepEqual(await e.orphans("r1"), ["gone"]);
    assert.deepEqual(await e.orphans("r2"), ["gone"]);
    await assert.rejects(e.dropOrphan("shop", "r1", noFence), /not an orphan/);
    for (const replica of ["r1", "r2"]) await e.dropOrphan("gone", replica, noFence);
    for (const cluster of [r1, r2]) {
      assert.deepEqual(
        await cluster.query("postgres", "SELECT 1 FROM pg_database WHERE datname = 'gone'"),
        [],
      );
    }
    assert.deepEqual(await e.orphans("r1"), []);
    assert.deepEqual(await counts("gone"), { subscriptions: [0, 0], slots: [0, 0] });

    // Excluded now, a replicated database is an orphan too; dropped there, its slot on the primary goes too.
    await primary.query("postgres", "CREATE DATABASE kept");
    await createTable("kept", "k", 3);
    await ensureEverywhere(e, "kept");
    await waitForRows("kept", "k", 3);
    const narrower = engine({ exclude: ["k*"] });
    assert.deepEqual(await narrower.orphans("r1"), ["kept"]);
    await narrower.dropOrphan("kept", "r1", noFence);
    assert.deepEqual(await counts("kept"), { subscriptions: [0, 1], slots: [0, 1] });
    assert.equal(await count(primary, "kept", "k"), 3);
    assert.equal(await count(r2, "kept", "k"), 3);
    await dropOnPrimary("kept");
    await e.dropOrphan("kept", "r2", noFence);
    assert.deepEqual(await e.orphans("r2"), []);
  });

  /** Ends the walsenders of the database's slots and drops them (retried: a subscription reconnects), then it. */
  async function dropOnPrimary(database: string): Promise<void> {
    await waitFor(
      `the slots of ${database} dropped`,
      async () => {
        await primary.query(
          "postgres",
          "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active",
          [database],
        );
        try {
          await primary.query(
            "postgres",
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1",
            [database],
          );
        } catch {
          return undefined;
        }
        const [rest] = await primary.query<{ n: number }>(
          "postgres",
          "SELECT count(*)::int AS n FROM pg_replication_slots WHERE database = $1",
          [database],
        );
        return rest?.n === 0 ? true : undefined;
      },
      dump,
      30_000,
    );
    await primary.query("postgres", `DROP DATABASE ${database} WITH (FORCE)`);
  }

  it("publishes table by table when Tandem's role on the primary is not a superuser", async () => {
    await primary.query("postgres", "CREATE ROLE app LOGIN");
    await primary.query("postgres", "CREATE DATABASE owned OWNER app");
    await primary.query("owned", "CREATE TABLE a (id int PRIMARY KEY); ALTER TABLE a OWNER TO app");
    const connections = new PostgresConnections(logger, () => []);
    const step = {
      connections,
      primary: { name: "primary", url: primary.url("owned", "app") },
      replica: { name: "r1", url: r1.url("postgres") },
      database: "owned",
      follower: "tandem_follower",
      logger,
    };
    const published = () =>
      primary.query<{ table: string; read: boolean }>(
        "owned",
        `SELECT tablename AS table, has_table_privilege('tandem_follower', format('%I.%I', schemaname, tablename), 'SELECT') AS read
           FROM pg_publication_tables WHERE pubname = 'tandem' ORDER BY 1`,
      );
    try {
      await ensurePublication(step);
      const [publication] = await primary.query<{ all: boolean }>(
        "owned",
        "SELECT puballtables AS all FROM pg_publication WHERE pubname = 'tandem'",
      );
      assert.equal(publication?.all, false);
      assert.deepEqual(await published(), [{ table: "a", read: true }]);
      await primary.query("owned", "CREATE TABLE b (id int PRIMARY KEY); ALTER TABLE b OWNER TO app");
      await ensurePublication(step);
      await ensurePublication(step);
      assert.deepEqual(await published(), [
        { table: "a", read: true },
        { table: "b", read: true },
      ]);
    } finally {
      await connections.close();
      await primary.query("postgres", "DROP DATABASE owned WITH (FORCE)");
    }
  });

  it("names wal_level and its fix when the primary is not logical, and keyless tables", async () => {
    const e = engine({
      primary: { name: "primary", url: guarded.url("postgres"), password: guardedPassword },
      replicas: [{ name: "r1", url: r1.url("postgres") }],
    });
    await guarded.query("postgres", "CREATE DATABASE plain");
    await guarded.query("plain", "CREATE TABLE lines (line text)");
    const problems = await e.check();
    const walLevel = problems.find((p) => p.problem.includes("wal_level"));
    assert.ok(walLevel, JSON.stringify(problems));
    assert.equal(walLevel.server, "primary");
    assert.match(walLevel.problem, /wal_level is replica/);
    assert.match(walLevel.fix, /ALTER SYSTEM SET wal_level = logical.*restart/);
    const keyless = problems.find((p) => p.problem.includes('"public"."lines"'));
    assert.ok(keyless, JSON.stringify(problems));
    assert.match(keyless.fix, /REPLICA IDENTITY FULL/);
  });

  it("names a replica's max_replication_slots when its replication origins would run out", async () => {
    // Before PostgreSQL 18 the setting also caps a replica's origins: one per subscription, one per copy.
    await guarded.query("postgres", "ALTER SYSTEM SET max_replication_slots = 1");
    await guarded.stop();
    await guarded.start();
    const e = engine({
      replicas: [{ name: "small", url: guarded.url("postgres"), password: guardedPassword }],
    });
    const problems = await e.check();
    const origins = problems.find((p) => p.server === "small" && p.problem.includes("replication origins"));
    assert.ok(origins, JSON.stringify(problems));
    assert.match(origins.fix, /ALTER SYSTEM SET max_replication_slots = \d+; then restart small/);
  });

  it("says which server refused wrong credentials, without the password", async () => {
    const wrong = wrongPassword;
    const e = engine({
      primary: { name: "primary", url: guarded.url("postgres"), password: wrong },
      replicas: [{ name: "r1", url: r1.url("postgres") }],
    });
    const problems = await e.check();
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.equal(problems[0]?.server, "primary");
    assert.match(problems[0]!.problem, /cannot connect to primary .*password authentication failed/);
    assert.ok(!JSON.stringify(problems).includes(wrong));
    const error = await e.databases().then(
      () => assert.fail("listed databases with a wrong password"),
      (caught: unknown) => caught,
    );
    assert.ok(error instanceof PostgresServerError);
    assert.equal(error.server, "primary");
    assert.match(
      error.message,
      /^cannot connect to primary \(postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres\)/,
    );
    assert.ok(!error.message.includes(wrong));
    // A password given in the URL is never shown either.
    const inUrl = engine({
      primary: { name: "primary", url: guarded.url("postgres").replace("postgres@", `postgres:${wrong}@`) },
    });
    const [problem] = await inUrl.check();
    assert.match(problem?.problem ?? "", /password authentication failed/);
    assert.ok(!JSON.stringify(problem).includes(wrong));
  });

  it("fails a pass clearly while the primary is down, and converges once it is back", async () => {
    const e = engine();
    const shop = await info(e, "shop");
    await primary.stop();
    try {
      await assert.rejects(e.ensureReplicated(shop, "r1", noFence), (error: Error) => {
        assert.ok(error instanceof PostgresServerError, String(error));
        assert.match(
          error.message,
          /^cannot connect to primary \(postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres\)/,
        );
        return true;
      });
      const status = await e.status("shop", "r1");
      assert.equal(status.state, "error");
      assert.match(status.lastError ?? "", /cannot connect to primary/);
    } finally {
      await primary.start();
    }
    await primary.query("postgres", "CREATE DATABASE back");
    await createTable("back", "b", 40);
    await primary.query("shop", "INSERT INTO items (name) VALUES ('after the restart')");
    await ensureEverywhere(e, "shop");
    await ensureEverywhere(e, "back");
    await waitForRows("back", "b", 40);
    await waitForRows("shop", "items", 251);
    await waitForStreaming(e, "back");
    await waitForStreaming(e, "shop");
  });

  it("rotates the follower's password on the primary and in every subscription", async () => {
    const e = engine();
    const next = rotatedPassword;
    await e.rotatePassword(next, noFence);
    for (const cluster of [r1, r2]) {
      const rows = await cluster.query<{ conninfo: string }>(
        "postgres",
        "SELECT subconninfo AS conninfo FROM pg_subscription WHERE subname LIKE 'tandem\\_%'",
      );
      assert.equal(rows.length, 3);
      for (const row of rows) assert.ok(row.conninfo.includes(`password='${next}'`), "the new password");
    }
    // New connections log in with it: a table added now is copied.
    await createTable("back", "c", 5);
    await ensureEverywhere(engine({ follower: { role: "tandem_follower", password: next } }), "back");
    await waitForRows("back", "c", 5);
    await waitForStreaming(e, "back");
  });
});
