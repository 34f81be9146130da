// The node's durable copy of the store: a LocalStore over SQLite (WAL, synchronous=NORMAL). Every mutating
// method is one immediate transaction that also moves the bucket fingerprints, the local seq and the HLC
// high-water mark, so what a method returns as committed survives kill -9, and the digest always matches the
// entries; `flushed` tells when it also survives power loss (an fsync on the thread pool: wal_flusher.ts).
// Checkpoints copy the WAL into the database file without fsyncs on the event loop (wal_checkpointer.ts).
//
// Changes: each committed change takes the next seq and stores it on the entry's row, so `changesSince`
// returns only the LATEST change of each path (an overwritten change's seq is skipped). That is what `watch`,
// the materialiser and peers' anti-entropy cursors (stampsSince) need: they resume from a seq and converge on
// the current state. A tombstone collected
// before a consumer read it is gone; the collection horizon must exceed how long a consumer may lag.
//
// Path order is SQLite's BINARY order on UTF-8, i.e. Unicode code point order (which differs from
// JavaScript's UTF-16 `<` only for characters above U+FFFF).
import { randomInt } from "node:crypto";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import {
  BUCKET_COUNT_DEFAULT,
  bucketOf,
  EMPTY_FINGERPRINT,
  fingerprintHex,
  type Hash64,
  stampHash,
  xorHash,
} from "../core/digest.ts";
import { ClockSkewError, HybridClock } from "../core/hlc.ts";
import { supersedes } from "../core/lww.ts";
import { sinceUntilSeq, stampsSinceOf } from "../core/store_sync_batch.ts";
import type { PeerCursor, StampsSince, StampsSinceQuery, StoreIdentity } from "../core/store_sync_types.ts";
import { type NodeId, nodeIdPattern } from "../core/types.ts";
import { createPrivateFile, fsyncDirectory } from "../shell/index.ts";
import { MetaKey, type MetaValues, prepareSchema, SCHEMA_VERSION, StoreOpenError } from "./sqlite_schema.ts";
import type {
  BucketDigest,
  EntryStamp,
  LocalStore,
  StoreChange,
  StoreEntry,
  StoreWrite,
  Version,
} from "./types.ts";
import { WalCheckpointer } from "./wal_checkpointer.ts";
import { type FlushCallback, WalFlusher } from "./wal_flusher.ts";

export { StoreOpenError };

export const CLOCK_SKEW_MS_MAX_DEFAULT = 60_000;
const bucketCountMax = 65_536;

export interface SqliteLocalStoreOptions {
  /** The database file (created 0600, its folder 0700), or ":memory:" for tests: same code, nothing durable. */
  path: string;
  nodeId: NodeId;
  bucketCount?: number;
  /** Remote versions further ahead of our wall clock than this are skipped (see clockSkewRejectedTotal). */
  clockSkewMsMax?: number;
  /** Largest value accepted; a larger one is a caller bug (the API and the wire decoder check first). */
  valueBytesMax: number;
}

interface StampRow {
  path: string;
  wall_ms: number;
  counter: number;
  node_id: string;
  deleted: number;
  bucket: number;
}

interface EntryRow extends StampRow {
  value: Buffer;
  seq: number;
}

interface BucketRow {
  bucket: number;
  hi: number;
  lo: number;
  count: number;
}

const stampColumns = "path, wall_ms, counter, node_id, deleted, bucket";

/**
 * An entry's state as the materialiser's resync lists it: the version as `wallMs.counter.nodeId` (the
 * manifest's versionKey), `deleted` as 0 or 1, and the seq of its last change.
 */
export interface KeyedStamp {
  path: string;
  versionKey: string;
  deleted: number;
  seq: number;
}
const entryColumns = `${stampColumns}, value, seq`;

