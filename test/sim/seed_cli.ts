// The command line shared by the simulators' seed runners (swarm_cli.ts, store/store_swarm_cli.ts):
// `--seeds COUNT [--from N]` sweeps seeds N..N+COUNT-1 and prints histories per second;
// `--seed S [--verbose] [--messages]` replays one history with its transcript.
// Exits 1 on the first failing seed, after printing it and its replay command; with `--keep-going` the
// sweep runs on, prints every failing seed, and exits 1 at the end.
import { parseArgs } from "node:util";

export interface SeedHistory {
  seed: string;
  events: number;
}

export interface SeedCli<R extends SeedHistory> {
  name: string;
  run(seed: string, options: { log?: (line: string) => void; logMessages?: boolean }): R;
  /** One line for a replayed history. */
  describe(result: R): string;
  /** The simulator's own failure (printed with its seed); anything else is a bug and is rethrown. */
  isFailure(error: unknown): error is Error;
  /** Called for every passing history of a sweep; returns the extra summary lines at the end. */
  tally(): { add(result: R): void; summary(): { inline: string; lines: string[] } };
}

export function runSeedCli<R extends SeedHistory>(cli: SeedCli<R>, args = process.argv.slice(2)): number {
  const { values } = parseArgs({
    args,
    options: {
      seeds: { type: "string" },
      from: { type: "string", default: "0" },
      seed: { type: "string" },
      verbose: { type: "boolean", default: false },
      messages: { type: "boolean", default: false },
      "keep-going": { type: "boolean", default: false },
    },
  });
  if (values.seed !== undefined) {
    const log = values.verbose || values.messages ? (line: string) => console.log(line) : undefined;
    try {
      console.log(cli.describe(cli.run(values.seed, { log, logMessages: values.messages })));
      return 0;
    } catch (error) {
      return report(cli, error);
    }
  }
  const count = Number(values.seeds ?? "1000");
  const from = Number(values.from);
  if (!Number.isSafeInteger(count) || count < 1 || !Number.isSafeInteger(from)) {
    console.error(
      `usage: ${cli.name} --seeds COUNT [--from N] [--keep-going] | --seed S [--verbose] [--messages]`,
    );
    return 2;
  }
  return sweep(cli, from, count, values["keep-going"]);
}

function sweep<R extends SeedHistory>(
  cli: SeedCli<R>,
  from: number,
  count: number,
  keepGoing: boolean,
): number {
  const startedMs = performance.now();
  const tally = cli.tally();
  let lastReportMs = startedMs;
  let events = 0;
  let failures = 0;
  for (let i = 0; i < count; i++) {
    let result: R;
    try {
      result = cli.run(String(from + i), {});
    } catch (error) {
      if (!keepGoing) {
        console.error(`failed after ${i} passing histories`);
        return report(cli, error);
      }
      report(cli, error);
      failures++;
      continue;
    }
    events += result.events;
    tally.add(result);
    const nowMs = performance.now();
    if (nowMs - lastReportMs > 5000) {
      lastReportMs = nowMs;
      console.log(`${i + 1}/${count} histories, ${rate(i + 1, nowMs - startedMs)} histories/s`);
    }
  }
  const elapsedMs = performance.now() - startedMs;
  const { inline, lines } = tally.summary();
  console.log(
    `${failures === 0 ? "ok" : "done"}: ${count} histories (seeds ${from}..${from + count - 1}) in ${(elapsedMs / 1000).toFixed(1)} s: ` +
      `${rate(count, elapsedMs)} histories/s, ${rate(events, elapsedMs)} events/s; ${inline}`,
  );
  for (const line of lines) console.log(line);
  if (failures === 0) return 0;
  console.error(`${failures} of ${count} histories failed`);
  return 1;
}

function report<R extends SeedHistory>(cli: SeedCli<R>, error: unknown): number {
  if (!cli.isFailure(error)) throw error;
  console.error(`FAIL ${error.message}`);
  if (error.cause instanceof Error && error.cause.stack) console.error(error.cause.stack);
  return 1;
}

function rate(count: number, elapsedMs: number): string {
  return (count / (elapsedMs / 1000)).toFixed(0);
}
