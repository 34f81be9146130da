// A journal of what a service's exec driver did, kept by the driver itself: every start and stop appends
// "<step> <node> <fencing token> <ms since the epoch>" to one file that all the agents of a test share (in
// network namespaces too: they share the filesystem, and one machine's clock, so times compare). Tests read
// it back to check, across processes, that two nodes never ran the service at overlapping moments.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";

export interface DriverLine {
  /** What the driver did; "fail" is a start that refused to run (see failingStartCommand). */
  step: "start" | "stop" | "fail";
  node: string;
  /** "term.seq"; "0.0" for the stop an agent runs at its own start, outside any grant. */
  fence: string;
  atMs: number;
}

/** The fencing token of the stop every agent runs when it starts (service_runner.ts, probe). */
export const probeFence = "0.0";

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'"'"'`)}'`;
}

/** `echo` of one journal line: `date +%s%3N` is the machine's wall clock in ms, as Date.now() reads it. */
function appendLine(log: string, step: DriverLine["step"]): string {
  return `echo "${step} $TANDEM_NODE $TANDEM_TERM $(date +%s%3N)" >> ${shellQuote(log)}`;
}

/** An exec driver command that appends one line to `log`: a shell, not node, so it is cheap on a busy machine. */
export function journalCommand(log: string, step: "start" | "stop"): string[] {
  return ["sh", "-c", appendLine(log, step)];
}

/** A start that fails (exit 1, after a "fail" line) on `failOn`, and starts (a "start" line) elsewhere. */
export function failingStartCommand(log: string, failOn: string): string[] {
  const script = `if [ "$TANDEM_NODE" = ${shellQuote(failOn)} ]; then ${appendLine(log, "fail")}; exit 1; fi; ${appendLine(log, "start")}`;
  return ["sh", "-c", script];
}

export function readDriverLines(log: string): DriverLine[] {
  if (!existsSync(log)) return [];
  return readFileSync(log, "utf8")
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const [step, node, fence, atMs] = line.split(" ");
      assert.ok(step === "start" || step === "stop" || step === "fail", `bad journal line: ${line}`);
      return { step, node: node ?? "", fence: fence ?? "", atMs: Number(atMs) };
    });
}

/** Lines acted under a grant (the agents' own start-up stops left out). */
export function grantedLines(lines: readonly DriverLine[]): DriverLine[] {
  return lines.filter((line) => line.fence !== probeFence);
}

/** Negative when fencing token `a` is older than `b`, 0 when equal, positive when newer. */
export function compareFenceText(a: string, b: string): number {
  const [termA = Number.NaN, seqA = Number.NaN] = a.split(".").map(Number);
  const [termB = Number.NaN, seqB = Number.NaN] = b.split(".").map(Number);
  assert.ok([termA, seqA, termB, seqB].every(Number.isInteger), `not fencing tokens: "${a}", "${b}"`);
  return termA !== termB ? termA - termB : seqA - seqB;
}

export interface RunInterval {
  node: string;
  fence: string;
  startMs: number;
  /** null while it runs (no stop line yet). */
  stopMs: number | null;
}

/**
 * Each start paired with the next stop of the same node. Fails on a journal
 * that cannot come from one service: a stop without a start, a second start before the stop.
 */
export function runIntervals(lines: readonly DriverLine[]): RunInterval[] {
  const intervals: RunInterval[] = [];
  const open = new Map<string, RunInterval>();
  for (const line of grantedLines(lines)) {
    if (line.step === "fail") continue;
    const current = open.get(line.node);
    if (line.step === "start") {
      assert.equal(current, undefined, `${line.node} started under ${line.fence} while it ran`);
      const interval = { node: line.node, fence: line.fence, startMs: line.atMs, stopMs: null };
      intervals.push(interval);
      open.set(line.node, interval);
    } else {
      assert.ok(current, `${line.node} stopped under ${line.fence} without a start`);
      // Not always the same token: a holder that kept running across a leader change renews under a new one.
      assert.ok(
        compareFenceText(line.fence, current.fence) >= 0,
        `${line.node} stopped under ${line.fence}, older than the ${current.fence} it started under`,
      );
      current.stopMs = line.atMs;
      open.delete(line.node);
    }
  }
  return intervals;
}

/**
 * Never two nodes at once: a start on one node comes, in wall-clock time, no earlier than the stop of what
 * ran elsewhere under an older grant, and under a newer grant than that. Returns the intervals.
 */
export function assertNeverTwoAtOnce(lines: readonly DriverLine[], what: string): RunInterval[] {
  const intervals = runIntervals(lines);
  for (const later of intervals) {
    for (const earlier of intervals) {
      if (earlier === later || earlier.node === later.node || earlier.startMs > later.startMs) continue;
      if (earlier.startMs === later.startMs && compareFenceText(earlier.fence, later.fence) > 0) continue;
      assert.ok(
        earlier.stopMs !== null && earlier.stopMs <= later.startMs,
        `${what}: started on ${later.node} (${later.fence}) at ${later.startMs} while ${earlier.node} ` +
          `(${earlier.fence}) ran it, stopped at ${earlier.stopMs ?? "never"}`,
      );
      assert.ok(
        compareFenceText(later.fence, earlier.fence) > 0,
        `${what}: ${later.node} started under ${later.fence}, not newer than ${earlier.node}'s ${earlier.fence}`,
      );
    }
  }
  return intervals;
}

/** The nodes where the journal says the service runs now (started, not stopped since). */
export function runningNodes(lines: readonly DriverLine[]): string[] {
  return runIntervals(lines)
    .filter((interval) => interval.stopMs === null)
    .map((interval) => interval.node);
}

/** The journal as text, for assertion messages. */
export function formatLines(lines: readonly DriverLine[]): string {
  return lines.map((l) => `${l.step} ${l.node} ${l.fence} ${l.atMs}`).join("\n");
}
