// One node's journal: recording (durable in the outbox when record() returns), the transport that ships the
// outbox and delivers the other nodes' entries (sealed to the replication key on the way out), the applier,
// the dead letters, and the status. src/agent/journal_capability.ts plugs it into the agent.
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type Database from "better-sqlite3";
import type { Logger } from "pino";
import type { JournalConfig } from "../config/index.ts";
import { HybridClock } from "../core/hlc.ts";
import { entryTypePattern, type NodeId } from "../core/types.ts";
import type { JournalTransport, SealedBatch } from "../queue/index.ts";
import { JournalApplier } from "./applier.ts";
import { combineHandlers, entryHandler, type InProcessHandler } from "./entry_handlers.ts";
import { GroupCommit } from "./group_commit.ts";
import { type DeadLetter, JournalDb, type JournalEntry, type RecordInput } from "./journal_db.ts";
import type { JournalKey } from "./journal_key.ts";
import { batchEntriesMax, orderingKeyMax, sealBatch } from "./journal_wire.ts";
import { type PostStep, PostStepRunner } from "./post_steps.ts";

/** The largest `data` of one entry (JSON text); a journal carries actions, not files. */
export const entryDataBytesMax = 1024 * 1024;
const filesMax = 1000;
/** HybridClock's bound on a remote clock's lead; this clock only stamps local records. */
const clockSkewMsMax = 60_000;
/** Outbox entries one pruning transaction looks at, and such transactions in one sweep at most. */
const pruneScanMax = 1_000;
const pruneBatchesMax = 100;
/** Sealed batches kept for the other peers (the mesh has up to 4 in flight per peer). */
const sealedKeptMax = 16;

/** How often the outbox is pruned for a retention: a tenth of it, from every second to every minute. */
export function outboxPruneEveryMs(retentionMs: number): number {
  return Math.min(60_000, Math.max(1_000, Math.floor(retentionMs / 10)));
}

export interface RecordRequest {
  type: string;
  /** Any JSON value. */
  data: unknown;
  key?: string | null;
  files?: readonly string[];
}

export type RecordOutcome = { ok: true; entry: JournalEntry } | { ok: false; reason: string };
export type RecordManyOutcome = { ok: true; entries: JournalEntry[] } | { ok: false; reason: string };

/** Entries of one recordMany call (one request of the record API) at most. */
export const recordBatchMax = 1000;

export interface JournalNodeOptions {
  nodeId: NodeId;
  dataDir: string;
  config: JournalConfig;
  key: JournalKey;
  transport: JournalTransport;
  logger: Logger;
  onEvent?: (fields: Record<string, unknown>) => void;
  /** Post-execution steps of the embedding code, beside those of the config (the blob offload). */
  postSteps?: readonly PostStep[];
  /**
   * An embedding app's own database: the journal's tables go in it instead of journal.db in the data
   * directory, so the app records in its own transactions (recordNow). The app keeps and closes it.
   */
  appDb?: Database.Database;
  /** An embedding app's handlers by entry type, beside the config's (combineHandlers). */
  handlers?: Readonly<Record<string, InProcessHandler>>;
}

/** A record refused (its reason as message): thrown by recordNow, so the app's transaction rolls back. */
export class JournalRecordError extends Error {
  override readonly name = "JournalRecordError";
}

/** The config's post-execution steps: a command for each shipped entry of the given types. */
function configuredSteps(config: JournalConfig): PostStep[] {
  return config.steps.map((step) => {
    const run = entryHandler({ kind: "exec", argv: step.argv, timeoutMs: step.timeoutMs });
    return {
      name: step.name,
      appliesTo: (entry) => step.types === null || step.types.includes(entry.type),
      run,
    };
  });
}

export class JournalNode {
  private readonly options: JournalNodeOptions;
  readonly db: JournalDb;
  private readonly applier: JournalApplier;
  private readonly clock: HybridClock;
  /** Records arriving together share one transaction and one fsync; a call's entries are all or none. */
  private readonly recorder: GroupCommit<readonly RecordInput[], JournalEntry[]>;
  /**
   * The last batches sealed, by the seq they follow: the mesh sends the same outbox ranges to every peer,
   * and a seal costs an X25519 exchange, so a peer asking from the same seq gets the same batch (the outbox
   * after a seq never changes: pruning takes only what every peer holds, and empties this).
   */
  private readonly sealed = new Map<number, { batch: SealedBatch; entries: number }>();
  private readonly steps: PostStepRunner;
  private pruning = false;
  private prunedTotal = 0;
  private stopped = false;

