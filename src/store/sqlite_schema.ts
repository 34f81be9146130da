// The SQLite layout of the local store and its creation. One row per path holds the winning entry (its
// value, version and the local seq of its last change), so there is no separate change log: the materialiser
// and `watch` need only the latest state of each path. `buckets` keeps the anti-entropy digest up to date in
// the same transaction as the entries it summarises; `meta` keeps what must survive a restart.
import type Database from "better-sqlite3";

/** Bumped when the layout changes; a database written by a newer version is refused, never rewritten. */
export const SCHEMA_VERSION = 1;

export const MetaKey = {
  SchemaVersion: "schema_version",
  BucketCount: "bucket_count",
  /** The HLC high-water mark, so versions never go back after a restart even when the wall clock does. */
  HlcWallMs: "hlc_wall_ms",
  HlcCounter: "hlc_counter",
  /** The last seq handed out; kept apart from entries because collected tombstones take their seq along. */
  LastSeq: "last_seq",
  /** Names this database's seq space for peers' cursors (StoreIdentity): drawn once, never 0. */
  StoreId: "store_id",
  /** When StoreId was drawn. */
  CreatedWallMs: "created_wall_ms",
} as const;
export type MetaKey = (typeof MetaKey)[keyof typeof MetaKey];

const ddl = `
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value
);
CREATE TABLE IF NOT EXISTS entries (
  path TEXT PRIMARY KEY,
  value BLOB NOT NULL,
  wall_ms INTEGER NOT NULL,
  counter INTEGER NOT NULL,
  node_id TEXT NOT NULL,
  deleted INTEGER NOT NULL,
  bucket INTEGER NOT NULL,
  seq INTEGER NOT NULL
);
-- Every entry's stamp by seq: it alone answers a since round (stampsSince, its origin skips included) and
-- a digest round's stamps of some buckets (stampsInBuckets, one scan of this index), so neither reads a
-- row. Appended at its end by every write. An index by bucket would serve the digest rounds without a scan,
-- but every write lands in it at a random place: a commit of 30 writes into 160k entries touched ~30 of its
-- pages (each a WAL frame) and ran at half the speed. Earlier layouts' indexes are dropped.
DROP INDEX IF EXISTS entries_by_seq;
DROP INDEX IF EXISTS entries_by_seq_origin;
DROP INDEX IF EXISTS entries_by_bucket;
CREATE INDEX IF NOT EXISTS entries_stamps_by_seq
  ON entries (seq, node_id, wall_ms, counter, deleted, bucket, path);
CREATE INDEX IF NOT EXISTS tombstones_by_wall_ms ON entries (wall_ms) WHERE deleted = 1;
CREATE TABLE IF NOT EXISTS sync_cursors (
  peer TEXT PRIMARY KEY,
  store_id INTEGER NOT NULL,
  created_wall_ms INTEGER NOT NULL,
  seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS buckets (
  bucket INTEGER PRIMARY KEY,
  hi INTEGER NOT NULL,
  lo INTEGER NOT NULL,
  count INTEGER NOT NULL
);
`;

/** The database could not be opened as a local store (not a database, unreadable, or from a newer version). */
export class StoreOpenError extends Error {
  override name = "StoreOpenError";
}

const pageBytes = 16_384;

export type MetaValues = Partial<Record<MetaKey, number>>;

export function readMeta(db: Database.Database): MetaValues {
  const rows = db.prepare<[], { key: string; value: unknown }>("SELECT key, value FROM meta").all();
  const values: MetaValues = {};
  for (const row of rows) {
    if (typeof row.value === "number") values[row.key as MetaKey] = row.value;
  }
  return values;
}

/**
 * Applies the durability settings and creates the tables when missing. Returns the meta values stored
 * before this call. Throws StoreOpenError for a database from a newer schema.
 */
export function prepareSchema(db: Database.Database, path: string): MetaValues {
  const inMemory = path === ":memory:";
  // 16 KiB pages for a new database (an existing one keeps its size): values of a few KiB fit a page, and
  // commits of many 1 KiB values cost ~40 % less than with 4 KiB pages (fewer WAL frames and B-tree splits).
  db.pragma(`page_size = ${pageBytes}`);
  // WAL + synchronous=NORMAL: a commit writes the WAL and returns (it survives kill -9); its fsync runs on
  // the thread pool (wal_flusher.ts), and nothing claims it durable before that ends.
  const journalMode = db.pragma("journal_mode = WAL", { simple: true });
  if (!inMemory && journalMode !== "wal") {
    throw new StoreOpenError(`${path}: SQLite refused WAL mode (got ${String(journalMode)})`);
  }
  db.pragma("synchronous = NORMAL");
  db.pragma("busy_timeout = 5000");
  db.pragma("foreign_keys = OFF");
  // Truncate the WAL after checkpoints so a burst of large values does not leave a large file behind.
  db.pragma("journal_size_limit = 67108864");
  // One transaction: a crash while creating a new database leaves all of the layout or none of it.
  db.transaction(() => db.exec(ddl)).immediate();
  const meta = readMeta(db);
  const stored = meta[MetaKey.SchemaVersion];
  if (stored !== undefined && stored > SCHEMA_VERSION) {
    throw new StoreOpenError(
      `${path}: schema version ${stored} is newer than this Tandem (${SCHEMA_VERSION})`,
    );
  }
  return meta;
}
