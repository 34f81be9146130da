// A node's journal in SQLite (journal.db in the data directory), every change one transaction: a record and
// a delivery are fsync'd at commit (synchronous = FULL), so "recorded" and "acknowledged" mean on disk; a
// handler's result is written without an fsync of its own and reaches the disk with the next durable commit
// or checkpoint (a power loss before that runs the handler once more: entries apply at least once); so are a
// transport's cursors and shipped marks (lost, entries are sent again and marked again).
// - outbox: what this node recorded, in recording order (seq), each with its place in its lane (key_seq, the
//   lane's counter bumped in the same transaction, so a lane never has a gap), until the queue confirms it
//   (shipped_at). Payloads are sealed when shipped (src/journal/journal_key.ts), not here: the transactional
//   outbox of an embedding app records inside the app's synchronous transaction, where nothing async runs.
// - inbox: entries of other nodes, written before the queue is acknowledged, until applied or given up.
// - applied / dead: every id ever applied (or dropped) and every dead letter: de-duplication for good, not
//   for a time window. lane_marks: each lane's watermark (src/core/journal_lanes.ts), moved in the same
//   transaction as the result that moves it.
// - transport_cursors: how far into the outbox the transport has delivered (per peer for the mesh); written
//   without an fsync of their own, like a result (a cursor that went back sends entries again).
// - pruning (pruneOutbox): entries of this node that every peer (or the queue) confirmed, older than the
//   retention and owing no post-execution step, leave the outbox with their step runs; the newest entry
//   always stays (it keeps seq and the HLC from going back). out_lanes.pruned_through remembers each lane's
//   last pruned keySeq: sent with the lane's next entries (keyFloor), it lets a node that never received the
//   pruned ones start the lane there instead of waiting for them.
// - step_runs: the post-execution steps each shipped entry of this node owes (src/journal/post_steps.ts),
//   created in the transaction that marks it shipped, each with its attempts and state.
import { dirname } from "node:path";
import Database from "better-sqlite3";
import type { LaneEntry, LaneWatermark } from "../core/journal_lanes.ts";
import type { NodeId } from "../core/types.ts";
import { createPrivateFile, fsyncDirectory } from "../shell/index.ts";

/** Bumped when the layout changes; a database written by a newer version is refused. */
const SCHEMA_VERSION = 2;

/** An entry as recorded: everything but the seal. `data` is JSON text. */
export interface JournalEntry extends LaneEntry {
  /** When it was recorded, on its origin's HLC ("wallMs.counter"). */
  hlc: string;
  type: string;
  data: string;
  files: string[];
}

/** What one pruning batch did: rows deleted, the last seq it looked at, and whether it reached the end. */
export interface PruneBatch {
  pruned: number;
  lastSeq: number;
  done: boolean;
}

export interface RecordInput {
  id: string;
  hlc: string;
  type: string;
  key: string | null;
  data: string;
  files: readonly string[];
}

export interface OutboxRow {
  seq: number;
  entry: JournalEntry;
  recordedAtMs: number;
}

export interface DeadLetter {
  entry: JournalEntry;
  attempts: number;
  reason: string;
  deadAtMs: number;
}

export type ReceiveResult = "new" | "applied-before" | "dead-letter" | "in-inbox";

/** A post-execution step an entry of this node owes, with the runs it had. */
export interface StepRun {
  step: string;
  attempts: number;
  entry: JournalEntry;
}

export type StepOutcome =
  | { kind: "done"; attempts: number }
  | { kind: "retry"; attempts: number; retryAtMs: number; reason: string }
  | { kind: "dead"; attempts: number; reason: string };

/** A handler's final result, as settle() stores it; the watermark is the entry's lane's after it. */
export type SettledResult =
  | { kind: "applied"; entry: LaneEntry; watermark: LaneWatermark | null }
  | { kind: "dead"; entry: JournalEntry; attempts: number; reason: string; watermark: LaneWatermark | null };

export class JournalOpenError extends Error {
  override readonly name = "JournalOpenError";
}