  constructor(options: JournalNodeOptions) {
    this.options = options;
    // Refused before anything is opened: a type handled both ways.
    const handlers = combineHandlers(options.config.handlers, options.handlers ?? {});
    this.db =
      options.appDb === undefined
        ? JournalDb.open(join(options.dataDir, "journal.db"), options.nodeId)
        : JournalDb.attach(options.appDb, options.nodeId);
    const last = parseHlc(this.db.lastRecordedHlc());
    this.clock = new HybridClock({ skewMsMax: clockSkewMsMax, ...(last === null ? {} : { last }) });
    this.recorder = new GroupCommit((calls) => {
      const entries = this.db.recordMany(calls.flat(), Date.now());
      let at = 0;
      return calls.map((inputs) => {
        at += inputs.length;
        return entries.slice(at - inputs.length, at);
      });
    });
    // Handlers and steps retry alike: the same attempts, backoff and concurrency.
    const { maxAttempts, retryBaseMs, retryMaxMs, concurrency } = options.config;
    const retries = { maxAttempts, retryBaseMs, retryMaxMs, concurrency };
    const events = options.onEvent === undefined ? {} : { onEvent: options.onEvent };
    this.steps = new PostStepRunner({
      db: this.db,
      steps: [...configuredSteps(options.config), ...(options.postSteps ?? [])],
      ...retries,
      logger: options.logger,
      ...events,
    });
    this.applier = new JournalApplier({
      nodeId: options.nodeId,
      db: this.db,
      key: options.key,
      handlers,
      lanes: retries,
      logger: options.logger,
      ...events,
    });
  }

  start(): void {
    this.applier.start();
    this.steps.start();
    this.options.transport.start({
      outboxAfter: (seq, limit, fullOnly) => this.sealedAfter(seq, limit, fullOnly === true),
      deliver: async (message) => {
        await this.applier.deliver(message);
      },
      shipped: (seq) => {
        const stepsFor = this.steps.any ? (entry: JournalEntry) => this.steps.stepsFor(entry) : null;
        if (this.db.markShippedThrough(seq, Date.now(), stepsFor) > 0) this.steps.wake();
      },
      cursor: (name) => this.db.cursor(name),
      setCursor: (name, seq) => this.db.setCursor(name, seq),
      dropCursor: (name) => this.db.dropCursor(name),
    });
  }

  /** Records an entry of this node: on disk when this resolves, then shipped to every other node. */
  async record(request: RecordRequest): Promise<RecordOutcome> {
    const outcome = await this.recordMany([request]);
    return outcome.ok ? { ok: true, entry: outcome.entries[0] as JournalEntry } : outcome;
  }

  /**
   * Records several entries of this node in one transaction (one fsync), in the order given: all of them
   * on disk when this resolves, or none (one refused refuses the lot, its index in the reason).
   */
  async recordMany(requests: readonly RecordRequest[]): Promise<RecordManyOutcome> {
    if (requests.length === 0 || requests.length > recordBatchMax) {
      return { ok: false, reason: `entries: expected 1-${recordBatchMax}` };
    }
    for (const [i, request] of requests.entries()) {
      const problem = recordProblem(request);
      if (problem !== null)
        return { ok: false, reason: requests.length === 1 ? problem : `entries[${i}].${problem}` };
    }
    const entries = await this.recorder.push(requests.map((request) => this.stamped(request)));
    this.options.transport.recorded();
    return { ok: true, entries };
  }

  /** A checked request as the row to record: its id and HLC stamp taken now. */
  private stamped(request: RecordRequest): RecordInput {
    const hlc = this.clock.now(Date.now());
    return {
      id: newEntryId(hlc.wallMs),
      hlc: `${hlc.wallMs}.${hlc.counter}`,
      type: request.type,
      key: request.key ?? null,
      data: JSON.stringify(request.data),
      files: request.files ?? [],
    };
  }

  /**
   * Records an entry at once, synchronously: inside the caller's transaction on the app's database it
   * commits or rolls back with the app's change (the transactional outbox); outside one, in its own
   * transaction. A refused record throws JournalRecordError (rolling the caller's transaction back). The
   * transport hears of it only after the caller's synchronous code (its transaction) has finished: a
   * rolled-back entry is never read.
   */
  recordNow(request: RecordRequest): JournalEntry {
    const problem = recordProblem(request);
    if (problem !== null) throw new JournalRecordError(problem);
    if (this.stopped) throw new JournalRecordError("the journal is stopped");
    const entry = this.db.record(this.stamped(request), Date.now());
    setImmediate(() => {
      if (!this.stopped) this.options.transport.recorded();
    });
    return entry;
  }

