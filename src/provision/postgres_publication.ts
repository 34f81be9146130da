// The publication `tandem` in a database of the primary, and the follower's read grants on exactly the
// tables it publishes. FOR ALL TABLES when Tandem's role on the primary is a superuser (PostgreSQL requires
// it), so tables created later are published at once; otherwise a publication listing every table, with the
// tables added since appended on each pass (the role must own them).
import { publicationName, qualified, quoteIdent } from "./postgres_names.ts";
import type { StepInputs } from "./postgres_schema.ts";

export async function ensurePublication(inputs: StepInputs): Promise<void> {
  const { connections, primary, database, logger } = inputs;
  const publication = quoteIdent(publicationName);
  const [existing] = await connections.query<{ all: boolean }>(
    primary,
    database,
    "SELECT puballtables AS all FROM pg_publication WHERE pubname = $1",
    [publicationName],
  );
  let allTables = existing?.all;
  if (allTables === undefined) {
    const [role] = await connections.query<{ superuser: boolean }>(
      primary,
      database,
      "SELECT rolsuper AS superuser FROM pg_roles WHERE rolname = current_user",
    );
    allTables = role?.superuser === true;
    await connections.query(
      primary,
      database,
      `CREATE PUBLICATION ${publication}${allTables ? " FOR ALL TABLES" : ""}`,
    );
    logger.info({ allTables }, "publication created on the primary");
  }
  if (!allTables) {
    const missing = await connections.query<{ schema: string; name: string }>(
      primary,
      database,
      `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p' AND NOT c.relispartition
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
          AND NOT EXISTS (SELECT 1 FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid
                           WHERE p.pubname = $1 AND r.prrelid = c.oid)
          AND NOT EXISTS (SELECT 1 FROM pg_depend d
                           WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`,
      [publicationName],
    );
    if (missing.length > 0) {
      const tables = missing.map((t) => qualified(t.schema, t.name)).join(", ");
      await connections.query(primary, database, `ALTER PUBLICATION ${publication} ADD TABLE ${tables}`);
      logger.info({ tables: missing.length }, "tables added to the publication");
    }
  }
  await grantReads(inputs);
}

/** USAGE on the published tables' schemas and SELECT on each published table (the initial copy reads them). */
async function grantReads(inputs: StepInputs): Promise<void> {
  const { connections, primary, database, follower, logger } = inputs;
  const rows = await connections.query<{ schema: string; name: string; usage: boolean; read: boolean }>(
    primary,
    database,
    `SELECT schemaname AS schema, tablename AS name, has_schema_privilege($2, schemaname, 'USAGE') AS usage,
            has_table_privilege($2, format('%I.%I', schemaname, tablename), 'SELECT') AS read
       FROM pg_publication_tables WHERE pubname = $1`,
    [publicationName, follower],
  );
  const role = quoteIdent(follower);
  const schemas = [...new Set(rows.filter((row) => !row.usage).map((row) => row.schema))];
  if (schemas.length > 0) {
    await connections.query(
      primary,
      database,
      `GRANT USAGE ON SCHEMA ${schemas.map(quoteIdent).join(", ")} TO ${role}`,
    );
  }
  const tables = rows.filter((row) => !row.read).map((row) => qualified(row.schema, row.name));
  if (tables.length > 0) {
    await connections.query(primary, database, `GRANT SELECT ON TABLE ${tables.join(", ")} TO ${role}`);
    logger.info({ tables: tables.length }, "follower granted SELECT on published tables");
  }
}
