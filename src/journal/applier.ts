// Applying other nodes' entries here: what a transport delivers is opened (a message that does not open or
// does not agree with itself is refused, reported, and never applied), de-duplicated against everything
// ever received, written to the inbox, and only then acknowledged; JournalLanes (src/core/journal_lanes.ts)
// says which inbox entries run their handler when, and each result is committed (applied, or a dead letter,
// with its lane's watermark) in one transaction before the lane moves on.
import type { Logger } from "pino";
import type { JournalHandlerConfig } from "../config/index.ts";
import { JournalLanes, type LaneEntry, type LanesOptions, watermarkAfter } from "../core/journal_lanes.ts";
import type { NodeId } from "../core/types.ts";
import { type EntryHandler, entryHandler, type HandlerSpec, handlerFor } from "./entry_handlers.ts";
import { GroupCommit } from "./group_commit.ts";
import type { JournalDb, JournalEntry, ReceiveResult, SettledResult } from "./journal_db.ts";
import type { JournalKey } from "./journal_key.ts";
import { openBatch, readHeader } from "./journal_wire.ts";

export interface ApplierOptions {
  nodeId: NodeId;
  db: JournalDb;
  key: JournalKey;
  /** By entry type ("*" for the rest): a handler of the config, or an embedding app's (combineHandlers). */
  handlers: Readonly<Record<string, HandlerSpec>>;
  lanes: LanesOptions;
  logger: Logger;
  /** Journal events for GET /api/v1/events: refusals, dead letters, retries of dead letters. */
  onEvent?: (fields: Record<string, unknown>) => void;
  /** Wall-clock ms (what the tables record); Date.now by default. */
  now?: () => number;
}

/** What a delivered message held: entries newly stored, already known, this node's own; or refused whole. */
export type DeliverOutcome =
  | { refused: true }
  | { refused: false; stored: number; known: number; own: number };

export class JournalApplier {
  private readonly options: ApplierOptions;
  private readonly now: () => number;
  private readonly lanes: JournalLanes;
  private readonly handlers = new Map<string, EntryHandler>();
  /** Entries of the inbox by id (the lanes hold only their routing fields). */
  private readonly entries = new Map<string, JournalEntry>();
  private readonly running = new Set<Promise<void>>();
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  private refused = 0;
  /** Deliveries arriving together share one transaction and one fsync. */
  private readonly receiver: GroupCommit<JournalEntry, ReceiveResult>;
  /** Results of one turn share one transaction. */
  private readonly settler: GroupCommit<SettledResult, undefined>;

  constructor(options: ApplierOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    this.lanes = new JournalLanes(options.lanes);
    this.receiver = new GroupCommit((entries) => options.db.receiveMany(entries, this.now()));
    this.settler = new GroupCommit((results) => {
      options.db.settle(results, this.now());
      return results.map(() => undefined);
    });
  }

  /** Seeds the lanes from the durable state (watermarks, then the inbox in arrival order) and starts. */
  start(): void {
    this.lanes.restore(this.options.db.laneMarks());
    for (const entry of this.options.db.inbox()) this.queue(entry);
    this.pump();
  }

  /** A transport delivered `message` (a sealed batch): resolves once it is durable here (or refused). */
  async deliver(message: Uint8Array): Promise<DeliverOutcome> {
    // A broker queue brings this node's own batches back: known by the clear header, skipped unopened (an
    // open costs an X25519 exchange). A header altered to name this node only hides a batch from this
    // node, which whoever can alter messages could do by dropping it; the other nodes refuse it.
    const header = readHeader(message);
    if (header !== null && header.origin === this.options.nodeId) {
      return { refused: false, stored: 0, known: 0, own: header.ids.length };
    }
    const opened = await openBatch(message, this.options.key, header);
    if (!opened.ok) {
      this.refused += 1;
      const fields = {
        ids: opened.header?.ids ?? null,
        origin: opened.header?.origin ?? null,
        reason: opened.reason,
      };
      this.options.logger.warn(fields, "journal message refused");
      this.options.onEvent?.({ event: "refused", ...fields });
      return { refused: true };
    }
    if (this.stopped) throw new Error("the journal is stopping");
    // All together: one transaction (group commit) for the whole batch.
    const results = await Promise.all(opened.entries.map((entry) => this.receiver.push(entry)));
    let stored = 0;
    opened.entries.forEach((entry, i) => {
      if (results[i] !== "new" || this.stopped) return;
      this.queue(entry);
      stored += 1;
    });
    this.pump();
    return { refused: false, stored, known: opened.entries.length - stored, own: 0 };
  }

