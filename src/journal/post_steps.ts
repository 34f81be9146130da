// Post-execution steps: work an entry of this node owes once it has left the node (shipped), such as
// uploading its attached files (the blob issue's offload step) or a command of the operator's. Each step an
// entry owes is a row of step_runs, created in the transaction that marks the entry shipped, so a crash
// between the two loses nothing; this runner runs the due rows, at least once each (a crash after a step
// and before its record runs it again: steps are idempotent), retries a failing one with backoff and gives
// it up after its attempts (its dead letters: `tandem journal steps`, retried with `tandem journal
// step-retry`). Steps of different entries run independently; nothing holds up shipping or applying.
import type { Logger } from "pino";
import { retryBackoffMs } from "../core/journal_lanes.ts";
import type { HandlerResult } from "./entry_handlers.ts";
import type { JournalDb, JournalEntry, StepRun } from "./journal_db.ts";

export interface PostStep {
  name: string;
  /** Whether `entry` owes this step. */
  appliesTo(entry: JournalEntry): boolean;
  /** Does the step; idempotent (it may run again for the same entry). */
  run(entry: JournalEntry): Promise<HandlerResult>;
}

export interface PostStepRunnerOptions {
  db: JournalDb;
  steps: readonly PostStep[];
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Step runs at once. */
  concurrency: number;
  logger: Logger;
  onEvent?: (fields: Record<string, unknown>) => void;
  /** Wall-clock ms; Date.now by default. */
  now?: () => number;
}

export class PostStepRunner {
  private readonly options: PostStepRunnerOptions;
  private readonly now: () => number;
  private readonly byName: Map<string, PostStep>;
  /** `${entryId}/${step}` of the runs in progress. */
  private readonly running = new Map<string, Promise<void>>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;

  constructor(options: PostStepRunnerOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    this.byName = new Map(options.steps.map((step) => [step.name, step]));
  }

  /** Whether any step is registered (else no shipped entry owes one). */
  get any(): boolean {
    return this.options.steps.length > 0;
  }

  /** The steps `entry` owes (what markShippedThrough records for it). */
  stepsFor(entry: JournalEntry): string[] {
    return this.options.steps.filter((step) => step.appliesTo(entry)).map((step) => step.name);
  }

  /** Runs what is due now, and from then on as it comes due (also after a restart: the rows persist). */
  start(): void {
    this.wake();
  }

  /** Entries were shipped (step runs may have been created): look now. */
  wake(): void {
    if (this.stopped || this.options.steps.length === 0) return;
    const free = this.options.concurrency - this.running.size;
    if (free > 0) {
      // Asked for more than there is room for: some due rows may be running already.
      for (const run of this.options.db.dueStepRuns(this.now(), free + this.running.size)) {
        const id = `${run.entry.id}/${run.step}`;
        if (this.running.has(id) || this.running.size >= this.options.concurrency) continue;
        const done = this.run(run)
          .catch((error: unknown) =>
            this.options.logger.error({ err: error, id }, "post-execution step not recorded"),
          )
          .finally(() => {
            this.running.delete(id);
            this.wake();
          });
        this.running.set(id, done);
      }
    }
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    while (this.running.size > 0) await Promise.all(this.running.values());
  }

  private async run(run: StepRun): Promise<void> {
    const step = this.byName.get(run.step);
    const attempts = run.attempts + 1;
    const result: HandlerResult =
      step === undefined
        ? { ok: false, detail: `no step ${run.step} is configured any more` }
        : await step.run(run.entry).catch((error: Error) => ({ ok: false, detail: error.message }));
    const fields = { id: run.entry.id, step: run.step, attempts };
    if (result.ok) {
      this.options.db.settleStepRun(run.entry.id, run.step, { kind: "done", attempts });
      this.options.logger.debug(fields, "post-execution step done");
    } else if (attempts >= this.options.maxAttempts) {
      this.options.db.settleStepRun(run.entry.id, run.step, {
        kind: "dead",
        attempts,
        reason: result.detail,
      });
      this.options.logger.warn({ ...fields, reason: result.detail }, "post-execution step given up");
      this.options.onEvent?.({ event: "step-dead", ...fields, reason: result.detail });
    } else {
      const backoffMs = retryBackoffMs(attempts, this.options.retryBaseMs, this.options.retryMaxMs);
      const retryAtMs = this.now() + backoffMs;
      this.options.db.settleStepRun(run.entry.id, run.step, {
        kind: "retry",
        attempts,
        retryAtMs,
        reason: result.detail,
      });
      this.options.logger.info(
        { ...fields, reason: result.detail, retryInMs: backoffMs },
        "post-execution step failed; retried later",
      );
    }
  }

  /**
   * Wakes when the next pending run is due (one timer; re-armed at every look). While runs are in progress
   * their end wakes it (their rows are still pending, and due: a timer would spin on them).
   */
  private schedule(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.running.size > 0 || this.stopped) return;
    const next = this.options.db.nextStepRunAtMs();
    if (next === null) return;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.wake();
      },
      Math.max(0, next - this.now()),
    );
    this.timer.unref();
  }
}