/** The columns of a whole entry of another node, in the inbox and the dead letters. */
const entryColumnsDdl = `  origin TEXT NOT NULL,
  hlc TEXT NOT NULL,
  type TEXT NOT NULL,
  key TEXT,
  key_seq INTEGER NOT NULL,
  data TEXT NOT NULL,
  files TEXT NOT NULL,`;

const ddl = `
CREATE TABLE IF NOT EXISTS journal_meta (key TEXT PRIMARY KEY, value);
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  hlc TEXT NOT NULL,
  type TEXT NOT NULL,
  key TEXT,
  key_seq INTEGER NOT NULL,
  data TEXT NOT NULL,
  files TEXT NOT NULL,
  recorded_at INTEGER NOT NULL,
  shipped_at INTEGER
);
CREATE INDEX IF NOT EXISTS outbox_unshipped ON outbox (seq) WHERE shipped_at IS NULL;
CREATE TABLE IF NOT EXISTS out_lanes (
  key TEXT PRIMARY KEY,
  last_seq INTEGER NOT NULL,
  pruned_through INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS inbox (
  n INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
${entryColumnsDdl}
  received_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS inbox_lane ON inbox (origin, key, key_seq) WHERE key IS NOT NULL;
CREATE TABLE IF NOT EXISTS applied (
  id TEXT PRIMARY KEY,
  origin TEXT NOT NULL,
  outcome TEXT NOT NULL,
  at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS applied_by_origin ON applied (origin, at);
CREATE TABLE IF NOT EXISTS dead (
  id TEXT PRIMARY KEY,
${entryColumnsDdl}
  attempts INTEGER NOT NULL,
  reason TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS transport_cursors (name TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS step_runs (
  entry_id TEXT NOT NULL,
  step TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  next_at INTEGER NOT NULL,
  reason TEXT NOT NULL,
  PRIMARY KEY (entry_id, step)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS step_runs_due ON step_runs (next_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS step_runs_dead ON step_runs (entry_id) WHERE state = 'dead';
CREATE TABLE IF NOT EXISTS lane_marks (
  origin TEXT NOT NULL,
  key TEXT NOT NULL,
  done INTEGER NOT NULL,
  PRIMARY KEY (origin, key)
) WITHOUT ROWID;
`;

interface EntryColumns {
  id: string;
  origin?: string;
  hlc: string;
  type: string;
  key: string | null;
  key_seq: number;
  data: string;
  files: string;
}

export class JournalDb {
  readonly nodeId: NodeId;
  private readonly db: Database.Database;
  /** Opened here (closed by close()), or the embedding app's own database (attach). */
  private readonly owned: boolean;
  private readonly statements: ReturnType<typeof prepare>;

  private constructor(db: Database.Database, nodeId: NodeId, owned: boolean) {
    this.db = db;
    this.nodeId = nodeId;
    this.owned = owned;
    this.statements = prepare(db);
  }

  /**
   * The journal's tables in an embedding app's own database, so that `record` joins the app's transaction
   * (the transactional outbox: `db.transaction(() => { change(); journal.record(...) })()`). The app keeps
   * its database: close() leaves it open. Use synchronous = FULL for "recorded" to mean on disk.
   */
  static attach(db: Database.Database, nodeId: NodeId): JournalDb {
    createSchema(db, db.name);
    return new JournalDb(db, nodeId, false);
  }

  /** Opens (creating it 0600) the journal at `path`, ":memory:" for tests. */
  static open(path: string, nodeId: NodeId): JournalDb {
    let db: Database.Database | undefined;
    try {
      const inMemory = path === ":memory:";
      if (!inMemory) createPrivateFile(path);
      db = new Database(path);
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = FULL");
      db.pragma("busy_timeout = 5000");
      createSchema(db, path);
      if (!inMemory) fsyncDirectory(dirname(path));
      return new JournalDb(db, nodeId, true);
    } catch (cause) {
      db?.close();
      if (cause instanceof JournalOpenError) throw cause;
      throw new JournalOpenError(`${path}: cannot open the journal database`, { cause });
    }
  }