  /**
   * Deletes this node's entries past the retention that are shipped and owe no step (journal_db.ts
   * pruneOutbox), in transactions of up to pruneScanMax entries with the event loop free between them.
   * Returns how many went; 0 with a retention of 0, or while a sweep runs.
   */
  async prune(nowMs = Date.now()): Promise<number> {
    const retentionMs = this.options.config.outboxRetentionMs;
    if (retentionMs <= 0 || this.pruning || this.stopped) return 0;
    this.pruning = true;
    let pruned = 0;
    try {
      let afterSeq = 0;
      for (let batch = 0; batch < pruneBatchesMax && !this.stopped; batch++) {
        const result = this.db.pruneOutbox(nowMs - retentionMs, afterSeq, pruneScanMax);
        // A batch sealed before holds no keyFloor for what went now.
        if (result.pruned > 0) this.sealed.clear();
        pruned += result.pruned;
        afterSeq = result.lastSeq;
        if (result.done) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      this.pruning = false;
    }
    this.prunedTotal += pruned;
    if (pruned > 0) this.options.logger.info({ pruned, retentionMs }, "journal outbox pruned");
    return pruned;
  }

  deadLetters(): DeadLetter[] {
    return this.db.deadLetters();
  }

  /** Post-execution steps given up after their attempts. */
  deadSteps(): Array<{ entryId: string; step: string; attempts: number; reason: string }> {
    return this.db.deadStepRuns();
  }

  /** Runs a given-up step again. */
  retryStep(entryId: string, step: string): boolean {
    const revived = this.db.retryStepRun(entryId, step, Date.now());
    if (revived) this.steps.wake();
    return revived;
  }

  retryDead(id: string): boolean {
    return this.applier.retryDead(id);
  }

  dropDead(id: string): boolean {
    const dropped = this.db.dropDead(id, Date.now());
    if (dropped) this.options.onEvent?.({ event: "dead-letter-dropped", id });
    return dropped;
  }

  status(): Record<string, unknown> {
    return {
      queue: this.options.transport.kind,
      recipient: this.options.key.recipient,
      ...this.db.counts(Date.now()),
      outboxRetentionMs: this.options.config.outboxRetentionMs,
      prunedSinceStart: this.prunedTotal,
      applier: this.applier.status(),
      transport: this.options.transport.status(),
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.options.transport.stop();
    await this.steps.stop();
    await this.applier.stop();
    this.db.close();
  }

  private async sealedAfter(seq: number, limit: number, fullOnly: boolean): Promise<SealedBatch | null> {
    const wanted = Math.min(limit, batchEntriesMax);
    const known = this.sealed.get(seq);
    if (known !== undefined && (fullOnly ? known.entries === wanted : known.entries <= wanted)) {
      return known.batch;
    }
    // Asked for a full batch, most often there is none yet: known without reading (or decoding) any row.
    if (fullOnly && this.db.lastSeq() - seq < wanted) return null;
    const rows = this.db.outboxAfter(seq, wanted);
    if (fullOnly && rows.length < wanted) return null;
    const first = rows[0];
    const final = rows.at(-1);
    if (first === undefined || final === undefined) return null;
    const message = await sealBatch(
      rows.map((row) => row.entry),
      this.options.key,
    );
    const batch = { firstSeq: first.seq, lastSeq: final.seq, message };
    this.sealed.set(seq, { batch, entries: rows.length });
    // Kept for the peers a few batches behind the first to ask; the oldest goes first.
    for (const old of this.sealed.keys()) {
      if (this.sealed.size <= sealedKeptMax) break;
      this.sealed.delete(old);
    }
    return batch;
  }
}

/**
 * A new entry's id: a UUID of version 7 (RFC 9562), the record's wall-clock ms first, then 74 random bits.
 * Ids recorded one after another sort together, so the tables keyed by id (the outbox's, the inbox's and
 * `applied`, which keeps every id for good) grow at their end: a transaction of a few hundred entries
 * touches a few pages of each, not one page per entry as random ids did (settling results cost a third).
 */
export function newEntryId(wallMs: number): string {
  const bytes = randomBytes(16);
  bytes.writeUIntBE(wallMs, 0, 6);
  bytes[6] = ((bytes[6] as number) & 0x0f) | 0x70;
  bytes[8] = ((bytes[8] as number) & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Why `request` cannot be recorded, or null. */
export function recordProblem(request: RecordRequest): string | null {
  if (typeof request.type !== "string" || !entryTypePattern.test(request.type)) {
    return "type: expected 1-64 characters of a-z 0-9 . _ - starting with a letter or digit";
  }
  const key = request.key ?? null;
  if (key !== null && (typeof key !== "string" || key.length === 0 || key.length > orderingKeyMax)) {
    return `key: expected 1-${orderingKeyMax} characters`;
  }
  if (request.data === undefined) return "data: expected a JSON value";
  const bytes = Buffer.byteLength(JSON.stringify(request.data));
  if (bytes > entryDataBytesMax) return `data: ${bytes} bytes exceeds ${entryDataBytesMax}`;
  const files = request.files ?? [];
  if (
    files.length > filesMax ||
    files.some((f) => typeof f !== "string" || f.length === 0 || f.length > 4096)
  ) {
    return `files: expected up to ${filesMax} file names`;
  }
  return null;
}

function parseHlc(text: string | null): { wallMs: number; counter: number } | null {
  const match = text === null ? null : /^(\d+)\.(\d+)$/.exec(text);
  return match === null ? null : { wallMs: Number(match[1]), counter: Number(match[2]) };
}