function prepareStatements(db: Database.Database) {
  return {
    stamp: db.prepare<[string], StampRow>(`SELECT ${stampColumns} FROM entries WHERE path = ?`),
    entry: db.prepare<[string], EntryRow>(`SELECT ${entryColumns} FROM entries WHERE path = ?`),
    upsert: db.prepare<[string, Uint8Array, number, number, string, number, number, number]>(
      `INSERT INTO entries (path, value, wall_ms, counter, node_id, deleted, bucket, seq)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (path) DO UPDATE SET value = excluded.value, wall_ms = excluded.wall_ms,
         counter = excluded.counter, node_id = excluded.node_id, deleted = excluded.deleted,
         seq = excluded.seq`,
    ),
    remove: db.prepare<[string]>("DELETE FROM entries WHERE path = ?"),
    // Range scans on the primary key. "Just past `after`" is after || NUL, the least string above it.
    listFrom: db.prepare<[{ prefix: string; after: string | null; limit: number }], EntryRow>(
      `SELECT ${entryColumns} FROM entries
       WHERE path >= max(@prefix, coalesce(@after || char(0), '')) AND deleted = 0
       ORDER BY path LIMIT @limit`,
    ),
    listWithin: db.prepare<
      [{ prefix: string; after: string | null; upper: string; limit: number }],
      EntryRow
    >(
      `SELECT ${entryColumns} FROM entries
       WHERE path >= max(@prefix, coalesce(@after || char(0), '')) AND path < @upper AND deleted = 0
       ORDER BY path LIMIT @limit`,
    ),
    changesSince: db.prepare<[number, number], EntryRow>(
      `SELECT ${entryColumns} FROM entries WHERE seq > ? ORDER BY seq LIMIT ?`,
    ),
    // The materialiser's resync: the stamp index alone, the version as one string (its versionKey form).
    keyedStampsSince: db.prepare<[number, number], KeyedStamp>(
      `SELECT path, wall_ms || '.' || counter || '.' || node_id AS versionKey, deleted, seq
       FROM entries INDEXED BY entries_stamps_by_seq WHERE seq > ? ORDER BY seq LIMIT ?`,
    ),
    syncCursors: db.prepare<[], PeerCursor>(
      "SELECT peer, store_id AS storeId, created_wall_ms AS createdWallMs, seq FROM sync_cursors",
    ),
    clearSyncCursors: db.prepare("DELETE FROM sync_cursors"),
    addSyncCursor: db.prepare<[string, number, number, number]>(
      "INSERT INTO sync_cursors (peer, store_id, created_wall_ms, seq) VALUES (?, ?, ?, ?)",
    ),
    // One scan of the stamp index, whatever the number of buckets (they come as a JSON array).
    stampsInBuckets: db.prepare<[string], StampRow>(
      `SELECT ${stampColumns} FROM entries INDEXED BY entries_stamps_by_seq
       WHERE bucket IN (SELECT value FROM json_each(?))`,
    ),
    tombstonesBefore: db.prepare<[number], StampRow>(
      `SELECT ${stampColumns} FROM entries WHERE deleted = 1 AND wall_ms < ?`,
    ),
    buckets: db.prepare<[], BucketRow>("SELECT bucket, hi, lo, count FROM buckets ORDER BY bucket"),
    // SQLite has no XOR operator: for non-negative integers a ^ b = (a | b) - (a & b).
    moveBucket: db.prepare<[{ bucket: number; hi: number; lo: number; count: number }]>(
      `UPDATE buckets SET hi = (hi | @hi) - (hi & @hi), lo = (lo | @lo) - (lo & @lo), count = count + @count
       WHERE bucket = @bucket`,
    ),
    setMeta: db.prepare<[string, number]>(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    ),
  };
}

/** What one transaction changes besides the entries: the seqs it hands out and the fingerprints it moves. */
class CommitBatch {
  seq: number;
  clockSkewRejected = 0;
  readonly buckets = new Map<number, { hash: Hash64; count: number }>();

  constructor(lastSeq: number) {
    this.seq = lastSeq;
  }

  /** XORs a stamp into (countDelta 1) or out of (countDelta -1) its bucket. */
  toggle(bucket: number, stamp: EntryStamp, countDelta: 1 | -1): void {
    const delta = this.buckets.get(bucket) ?? { hash: EMPTY_FINGERPRINT, count: 0 };
    this.buckets.set(bucket, {
      hash: xorHash(delta.hash, stampHash(stamp)),
      count: delta.count + countDelta,
    });
  }
}

function versionOf(row: StampRow): Version {
  return { wallMs: row.wall_ms, counter: row.counter, nodeId: row.node_id };
}