  close(): void {
    if (this.owned) this.db.close();
  }

  /**
   * Records an entry of this node, durable when this returns; its keySeq is the next of its lane. Runs in
   * a transaction of its own, or inside the caller's (the transactional outbox: both or neither).
   */
  record(input: RecordInput, nowMs: number): JournalEntry {
    return this.durably(() => this.insertRecord(input, nowMs));
  }

  /** Records several entries in one transaction (one fsync): what a group commit of concurrent calls uses. */
  recordMany(inputs: readonly RecordInput[], nowMs: number): JournalEntry[] {
    return this.durably(() => inputs.map((input) => this.insertRecord(input, nowMs)));
  }

  private insertRecord(input: RecordInput, nowMs: number): JournalEntry {
    let keySeq = 0;
    if (input.key !== null) {
      const last = this.statements.outLane.pluck().get(input.key) as number | undefined;
      keySeq = (last ?? 0) + 1;
      this.statements.setOutLane.run(input.key, keySeq);
    }
    const entry: JournalEntry = { ...input, files: [...input.files], origin: this.nodeId, keySeq };
    this.statements.insertOutbox.run(
      entry.id,
      entry.hlc,
      entry.type,
      entry.key,
      keySeq,
      entry.data,
      JSON.stringify(entry.files),
      nowMs,
    );
    return entry;
  }

  /**
   * A transaction fsync'd at commit (what "recorded" and an acknowledged delivery promise), or, with
   * `relaxed`, written to the WAL without an fsync of its own: a result the next durable commit carries to
   * disk, which only a power loss before then could undo (the handler then runs once more: at least once).
   * An attached app's database keeps the app's own setting for everything else: a relaxed transaction
   * outside the app's own sets NORMAL for itself and the app's setting back at once (nothing async runs in
   * between); inside the app's transaction it commits with the app's.
   */
  private durably<T>(run: () => T, relaxed = false): T {
    if (this.owned) {
      this.setSynchronous(relaxed ? "NORMAL" : "FULL");
      return this.db.transaction(run)();
    }
    if (!relaxed || this.db.inTransaction) return this.db.transaction(run)();
    const appMode = this.db.pragma("synchronous", { simple: true }) as number;
    if (appMode <= 1) return this.db.transaction(run)();
    this.db.pragma("synchronous = NORMAL");
    try {
      return this.db.transaction(run)();
    } finally {
      this.db.pragma(`synchronous = ${appMode}`);
    }
  }

  private synchronous: "FULL" | "NORMAL" = "FULL";

  private setSynchronous(mode: "FULL" | "NORMAL"): void {
    if (this.synchronous === mode || this.db.inTransaction) return;
    this.db.pragma(`synchronous = ${mode}`);
    this.synchronous = mode;
  }

  /** Up to `limit` entries the queue has not confirmed, in recording order. */
  unshipped(limit: number): OutboxRow[] {
    const rows = this.statements.unshipped.all(limit) as Array<
      EntryColumns & { seq: number; recorded_at: number }
    >;
    return rows.map((row) => ({
      seq: row.seq,
      entry: this.entryOf({ ...row, origin: this.nodeId }),
      recordedAtMs: row.recorded_at,
    }));
  }

  /**
   * Up to `limit` recorded entries after outbox seq `seq`, in recording order (what a transport sends); an
   * entry of a lane whose earlier entries were pruned carries the last pruned keySeq as its keyFloor.
   */
  outboxAfter(seq: number, limit: number): OutboxRow[] {
    const rows = this.statements.outboxAfter.all(seq, limit) as Array<
      EntryColumns & { seq: number; recorded_at: number; key_floor: number | null }
    >;
    return rows.map((row) => {
      const entry = this.entryOf({ ...row, origin: this.nodeId });
      if (row.key_floor !== null && row.key_floor > 0) entry.keyFloor = row.key_floor;
      return { seq: row.seq, entry, recordedAtMs: row.recorded_at };
    });
  }

