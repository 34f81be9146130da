// One run of an operator's command (a store hook, a service driver, a health check): argv without a
// shell, its own process group so a timeout also ends what it started, and the tail of its output kept for
// the log line. Never rejects: a command that cannot start is an outcome too.
import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";

/** The tail of each stream kept for the log line. */
export const commandOutputBytesMax = 4096;

export interface CommandOptions {
  env: Record<string, string>;
  timeoutMs: number;
  /** Written to its standard input, which is then closed; none: no standard input. */
  stdin?: string;
  /** The timer functions to use; Node's by default (tests pass mocked ones). */
  timers?: {
    setTimeout(callback: () => void, delayMs: number): unknown;
    clearTimeout(handle: unknown): void;
  };
}

export interface CommandOutcome {
  /** null when it did not exit by itself (killed, or never started). */
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  /** Set when it could not be started (no such program, no permission). */
  error: string | null;
  durationMs: number;
  stdout: string;
  stderr: string;
}

export function commandSucceeded(outcome: CommandOutcome): boolean {
  return outcome.exitCode === 0 && !outcome.timedOut;
}

const nodeTimers = {
  setTimeout: (callback: () => void, delayMs: number) => setTimeout(callback, delayMs),
  clearTimeout: (handle: unknown) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export function runCommand(argv: readonly string[], options: CommandOptions): Promise<CommandOutcome> {
  const [program, ...args] = argv;
  if (program === undefined || program === "") throw new RangeError("runCommand: empty argv");
  const timers = options.timers ?? nodeTimers;
  const startedMs = performance.now();
  return new Promise((resolve) => {
    // detached: its own process group, so a timeout also ends what the command started.
    const child = spawn(program, args, {
      stdio: [options.stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      env: { ...process.env, ...options.env },
      detached: true,
    });
    const stdout = tail();
    const stderr = tail();
    if (options.stdin !== undefined && child.stdin !== null) {
      // A command that exits without reading all of it closes the pipe: that is its business (EPIPE).
      child.stdin.on("error", () => {});
      child.stdin.end(options.stdin);
    }
    child.stdout?.on("data", stdout.add);
    child.stderr?.on("data", stderr.add);
    let timedOut = false;
    const timeout = timers.setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) killGroup(child.pid);
    }, options.timeoutMs);
    let finished = false;
    const finish = (exitCode: number | null, signal: string | null, error: string | null) => {
      if (finished) return;
      finished = true;
      timers.clearTimeout(timeout);
      resolve({
        exitCode,
        signal,
        timedOut,
        error,
        durationMs: Math.round(performance.now() - startedMs),
        stdout: stdout.text(),
        stderr: stderr.text(),
      });
    };
    child.on("error", (err) => finish(null, null, err.message));
    child.on("close", (exitCode, signal) => finish(exitCode, signal, null));
  });
}

function tail(): { add: (chunk: Buffer) => void; text: () => string } {
  let kept = Buffer.alloc(0);
  return {
    add: (chunk) => {
      kept = Buffer.concat([kept, chunk]);
      if (kept.length > commandOutputBytesMax) kept = kept.subarray(kept.length - commandOutputBytesMax);
    },
    text: () => kept.toString("utf8").trim(),
  };
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // The group is already gone.
  }
}