function stampOf(row: StampRow): EntryStamp {
  return { path: row.path, version: versionOf(row), deleted: row.deleted === 1 };
}

function entryOf(row: EntryRow): StoreEntry {
  const value = new Uint8Array(row.value.buffer, row.value.byteOffset, row.value.byteLength);
  return { path: row.path, value, version: versionOf(row), deleted: row.deleted === 1 };
}

/** The rows held at these paths, in the asked order; unknown paths are left out. */
function lookUp<Row, T>(
  statement: Database.Statement<[string], Row>,
  paths: readonly string[],
  of: (row: Row) => T,
): T[] {
  const found: T[] = [];
  for (const path of paths) {
    const row = statement.get(path);
    if (row) found.push(of(row));
  }
  return found;
}

/**
 * The least string above every string that starts with `prefix`, in code point order: the last code point
 * incremented (skipping the surrogate range, which UTF-8 cannot hold), after dropping trailing U+10FFFF.
 * Null when there is none (empty prefix).
 */
export function prefixUpperBound(prefix: string): string | null {
  const codePoints = Array.from(prefix, (c) => c.codePointAt(0)!);
  while (codePoints.length > 0) {
    const last = codePoints.pop()!;
    if (last < 0x10ffff) {
      codePoints.push(last === 0xd7ff ? 0xe000 : last + 1);
      return String.fromCodePoint(...codePoints);
    }
  }
  return null;
}