  /**
   * One bounded batch of pruning, in one transaction: looks at up to `scanMax` entries after outbox seq
   * `afterSeq`, in recording order, and deletes those shipped, recorded at or before `cutoffMs` and owing
   * no step (a pending or given-up step run keeps its entry), with their step runs. Stops (done) at the
   * first entry not shipped or recorded after the cutoff: shipping goes in recording order, so the rest are
   * too. The newest entry is never deleted.
   */
  pruneOutbox(cutoffMs: number, afterSeq: number, scanMax: number): PruneBatch {
    return this.durably(() => {
      const newest = this.lastSeq();
      const rows = this.statements.pruneWindow.all(afterSeq, newest, scanMax) as Array<{
        seq: number;
        id: string;
        key: string | null;
        key_seq: number;
        recorded_at: number;
        shipped_at: number | null;
      }>;
      let pruned = 0;
      let lastSeq = afterSeq;
      for (const row of rows) {
        if (row.shipped_at === null || row.recorded_at > cutoffMs) return { pruned, lastSeq, done: true };
        lastSeq = row.seq;
        if (this.statements.stepOwed.get(row.id) !== undefined) continue;
        this.statements.deleteStepRuns.run(row.id);
        this.statements.deleteOutbox.run(row.seq);
        if (row.key !== null) this.statements.setPrunedThrough.run(row.key_seq, row.key);
        pruned += 1;
      }
      return { pruned, lastSeq, done: rows.length < scanMax };
    });
  }

  /**
   * The queue confirmed every entry up to outbox seq `seq`. `stepsFor` names the post-execution steps each
   * newly shipped entry owes; they are created in the same transaction, due at once. Not fsync'd by itself:
   * lost with a power loss, the transport says it again from its cursor when it starts (written before
   * this, so never behind it on disk).
   */
  markShippedThrough(
    seq: number,
    nowMs: number,
    stepsFor: ((entry: JournalEntry) => readonly string[]) | null = null,
  ): number {
    return this.durably(() => {
      // With no step configured, nothing to read: the rows are only marked.
      if (stepsFor !== null) {
        for (const row of this.statements.shippingThrough.all(seq) as Array<EntryColumns & { seq: number }>) {
          const entry = this.entryOf({ ...row, origin: this.nodeId });
          for (const step of stepsFor(entry)) this.statements.insertStepRun.run(entry.id, step, nowMs);
        }
      }
      return this.statements.markShippedThrough.run(nowMs, seq).changes;
    }, true);
  }

  /** Up to `limit` step runs due by `nowMs`, with their entries, soonest first. */
  dueStepRuns(nowMs: number, limit: number): StepRun[] {
    const rows = this.statements.dueStepRuns.all(nowMs, limit) as Array<
      EntryColumns & { step: string; attempts: number }
    >;
    return rows.map((row) => ({
      step: row.step,
      attempts: row.attempts,
      entry: this.entryOf({ ...row, origin: this.nodeId }),
    }));
  }

  /** When the next pending step run is due, or null. */
  nextStepRunAtMs(): number | null {
    return (this.statements.nextStepRun.pluck().get() as number | null | undefined) ?? null;
  }

  /** A step run's outcome: done, failed with a retry at `retryAtMs`, or given up (retryAtMs null). */
  settleStepRun(entryId: string, step: string, outcome: StepOutcome): void {
    this.durably(() => {
      if (outcome.kind === "done")
        this.statements.finishStepRun.run("done", outcome.attempts, "", entryId, step);
      else if (outcome.kind === "dead") {
        this.statements.finishStepRun.run("dead", outcome.attempts, outcome.reason, entryId, step);
      } else {
        this.statements.retryStepRun.run(outcome.attempts, outcome.retryAtMs, outcome.reason, entryId, step);
      }
    });
  }

  /** Step runs given up after their attempts: the step's dead letters. */
  deadStepRuns(): Array<{ entryId: string; step: string; attempts: number; reason: string }> {
    return (
      this.statements.deadStepRuns.all() as Array<{
        entry_id: string;
        step: string;
        attempts: number;
        reason: string;
      }>
    ).map((row) => ({ entryId: row.entry_id, step: row.step, attempts: row.attempts, reason: row.reason }));
  }

