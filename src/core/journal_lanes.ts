// The journal applier's schedule, pure: which received entries may run their handler now, what a handler's
// result does, and when to look again. The shell (src/journal) keeps what is durable (the inbox, the applied
// and dead-letter tables, each lane's watermark) and seeds this from it after a restart.
//
// Entries recorded on one node with one ordering key form a lane, and apply in the order that node recorded
// them: each carries its position in its lane (`keySeq`, from 1), and waits until the one before it applied
// or was given up, whatever order the queue delivered them in (a redelivery, a queue that reorders). A
// failing entry retries with exponential backoff and holds back only its own lane; after `maxAttempts` it
// goes to the dead letters and its lane moves on. Entries without a key each apply on their own. Lanes are
// per origin: entries of one key recorded on different nodes have no order between them (as with Pub/Sub's
// ordering keys, which order one publisher's messages). Written here rather than taken from a queue client:
// each queue orders differently, and the order must hold across all of them and across restarts.
import type { NodeId } from "./types.ts";

export interface LaneEntry {
  id: string;
  origin: NodeId;
  /** The ordering key; null: none (it applies on its own). */
  key: string | null;
  /** Its position among its origin's entries with this key, from 1; unused without a key. */
  keySeq: number;
  /**
   * Its origin pruned the lane's entries up to this keySeq (src/journal/journal_db.ts): a receiver holding
   * none of them starts the lane after it instead of waiting for them. Absent or 0: nothing pruned.
   */
  keyFloor?: number;
}

export interface LanesOptions {
  /** Runs of the handler before an entry goes to the dead letters (at least 1). */
  maxAttempts: number;
  /** The wait after the first failure; doubled after each further one, up to retryMaxMs. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** Handlers running at once, across lanes. */
  concurrency: number;
}

/** A lane's progress as the shell stores it: every keySeq up to `done` applied or given up. */
export interface LaneWatermark {
  origin: NodeId;
  key: string;
  done: number;
}

export type OfferResult =
  /**
   * `renumbered`: its keySeq was at or below the lane's watermark under a new id: the origin numbered the
   * lane again (its journal was lost and started over), so the lane follows the new numbering.
   * `unordered`: another entry waits at its keySeq already (one of the numbering before): it applies on
   * its own, out of its lane, rather than displace that one.
   */
  | { kind: "queued"; renumbered: boolean; unordered: boolean }
  /** Queued or running already (a redelivery). The shell drops ids it applied or gave up before offering. */
  | { kind: "duplicate" };

export type FinishResult =
  | { kind: "applied" }
  | { kind: "retry"; attempts: number; atMs: number }
  | { kind: "dead"; attempts: number };

/**
 * The watermark of `entry`'s lane once it settled (applied or given up): what the shell stores with the
 * result, before it tells the lanes (an entry runs only right after its lane's watermark). Null without a
 * lane (no key, or applied out of its lane). Pass the entry as due() returned it.
 */
export function watermarkAfter(entry: LaneEntry): LaneWatermark | null {
  return entry.key === null ? null : { origin: entry.origin, key: entry.key, done: entry.keySeq };
}

/** The wait before run `attempts + 1` after `attempts` failed runs: doubling from `baseMs`, up to `maxMs`. */
export function retryBackoffMs(attempts: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(30, attempts - 1));
}

export class JournalLanesError extends Error {
  override readonly name = "JournalLanesError";
}

interface Waiting {
  entry: LaneEntry;
  /** Handler runs so far. */
  attempts: number;
  /** Not before then (after a failure). */
  notBeforeMs: number;
  running: boolean;
}

interface Lane {
  done: number;
  /** Received, not yet applied or given up, by keySeq. */
  pending: Map<number, Waiting>;
}

export class JournalLanes {
  private readonly options: LanesOptions;
  private readonly lanes = new Map<string, Lane>();
  /** Every entry queued or running, by id. */
  private readonly waiting = new Map<string, Waiting>();
  /** May run as soon as there is room, in the order they became runnable. */
  private readonly ready = new Map<string, Waiting>();
  /** Waiting out a retry's backoff. */
  private readonly delayed = new Map<string, Waiting>();
  private running = 0;