function checkCount(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative integer, got ${value}`);
  }
}

export class SqliteLocalStore implements LocalStore {
  readonly path: string;
  readonly nodeId: NodeId;
  readonly bucketCount: number;
  readonly valueBytesMax: number;
  private readonly db: Database.Database;
  private readonly statements: ReturnType<typeof prepareStatements>;
  private digestCache: BucketDigest[] | null = null;
  private readonly clock: HybridClock;
  private seq: number;
  private skewRejectedTotal = 0;
  private readonly storeIdentity: StoreIdentity;
  private readonly flusher: WalFlusher;
  /** null for ":memory:", which has no WAL. */
  private readonly checkpointer: WalCheckpointer | null;
  private readonly stampsSinceBySkips = new Map<
    number,
    Database.Statement<Array<string | number>, StampRow & { seq: number }>
  >();

  /** Opens (creating when missing) the store at options.path. Throws StoreOpenError when it cannot. */
  static open(options: SqliteLocalStoreOptions): SqliteLocalStore {
    const bucketCount = options.bucketCount ?? BUCKET_COUNT_DEFAULT;
    if (!nodeIdPattern.test(options.nodeId)) throw new RangeError(`invalid node id: ${options.nodeId}`);
    if (!Number.isInteger(bucketCount) || bucketCount < 1 || bucketCount > bucketCountMax) {
      throw new RangeError(`bucketCount must be an integer in [1, ${bucketCountMax}], got ${bucketCount}`);
    }
    if (!Number.isSafeInteger(options.valueBytesMax) || options.valueBytesMax < 1) {
      throw new RangeError(`valueBytesMax must be a positive integer, got ${options.valueBytesMax}`);
    }
    let db: Database.Database | undefined;
    try {
      const inMemory = options.path === ":memory:";
      if (!inMemory) createPrivateFile(options.path);
      db = new Database(options.path);
      const meta = prepareSchema(db, options.path);
      // The database and its WAL now exist: their directory entries must survive power loss too.
      if (!inMemory) fsyncDirectory(dirname(options.path));
      return new SqliteLocalStore(db, { ...options, bucketCount }, meta);
    } catch (cause) {
      db?.close();
      if (cause instanceof StoreOpenError) throw cause;
      throw new StoreOpenError(`${options.path}: cannot open the store database`, { cause });
    }
  }

  private constructor(
    db: Database.Database,
    options: SqliteLocalStoreOptions & { bucketCount: number },
    meta: MetaValues,
  ) {
    this.db = db;
    this.path = options.path;
    this.nodeId = options.nodeId;
    this.bucketCount = options.bucketCount;
    this.valueBytesMax = options.valueBytesMax;
    this.statements = prepareStatements(db);
    const wallMs = meta[MetaKey.HlcWallMs];
    const counter = meta[MetaKey.HlcCounter];
    this.clock = new HybridClock({
      skewMsMax: options.clockSkewMsMax ?? CLOCK_SKEW_MS_MAX_DEFAULT,
      ...(wallMs !== undefined && counter !== undefined ? { last: { wallMs, counter } } : {}),
    });
    this.seq = meta[MetaKey.LastSeq] ?? 0;
    const storeId = meta[MetaKey.StoreId];
    const createdWallMs = meta[MetaKey.CreatedWallMs];
    this.storeIdentity =
      storeId !== undefined && storeId > 0 && createdWallMs !== undefined
        ? { storeId, createdWallMs }
        : { storeId: randomInt(1, 2 ** 48), createdWallMs: Date.now() };
    this.initialize(meta[MetaKey.BucketCount]);
    const inMemory = options.path === ":memory:";
    this.flusher = new WalFlusher(inMemory ? null : `${options.path}-wal`);
    try {
      this.checkpointer = inMemory
        ? null
        : new WalCheckpointer({ path: options.path, main: db, flusher: this.flusher });
    } catch (error) {
      this.flusher.close();
      throw error;
    }
  }

  flushed(callback: FlushCallback): void {
    this.flusher.flushed(callback);
  }

  identity(): StoreIdentity {
    return { ...this.storeIdentity };
  }

  /** Remote entries skipped so far because their clock was too far ahead (a counter: log its increase). */
  get clockSkewRejectedTotal(): number {
    return this.skewRejectedTotal;
  }

  /**
   * Returns exactly one entry per write, in order. A commit costs a transaction and an fsync, so callers
   * that take one write per request should group concurrent requests into one call and split the result.
   */
  writeLocal(writes: readonly StoreWrite[], nowWallMs: number): StoreEntry[] {
    this.digestCache = null;
    for (const write of writes) this.checkValueBytes(write.path, write.value?.byteLength ?? 0);
    // Nothing to commit: spare the transaction.
    if (writes.length === 0) return [];
    return this.commit((batch) =>
      writes.map((write) => {
        const version: Version = { ...this.clock.now(nowWallMs), nodeId: this.nodeId };
        const deleted = write.value === null;
        const entry: StoreEntry = {
          path: write.path,
          value: write.value ?? new Uint8Array(0),
          version,
          deleted,
        };
        this.replace(batch, entry, this.statements.stamp.get(entry.path));
        return entry;
      }),
    );
  }

  /**
   * Entries are applied one after the other, so a batch holding a path twice behaves like two batches.
   * An entry whose clock is more than clockSkewMsMax ahead is skipped and counted (clockSkewRejectedTotal);
   * anti-entropy offers it again later.
   */
  applyRemote(entries: readonly StoreEntry[], nowWallMs: number): StoreEntry[] {
    this.digestCache = null;
    for (const entry of entries) this.checkValueBytes(entry.path, entry.value.byteLength);
    if (entries.length === 0) return [];
    const winners = this.commit((batch) => {
      const changed: StoreEntry[] = [];
      for (const incoming of entries) {
        try {
          this.clock.observe(incoming.version, nowWallMs);
        } catch (error) {
          if (!(error instanceof ClockSkewError)) throw error;
          batch.clockSkewRejected += 1;
          continue;
        }
        const held = this.statements.stamp.get(incoming.path);
        if (!supersedes(incoming.version, held && versionOf(held))) continue;
        const entry: StoreEntry = incoming.deleted ? { ...incoming, value: new Uint8Array(0) } : incoming;
        this.replace(batch, entry, held);
        changed.push(entry);
      }
      return { changed, clockSkewRejected: batch.clockSkewRejected };
    });
    this.skewRejectedTotal += winners.clockSkewRejected;
    return winners.changed;
  }

  get(path: string): StoreEntry | null {
    const row = this.statements.entry.get(path);
    return row ? entryOf(row) : null;
  }

  getMany(paths: readonly string[]): StoreEntry[] {
    return lookUp(this.statements.entry, paths, entryOf);
  }

  /** `prefix` is a plain string prefix: "a" lists "a", "a/b" and "ab"; "a/" lists only "a/b". */
  list(prefix: string, options: { after?: string; limit: number }): StoreEntry[] {
    checkCount("limit", options.limit);
    const after = options.after ?? null;
    const upper = prefixUpperBound(prefix);
    const rows =
      upper === null
        ? this.statements.listFrom.all({ prefix, after, limit: options.limit })
        : this.statements.listWithin.all({ prefix, after, upper, limit: options.limit });
    return rows.map(entryOf);
  }

  changesSince(afterSeq: number, limit: number): StoreChange[] {
    checkCount("afterSeq", afterSeq);
    checkCount("limit", limit);
    return this.statements.changesSince
      .all(afterSeq, limit)
      .map((row) => ({ seq: row.seq, entry: entryOf(row) }));
  }

  lastSeq(): number {
    return this.seq;
  }

  /** Keyed stamps of every entry (tombstones included) changed after `afterSeq`, in seq order, at most `limit`. */
  keyedStampsSince(afterSeq: number, limit: number): KeyedStamp[] {
    checkCount("afterSeq", afterSeq);
    checkCount("limit", limit);
    return this.statements.keyedStampsSince.all(afterSeq, limit);
  }

  /** Cached until the next change: anti-entropy asks for it every round, mostly of an unchanged store. */
  digest(): BucketDigest[] {
    this.digestCache ??= this.statements.buckets.all().map((row) => ({
      bucket: row.bucket,
      fingerprint: fingerprintHex([row.hi, row.lo]),
      count: row.count,
    }));
    return this.digestCache.map((d) => ({ ...d }));
  }

  stampsSince(afterSeq: number, query: StampsSinceQuery): StampsSince {
    checkCount("afterSeq", afterSeq);
    checkCount("limit", query.limit);
    const until = sinceUntilSeq(afterSeq, query, this.seq);
    const skip = query.skip ?? [];
    const params: Array<string | number> = [afterSeq, until];
    for (const { nodeId, fromWallMs } of skip) params.push(nodeId, fromWallMs);
    params.push(query.limit);
    const rows = this.stampsSinceStatement(skip.length).all(...params);
    return stampsSinceOf(
      rows.map((row) => ({ seq: row.seq, stamp: stampOf(row) })),
      query,
      until,
      this.seq,
    );
  }

  /**
   * One prepared statement per number of skipped origins (a handful in a small cluster). It walks
   * entries_stamps_by_seq, which holds every column it reads: no row is looked up, skipped or not.
   */
  private stampsSinceStatement(
    skips: number,
  ): Database.Statement<Array<string | number>, StampRow & { seq: number }> {
    let statement = this.stampsSinceBySkips.get(skips);
    if (statement === undefined) {
      const filters = " AND NOT (node_id = ? AND wall_ms >= ?)".repeat(skips);
      statement = this.db.prepare(
        `SELECT ${stampColumns}, seq FROM entries WHERE seq > ? AND seq <= ?${filters} ORDER BY seq LIMIT ?`,
      );
      this.stampsSinceBySkips.set(skips, statement);
    }
    return statement;
  }

  syncCursors(): PeerCursor[] {
    return this.statements.syncCursors.all();
  }

  /** One small transaction: the sync core asks for it at most once per anti-entropy interval. */
  saveSyncCursors(cursors: readonly PeerCursor[]): void {
    const { clearSyncCursors, addSyncCursor } = this.statements;
    this.db
      .transaction(() => {
        clearSyncCursors.run();
        for (const c of cursors) addSyncCursor.run(c.peer, c.storeId, c.createdWallMs, c.seq);
      })
      .immediate();
    this.committed();
  }

  stampsAt(paths: readonly string[]): EntryStamp[] {
    return lookUp(this.statements.stamp, paths, stampOf);
  }

  stampsInBuckets(buckets: readonly number[]): EntryStamp[] {
    if (buckets.length === 0) return [];
    return this.statements.stampsInBuckets.all(JSON.stringify(buckets)).map(stampOf);
  }

  /**
   * Removes tombstones whose version is older than the horizon. A peer still holding the deleted value
   * after that long would bring it back, so the horizon must exceed the longest partition tolerated.
   */
  collectTombstones(olderThanWallMs: number): number {
    this.digestCache = null;
    checkCount("olderThanWallMs", olderThanWallMs);
    return this.commit((batch) => {
      const rows = this.statements.tombstonesBefore.all(olderThanWallMs);
      for (const row of rows) {
        batch.toggle(row.bucket, stampOf(row), -1);
        this.statements.remove.run(row.path);
      }
      return rows.length;
    });
  }

  close(): void {
    // Its connections first: the last one to close checkpoints the whole WAL (with fsyncs) and removes it.
    this.checkpointer?.close();
    this.db.close();
    this.flusher.close();
  }

  /** Runs work in one immediate transaction, then persists its bucket moves, seq and clock in the same one. */
  private commit<T>(work: (batch: CommitBatch) => T): T {
    const batch = new CommitBatch(this.seq);
    const result = this.db
      .transaction(() => {
        const done = work(batch);
        this.flushBuckets(batch);
        const hlc = this.clock.peek();
        this.statements.setMeta.run(MetaKey.LastSeq, batch.seq);
        this.statements.setMeta.run(MetaKey.HlcWallMs, hlc.wallMs);
        this.statements.setMeta.run(MetaKey.HlcCounter, hlc.counter);
        return done;
      })
      .immediate();
    this.seq = batch.seq;
    this.committed();
    return result;
  }

  private committed(): void {
    this.flusher.committed();
    this.checkpointer?.committed();
  }

  /** Stores `entry` in place of `held` (its current row, if any) under the next seq. */
  private replace(batch: CommitBatch, entry: StoreEntry, held: StampRow | undefined): void {
    const bucket = held?.bucket ?? bucketOf(entry.path, this.bucketCount);
    if (held) batch.toggle(bucket, stampOf(held), -1);
    batch.toggle(bucket, entry, 1);
    batch.seq += 1;
    const { wallMs, counter, nodeId } = entry.version;
    const deleted = entry.deleted ? 1 : 0;
    this.statements.upsert.run(entry.path, entry.value, wallMs, counter, nodeId, deleted, bucket, batch.seq);
  }

  private flushBuckets(batch: CommitBatch): void {
    for (const [bucket, delta] of batch.buckets) {
      this.statements.moveBucket.run({ bucket, hi: delta.hash[0], lo: delta.hash[1], count: delta.count });
    }
  }

  /**
   * Records the schema version and, on a new database or a changed bucket count, (re)builds the bucket
   * table from the entries' stamps.
   */
  private initialize(storedBucketCount: number | undefined): void {
    this.db
      .transaction(() => {
        if (storedBucketCount !== this.bucketCount) this.rebuildBuckets();
        this.statements.setMeta.run(MetaKey.SchemaVersion, SCHEMA_VERSION);
        this.statements.setMeta.run(MetaKey.BucketCount, this.bucketCount);
        this.statements.setMeta.run(MetaKey.StoreId, this.storeIdentity.storeId);
        this.statements.setMeta.run(MetaKey.CreatedWallMs, this.storeIdentity.createdWallMs);
      })
      .immediate();
  }

  private rebuildBuckets(): void {
    this.db.prepare("DELETE FROM buckets").run();
    const insert = this.db.prepare<[number]>(
      "INSERT INTO buckets (bucket, hi, lo, count) VALUES (?, 0, 0, 0)",
    );
    for (let bucket = 0; bucket < this.bucketCount; bucket++) insert.run(bucket);
    const rebucket = this.db.prepare<[number, string]>("UPDATE entries SET bucket = ? WHERE path = ?");
    const batch = new CommitBatch(this.seq);
    for (const row of this.db.prepare<[], StampRow>(`SELECT ${stampColumns} FROM entries`).all()) {
      const bucket = bucketOf(row.path, this.bucketCount);
      rebucket.run(bucket, row.path);
      batch.toggle(bucket, stampOf(row), 1);
    }
    this.flushBuckets(batch);
  }

  private checkValueBytes(path: string, bytes: number): void {
    if (bytes > this.valueBytesMax) {
      throw new RangeError(`value for ${path} is ${bytes} bytes (valueBytesMax ${this.valueBytesMax})`);
    }
  }
}