  /** An operator's retry of a step's dead letter: pending again, due at once. False when there is none. */
  retryStepRun(entryId: string, step: string, nowMs: number): boolean {
    return this.statements.reviveStepRun.run(nowMs, entryId, step).changes === 1;
  }

  /** The outbox's last seq (0 when empty). Seqs after any entry are contiguous: pruning takes the oldest. */
  lastSeq(): number {
    return (this.statements.lastSeq.pluck().get() as number | null) ?? 0;
  }

  /** The HLC of the last entry recorded here ("wallMs.counter"), so a restarted clock never goes back. */
  lastRecordedHlc(): string | null {
    return (this.statements.lastHlc.pluck().get() as string | undefined) ?? null;
  }

  /** A transport's cursor into the outbox (0: nothing delivered yet). */
  cursor(name: string): number {
    return (this.statements.cursor.pluck().get(name) as number | undefined) ?? 0;
  }

  /**
   * Not fsync'd by itself (the next durable commit carries it): a cursor that went back with a power loss
   * only sends its entries again, which the receivers drop by id.
   */
  setCursor(name: string, seq: number): void {
    this.durably(() => this.statements.setCursor.run(name, seq), true);
  }

  dropCursor(name: string): void {
    this.statements.dropCursor.run(name);
  }

  /** An entry of another node, as delivered: written to the inbox unless it is known already; durable. */
  receive(entry: JournalEntry, nowMs: number): ReceiveResult {
    return this.durably(() => this.insertReceived(entry, nowMs));
  }

  /** Several delivered entries in one transaction (one fsync). */
  receiveMany(entries: readonly JournalEntry[], nowMs: number): ReceiveResult[] {
    return this.durably(() => entries.map((entry) => this.insertReceived(entry, nowMs)));
  }

  private insertReceived(entry: JournalEntry, nowMs: number): ReceiveResult {
    const outcome = this.statements.appliedOutcome.pluck().get(entry.id) as string | undefined;
    if (outcome !== undefined) return "applied-before";
    if (this.statements.deadExists.get(entry.id) !== undefined) return "dead-letter";
    this.raiseLaneFloor(entry);
    const inserted = this.statements.insertInbox.run(
      entry.id,
      entry.origin,
      entry.hlc,
      entry.type,
      entry.key,
      entry.keySeq,
      entry.data,
      JSON.stringify(entry.files),
      nowMs,
    );
    return inserted.changes === 1 ? "new" : "in-inbox";
  }

  /**
   * An entry whose origin pruned its lane's earlier entries through keyFloor: a node that holds none of
   * them (it joined later, or ran no journal then) starts the lane there rather than wait for them for
   * good. A node holding any of them (in the inbox) waits for them as usual; the lanes do the same.
   */
  private raiseLaneFloor(entry: JournalEntry): void {
    const floor = entry.keyFloor ?? 0;
    if (entry.key === null || floor <= 0) return;
    const done = (this.statements.laneMark.pluck().get(entry.origin, entry.key) as number | undefined) ?? 0;
    if (done >= floor) return;
    if (this.statements.inboxLaneAtOrBelow.get(entry.origin, entry.key, floor) !== undefined) return;
    this.setMark({ origin: entry.origin, key: entry.key, done: floor });
  }

  /** Everything received and not yet settled, in arrival order (to seed the applier after a restart). */
  inbox(): JournalEntry[] {
    return (this.statements.inbox.all() as EntryColumns[]).map((row) => this.entryOf(row));
  }

  laneMarks(): LaneWatermark[] {
    return this.statements.laneMarks.all() as LaneWatermark[];
  }

