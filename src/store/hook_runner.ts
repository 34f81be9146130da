// A command run after the materialiser changed files under a prefix (e.g. `systemctl reload nginx`).
// Debounced by a fixed window: the first trigger opens it, triggers inside it are absorbed, the command
// runs once when it closes, so a burst of changes costs one run and a steady stream at most one run per
// window. Never two runs at once: a trigger during a run opens a new window after the run ends. argv is
// spawned without a shell; a run past its timeout is killed with its whole process group.
import type { Logger } from "pino";
import { commandSucceeded, runCommand } from "../shell/index.ts";
import type { MaterialiseTimers } from "./materialise_timers.ts";

export const hookDebounceMsDefault = 500;
export const hookTimeoutMsDefault = 30_000;

export interface HookConfig {
  /** Store-path prefix (see isUnderPrefix): a change under it triggers the hook. */
  prefix: string;
  /** argv: program then arguments; no shell. */
  command: readonly string[];
  debounceMs?: number;
  timeoutMs?: number;
}

export class HookRunner {
  readonly prefix: string;
  private readonly command: readonly string[];
  private readonly debounceMs: number;
  private readonly timeoutMs: number;
  private readonly env: Record<string, string>;
  private readonly logger: Logger;
  private readonly timers: MaterialiseTimers;
  private windowTimer: unknown = null;
  private running: Promise<void> | null = null;
  private triggeredWhileRunning = false;
  private closed = false;

  constructor(
    config: HookConfig,
    options: { logger: Logger; timers: MaterialiseTimers; env: Record<string, string> },
  ) {
    if (config.command.length === 0 || config.command[0] === "") {
      throw new RangeError(`hook for prefix "${config.prefix}": command is empty`);
    }
    this.prefix = config.prefix;
    this.command = [...config.command];
    this.debounceMs = config.debounceMs ?? hookDebounceMsDefault;
    this.timeoutMs = config.timeoutMs ?? hookTimeoutMsDefault;
    if (!(this.debounceMs >= 0)) throw new RangeError(`hook debounceMs must be >= 0, got ${this.debounceMs}`);
    if (!(this.timeoutMs > 0)) throw new RangeError(`hook timeoutMs must be > 0, got ${this.timeoutMs}`);
    this.env = options.env;
    this.logger = options.logger.child({ hook: this.prefix, program: this.command[0] });
    this.timers = options.timers;
  }

  /** Asks for a run at the end of the current window (opening one if none is open). */
  trigger(): void {
    if (this.closed) return;
    if (this.running) {
      this.triggeredWhileRunning = true;
      return;
    }
    if (this.windowTimer !== null) return;
    this.windowTimer = this.timers.setTimeout(() => {
      this.windowTimer = null;
      this.start();
    }, this.debounceMs);
  }

  /** Resolves when no run is in progress (a window still open is not waited for). */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Stops accepting triggers; a run still owed (open window or trigger during a run) happens now. */
  async close(): Promise<void> {
    this.closed = true;
    const owed = this.windowTimer !== null || this.triggeredWhileRunning;
    if (this.windowTimer !== null) this.timers.clearTimeout(this.windowTimer);
    this.windowTimer = null;
    this.triggeredWhileRunning = false;
    await this.settled();
    if (owed) {
      this.start();
      await this.settled();
    }
  }

  private start(): void {
    this.running = this.run().finally(() => {
      this.running = null;
      if (this.triggeredWhileRunning) {
        this.triggeredWhileRunning = false;
        this.trigger();
      }
    });
  }

  private async run(): Promise<void> {
    const outcome = await runCommand(this.command, {
      env: this.env,
      timeoutMs: this.timeoutMs,
      timers: this.timers,
    });
    const { stdout: _stdout, ...fields } = outcome;
    if (commandSucceeded(outcome)) this.logger.info(fields, "hook ran");
    else this.logger.warn(fields, outcome.timedOut ? "hook timed out" : "hook failed");
  }
}