  constructor(options: LanesOptions) {
    if (!(Number.isInteger(options.maxAttempts) && options.maxAttempts >= 1))
      throw new RangeError(`maxAttempts must be an integer >= 1, got ${options.maxAttempts}`);
    if (!(options.retryBaseMs >= 0 && options.retryMaxMs >= options.retryBaseMs))
      throw new RangeError("retryBaseMs must be >= 0 and retryMaxMs >= retryBaseMs");
    if (!(Number.isInteger(options.concurrency) && options.concurrency >= 1))
      throw new RangeError(`concurrency must be an integer >= 1, got ${options.concurrency}`);
    this.options = options;
  }

  /** After a restart, before any offer: each lane's watermark as stored. */
  restore(watermarks: Iterable<LaneWatermark>): void {
    for (const { origin, key, done } of watermarks) this.lane(origin, key).done = done;
  }

  /** A received entry the shell has not applied or given up before. */
  offer(offered: LaneEntry, nowMs: number): OfferResult {
    if (this.waiting.has(offered.id)) return { kind: "duplicate" };
    let entry = offered;
    let renumbered = false;
    let unordered = false;
    if (entry.key !== null) {
      if (!(Number.isInteger(entry.keySeq) && entry.keySeq >= 1))
        throw new JournalLanesError(`entry ${entry.id}: keySeq must be an integer >= 1, got ${entry.keySeq}`);
      const lane = this.lane(entry.origin, entry.key);
      this.raiseFloor(lane, entry.keyFloor ?? 0);
      if (lane.pending.has(entry.keySeq)) {
        unordered = true;
        entry = { ...entry, key: null };
      } else if (entry.keySeq <= lane.done) {
        renumbered = true;
        lane.done = entry.keySeq - 1;
      }
    }
    const waiting: Waiting = { entry, attempts: 0, notBeforeMs: nowMs, running: false };
    this.waiting.set(entry.id, waiting);
    if (entry.key === null) this.ready.set(entry.id, waiting);
    else {
      const lane = this.lane(entry.origin, entry.key);
      lane.pending.set(entry.keySeq, waiting);
      if (entry.keySeq === lane.done + 1) this.ready.set(entry.id, waiting);
    }
    this.check(entry);
    return { kind: "queued", renumbered, unordered };
  }

  /**
   * The entries to run now, marked running: heads of their lanes (or keyless), past any backoff, as many as
   * the concurrency leaves room for, in the order they became runnable.
   */
  due(nowMs: number): LaneEntry[] {
    for (const [id, waiting] of this.delayed) {
      if (waiting.notBeforeMs > nowMs) continue;
      this.delayed.delete(id);
      this.ready.set(id, waiting);
    }
    const started: LaneEntry[] = [];
    for (const [id, waiting] of this.ready) {
      if (this.running >= this.options.concurrency) break;
      this.ready.delete(id);
      waiting.running = true;
      waiting.attempts += 1;
      this.running += 1;
      started.push(waiting.entry);
      this.check(waiting.entry);
    }
    return started;
  }

  /** What finished(id, ok) will make of a running entry, without doing it (so the shell can store it first). */
  outcomeOf(
    id: string,
    ok: boolean,
  ): { kind: "applied" } | { kind: "dead"; attempts: number } | { kind: "retry" } {
    const waiting = this.waiting.get(id);
    if (waiting === undefined || !waiting.running) throw new JournalLanesError(`entry ${id} is not running`);
    if (ok) return { kind: "applied" };
    return waiting.attempts >= this.options.maxAttempts
      ? { kind: "dead", attempts: waiting.attempts }
      : { kind: "retry" };
  }