  /**
   * Handlers' results, in one transaction: each entry out of the inbox, into applied or the dead letters,
   * its lane's watermark moved. Applied results are not fsync'd by themselves (see the header); a dead
   * letter is.
   */
  settle(results: readonly SettledResult[], nowMs: number): void {
    const relaxed = results.every((r) => r.kind === "applied");
    this.durably(() => {
      for (const r of results) {
        this.statements.deleteInbox.run(r.entry.id);
        if (r.kind === "applied")
          this.statements.insertApplied.run(r.entry.id, r.entry.origin, "applied", nowMs);
        else {
          const e = r.entry;
          this.statements.insertDead.run(
            e.id,
            e.origin,
            e.hlc,
            e.type,
            e.key,
            e.keySeq,
            e.data,
            JSON.stringify(e.files),
            r.attempts,
            r.reason,
            nowMs,
          );
        }
        if (r.watermark !== null) this.setMark(r.watermark);
      }
    }, relaxed);
  }

  deadLetters(): DeadLetter[] {
    const rows = this.statements.deadLetters.all() as Array<
      EntryColumns & { attempts: number; reason: string; at: number }
    >;
    return rows.map((row) => ({
      entry: this.entryOf(row),
      attempts: row.attempts,
      reason: row.reason,
      deadAtMs: row.at,
    }));
  }

  /**
   * An operator's retry: the dead letter goes back to the inbox, without its lane (which moved on past it),
   * so it applies on its own. Null when there is no such dead letter.
   */
  retryDead(id: string, nowMs: number): JournalEntry | null {
    return this.db.transaction((): JournalEntry | null => {
      const row = this.statements.deadOne.get(id) as EntryColumns | undefined;
      if (row === undefined) return null;
      const entry = { ...this.entryOf(row), key: null, keySeq: 0 };
      this.statements.deleteDead.run(id);
      this.statements.insertInbox.run(
        entry.id,
        entry.origin,
        entry.hlc,
        entry.type,
        null,
        0,
        entry.data,
        JSON.stringify(entry.files),
        nowMs,
      );
      return entry;
    })();
  }

  /** An operator's drop: the dead letter is given up for good (and stays known, so never applied). */
  dropDead(id: string, nowMs: number): boolean {
    return this.db.transaction((): boolean => {
      const row = this.statements.deadOne.get(id) as EntryColumns | undefined;
      if (row === undefined) return false;
      this.statements.deleteDead.run(id);
      this.statements.insertApplied.run(id, row.origin, "dropped", nowMs);
      return true;
    })();
  }

  /** For status: the outbox's backlog, and per origin the last apply. */
  counts(nowMs: number): {
    unshipped: number;
    oldestUnshippedAgeMs: number | null;
    inbox: number;
    deadLetters: number;
    lastAppliedAtMs: Record<NodeId, number>;
    steps: { pending: number; dead: number };
    /** The outbox's oldest and newest seq still kept (pruning removes the oldest), or null when empty. */
    outboxSeqs: { first: number; last: number } | null;
  } {
    const backlog = this.statements.backlog.get() as { n: number; oldest: number | null };
    const lastApplied: Record<NodeId, number> = {};
    for (const row of this.statements.lastApplied.all() as Array<{ origin: string; at: number }>) {
      lastApplied[row.origin] = row.at;
    }
    return {
      unshipped: backlog.n,
      oldestUnshippedAgeMs: backlog.oldest === null ? null : Math.max(0, nowMs - backlog.oldest),
      inbox: this.statements.inboxCount.pluck().get() as number,
      deadLetters: this.statements.deadCount.pluck().get() as number,
      lastAppliedAtMs: lastApplied,
      steps: this.statements.stepCounts.get() as { pending: number; dead: number },
      outboxSeqs: this.outboxSeqs(),
    };
  }

  private outboxSeqs(): { first: number; last: number } | null {
    const first = this.statements.firstSeq.pluck().get() as number | undefined;
    const last = this.statements.lastSeq.pluck().get() as number | null;
    return first === undefined || last === null ? null : { first, last };
  }

  private setMark(watermark: LaneWatermark): void {
    this.statements.setMark.run(watermark.origin, watermark.key, watermark.done);
  }

  private entryOf(row: EntryColumns): JournalEntry {
    return {
      id: row.id,
      origin: row.origin ?? this.nodeId,
      hlc: row.hlc,
      type: row.type,
      key: row.key,
      keySeq: row.key_seq,
      data: row.data,
      files: JSON.parse(row.files) as string[],
    };
  }
}