  /** An operator's retry of a dead letter: back in the inbox, applied on its own (its lane moved on). */
  retryDead(id: string): boolean {
    const entry = this.options.db.retryDead(id, this.now());
    if (entry === null) return false;
    this.options.onEvent?.({ event: "dead-letter-retried", id, origin: entry.origin, type: entry.type });
    this.queue(entry);
    this.pump();
    return true;
  }

  status(): { waiting: number; running: number; blocked: number; refused: number } {
    return { ...this.lanes.depth(), refused: this.refused };
  }

  /** Starts no more handlers; waits for those running (their results are still recorded). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    while (this.running.size > 0) await Promise.all(this.running);
  }

  private queue(entry: JournalEntry): void {
    const offered = this.lanes.offer(entry, this.now());
    if (offered.kind !== "queued") return;
    this.entries.set(entry.id, entry);
    if (offered.renumbered || offered.unordered) {
      this.options.logger.warn(
        { id: entry.id, origin: entry.origin, key: entry.key, keySeq: entry.keySeq },
        offered.unordered
          ? "journal entry applies outside its lane: another entry holds its place (its origin's journal started over)"
          : "journal lane numbered again by its origin (its journal started over)",
      );
    }
  }

  private pump(): void {
    if (this.stopped) return;
    for (const lane of this.lanes.due(this.now())) {
      const run = this.run(lane)
        .catch((error: unknown) => {
          // Only the journal's own tables can fail here (the disk): the entry stays in the inbox, and runs
          // again after a restart.
          this.options.logger.error({ err: error, id: lane.id }, "journal result not recorded");
        })
        .finally(() => this.running.delete(run));
      this.running.add(run);
    }
    this.scheduleRetry();
  }

  private async run(lane: LaneEntry): Promise<void> {
    const entry = this.entries.get(lane.id);
    if (entry === undefined) throw new Error(`journal entry ${lane.id} is not in memory`);
    const spec = handlerFor(this.options.handlers, entry.type);
    let ok: boolean;
    let detail: string;
    if (spec === null) {
      ok = false;
      detail = `no handler for type ${entry.type} on ${this.options.nodeId}`;
    } else {
      const handler = typeof spec === "function" ? spec : this.handler(entry.type, spec);
      ({ ok, detail } = await handler(entry).catch((error: Error) => ({ ok: false, detail: error.message })));
    }
    // Stored first (with the others finishing in this turn: one transaction), and only then told to the
    // lanes, so the next entry of the lane never runs before this one's result is in the table.
    const outcome = this.lanes.outcomeOf(lane.id, ok);
    const watermark = watermarkAfter(lane);
    if (outcome.kind === "applied") await this.settler.push({ kind: "applied", entry: lane, watermark });
    else if (outcome.kind === "dead") {
      await this.settler.push({ kind: "dead", entry, attempts: outcome.attempts, reason: detail, watermark });
    }
    const result = this.lanes.finished(lane.id, ok, this.now());
    const fields = { id: entry.id, origin: entry.origin, type: entry.type, key: entry.key };
    if (result.kind === "applied") {
      this.entries.delete(lane.id);
      this.options.logger.debug(fields, "journal entry applied");
    } else if (result.kind === "dead") {
      this.entries.delete(lane.id);
      this.options.logger.warn(
        { ...fields, attempts: result.attempts, reason: detail },
        "journal entry is a dead letter",
      );
      this.options.onEvent?.({ event: "dead-letter", ...fields, attempts: result.attempts, reason: detail });
    } else {
      this.options.logger.info(
        { ...fields, attempts: result.attempts, reason: detail, retryInMs: result.atMs - this.now() },
        "journal entry failed; retried later",
      );
    }
    this.pump();
  }

  private handler(type: string, config: JournalHandlerConfig): EntryHandler {
    let handler = this.handlers.get(type);
    if (handler === undefined) {
      handler = entryHandler(config);
      this.handlers.set(type, handler);
    }
    return handler;
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const at = this.lanes.nextRetryAtMs();
    if (at === null || this.stopped) return;
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = null;
        this.pump();
      },
      Math.max(0, at - this.now()),
    );
    this.retryTimer.unref();
  }
}