  /** The handler of a running entry returned. `ok: false` retries it after a backoff, or gives it up. */
  finished(id: string, ok: boolean, nowMs: number): FinishResult {
    const waiting = this.waiting.get(id);
    if (waiting === undefined || !waiting.running) throw new JournalLanesError(`entry ${id} is not running`);
    waiting.running = false;
    this.running -= 1;
    if (ok) {
      this.settle(waiting);
      return { kind: "applied" };
    }
    if (waiting.attempts >= this.options.maxAttempts) {
      this.settle(waiting);
      return { kind: "dead", attempts: waiting.attempts };
    }
    const backoffMs = retryBackoffMs(waiting.attempts, this.options.retryBaseMs, this.options.retryMaxMs);
    waiting.notBeforeMs = nowMs + backoffMs;
    this.delayed.set(id, waiting);
    this.check(waiting.entry);
    return { kind: "retry", attempts: waiting.attempts, atMs: waiting.notBeforeMs };
  }

  /** When a backoff ends next (for the shell's timer), or null when none is waiting. */
  nextRetryAtMs(): number | null {
    let next: number | null = null;
    for (const waiting of this.delayed.values()) {
      if (next === null || waiting.notBeforeMs < next) next = waiting.notBeforeMs;
    }
    return next;
  }

  /** Entries queued or running, and how many of them wait for an earlier entry of their lane. */
  depth(): { waiting: number; running: number; blocked: number } {
    const blocked = this.waiting.size - this.running - this.ready.size - this.delayed.size;
    return { waiting: this.waiting.size, running: this.running, blocked };
  }

  /**
   * The origin pruned the lane through `floor`: with none of those entries waiting here (none ever
   * received, or all settled), the lane starts after it. One waiting means they were delivered here: the
   * lane goes through them in order, as usual.
   */
  private raiseFloor(lane: Lane, floor: number): void {
    if (floor <= lane.done) return;
    for (const keySeq of lane.pending.keys()) if (keySeq <= floor) return;
    lane.done = floor;
    const next = lane.pending.get(floor + 1);
    if (next !== undefined) this.ready.set(next.entry.id, next);
  }

  /** Applied or given up: its lane moves on to the next keySeq, if received. */
  private settle(waiting: Waiting): void {
    this.forget(waiting);
    const { entry } = waiting;
    if (entry.key === null) return;
    const lane = this.lane(entry.origin, entry.key);
    lane.done = entry.keySeq;
    const next = lane.pending.get(lane.done + 1);
    if (next !== undefined) this.ready.set(next.entry.id, next);
    this.check(entry);
  }

  private forget(waiting: Waiting): void {
    const { entry } = waiting;
    this.waiting.delete(entry.id);
    this.ready.delete(entry.id);
    this.delayed.delete(entry.id);
    if (entry.key !== null) {
      const lane = this.lanes.get(laneId(entry.origin, entry.key));
      if (lane?.pending.get(entry.keySeq) === waiting) lane.pending.delete(entry.keySeq);
    }
  }

  private lane(origin: NodeId, key: string): Lane {
    const id = laneId(origin, key);
    let lane = this.lanes.get(id);
    if (lane === undefined) {
      lane = { done: 0, pending: new Map() };
      this.lanes.set(id, lane);
    }
    return lane;
  }

  /**
   * Invariants of what one step touched (asserts stay on, as in election.ts): at most `concurrency` run; in
   * a lane only the entry right after the watermark is ever ready or running, so a lane applies in order;
   * an entry is in at most one of ready and delayed, and in neither while it runs.
   */
  private check(entry: LaneEntry): void {
    const fail = (what: string) => {
      throw new JournalLanesError(`journal lanes invariant violated (entry ${entry.id}): ${what}`);
    };
    if (this.running < 0 || this.running > this.options.concurrency) fail(`${this.running} running`);
    const waiting = this.waiting.get(entry.id);
    if (waiting === undefined) return;
    const inReady = this.ready.has(entry.id);
    const inDelayed = this.delayed.has(entry.id);
    if (inReady && inDelayed) fail("both ready and delayed");
    if (waiting.running && (inReady || inDelayed)) fail("running and queued");
    if (entry.key !== null && (waiting.running || inReady || inDelayed)) {
      const lane = this.lanes.get(laneId(entry.origin, entry.key));
      if (lane === undefined || entry.keySeq !== lane.done + 1)
        fail(`keySeq ${entry.keySeq} runnable with the lane at ${lane?.done}`);
    }
  }
}

function laneId(origin: NodeId, key: string): string {
  return `${origin}\u0000${key}`;
}