function createSchema(db: Database.Database, path: string): void {
  db.exec(ddl);
  const version = db.prepare("SELECT value FROM journal_meta WHERE key = 'schema_version'").pluck().get();
  if (version === undefined) {
    db.prepare("INSERT INTO journal_meta (key, value) VALUES ('schema_version', ?)").run(SCHEMA_VERSION);
  } else if (version === 1) {
    // Version 2 adds out_lanes.pruned_through (the ddl above made the rest).
    db.transaction(() => {
      db.exec("ALTER TABLE out_lanes ADD COLUMN pruned_through INTEGER NOT NULL DEFAULT 0");
      db.prepare("UPDATE journal_meta SET value = ? WHERE key = 'schema_version'").run(SCHEMA_VERSION);
    })();
  } else if (version !== SCHEMA_VERSION) {
    throw new JournalOpenError(
      `${path}: journal schema ${String(version)}, this version reads ${SCHEMA_VERSION}`,
    );
  }
}

function prepare(db: Database.Database) {
  const entryColumns = "id, origin, hlc, type, key, key_seq, data, files";
  return {
    outLane: db.prepare("SELECT last_seq FROM out_lanes WHERE key = ?"),
    setOutLane: db.prepare(
      "INSERT INTO out_lanes (key, last_seq) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET last_seq = excluded.last_seq",
    ),
    insertOutbox: db.prepare(
      "INSERT INTO outbox (id, hlc, type, key, key_seq, data, files, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    ),
    outboxAfter: db.prepare(
      `SELECT o.seq, o.id, o.hlc, o.type, o.key, o.key_seq, o.data, o.files, o.recorded_at,
              l.pruned_through AS key_floor
       FROM outbox o LEFT JOIN out_lanes l ON l.key = o.key WHERE o.seq > ? ORDER BY o.seq LIMIT ?`,
    ),
    pruneWindow: db.prepare(
      "SELECT seq, id, key, key_seq, recorded_at, shipped_at FROM outbox WHERE seq > ? AND seq < ? ORDER BY seq LIMIT ?",
    ),
    stepOwed: db.prepare("SELECT 1 FROM step_runs WHERE entry_id = ? AND state != 'done' LIMIT 1"),
    deleteStepRuns: db.prepare("DELETE FROM step_runs WHERE entry_id = ?"),
    deleteOutbox: db.prepare("DELETE FROM outbox WHERE seq = ?"),
    setPrunedThrough: db.prepare(
      "UPDATE out_lanes SET pruned_through = max(pruned_through, ?) WHERE key = ?",
    ),
    firstSeq: db.prepare("SELECT seq FROM outbox ORDER BY seq LIMIT 1"),
    lastSeq: db.prepare("SELECT max(seq) FROM outbox"),
    laneMark: db.prepare("SELECT done FROM lane_marks WHERE origin = ? AND key = ?"),
    inboxLaneAtOrBelow: db.prepare(
      "SELECT 1 FROM inbox WHERE origin = ? AND key = ? AND key_seq <= ? LIMIT 1",
    ),
    markShippedThrough: db.prepare("UPDATE outbox SET shipped_at = ? WHERE seq <= ? AND shipped_at IS NULL"),
    shippingThrough: db.prepare(
      "SELECT seq, id, hlc, type, key, key_seq, data, files FROM outbox WHERE seq <= ? AND shipped_at IS NULL ORDER BY seq",
    ),
    insertStepRun: db.prepare(
      "INSERT OR IGNORE INTO step_runs (entry_id, step, state, attempts, next_at, reason) VALUES (?, ?, 'pending', 0, ?, '')",
    ),
    dueStepRuns: db.prepare(
      `SELECT r.step, r.attempts, o.id, o.hlc, o.type, o.key, o.key_seq, o.data, o.files
       FROM step_runs r JOIN outbox o ON o.id = r.entry_id
       WHERE r.state = 'pending' AND r.next_at <= ? ORDER BY r.next_at LIMIT ?`,
    ),
    nextStepRun: db.prepare("SELECT min(next_at) FROM step_runs WHERE state = 'pending'"),
    finishStepRun: db.prepare(
      "UPDATE step_runs SET state = ?, attempts = ?, reason = ? WHERE entry_id = ? AND step = ?",
    ),
    retryStepRun: db.prepare(
      "UPDATE step_runs SET attempts = ?, next_at = ?, reason = ? WHERE entry_id = ? AND step = ?",
    ),
    deadStepRuns: db.prepare(
      "SELECT entry_id, step, attempts, reason FROM step_runs WHERE state = 'dead' ORDER BY entry_id",
    ),
    reviveStepRun: db.prepare(
      "UPDATE step_runs SET state = 'pending', next_at = ? WHERE entry_id = ? AND step = ? AND state = 'dead'",
    ),
    cursor: db.prepare("SELECT seq FROM transport_cursors WHERE name = ?"),
    lastHlc: db.prepare("SELECT hlc FROM outbox ORDER BY seq DESC LIMIT 1"),
    setCursor: db.prepare(
      "INSERT INTO transport_cursors (name, seq) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
    ),
    dropCursor: db.prepare("DELETE FROM transport_cursors WHERE name = ?"),
    unshipped: db.prepare(
      "SELECT seq, id, hlc, type, key, key_seq, data, files, recorded_at FROM outbox WHERE shipped_at IS NULL ORDER BY seq LIMIT ?",
    ),
    appliedOutcome: db.prepare("SELECT outcome FROM applied WHERE id = ?"),
    deadExists: db.prepare("SELECT 1 FROM dead WHERE id = ?"),
    insertInbox: db.prepare(
      `INSERT OR IGNORE INTO inbox (${entryColumns}, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    inbox: db.prepare(`SELECT ${entryColumns} FROM inbox ORDER BY n`),
    deleteInbox: db.prepare("DELETE FROM inbox WHERE id = ?"),
    insertApplied: db.prepare("INSERT OR REPLACE INTO applied (id, origin, outcome, at) VALUES (?, ?, ?, ?)"),
    insertDead: db.prepare(
      `INSERT OR REPLACE INTO dead (${entryColumns}, attempts, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    deadLetters: db.prepare(`SELECT ${entryColumns}, attempts, reason, at FROM dead ORDER BY at, id`),
    deadOne: db.prepare(`SELECT ${entryColumns} FROM dead WHERE id = ?`),
    deleteDead: db.prepare("DELETE FROM dead WHERE id = ?"),
    laneMarks: db.prepare("SELECT origin, key, done FROM lane_marks"),
    setMark: db.prepare(
      "INSERT INTO lane_marks (origin, key, done) VALUES (?, ?, ?) ON CONFLICT (origin, key) DO UPDATE SET done = excluded.done",
    ),
    backlog: db.prepare(
      "SELECT count(*) AS n, min(recorded_at) AS oldest FROM outbox WHERE shipped_at IS NULL",
    ),
    // The status asks these often and the tables only grow (applied for good, step runs kept done): each
    // answer walks an index a few steps per origin, not the whole table. The origins are found by jumping
    // through applied_by_origin (the next origin after the last), then each one's latest entry read from it.
    lastApplied: db.prepare(
      `WITH RECURSIVE origins(origin) AS (
         SELECT min(origin) FROM applied
         UNION ALL SELECT (SELECT min(origin) FROM applied WHERE origin > origins.origin) FROM origins
         WHERE origins.origin IS NOT NULL)
       SELECT origin, (SELECT max(at) FROM applied WHERE applied.origin = origins.origin) AS at
       FROM origins WHERE origin IS NOT NULL`,
    ),
    inboxCount: db.prepare("SELECT count(*) FROM inbox"),
    deadCount: db.prepare("SELECT count(*) FROM dead"),
    stepCounts: db.prepare(
      `SELECT (SELECT count(*) FROM step_runs WHERE state = 'pending') AS pending,
              (SELECT count(*) FROM step_runs WHERE state = 'dead') AS dead`,
    ),
  };
}
