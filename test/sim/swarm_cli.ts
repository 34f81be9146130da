// `npm run sim -- --seeds 100000 [--from N]` runs seeds N..N+count-1 and prints histories per second;
// `npm run sim -- --seed S [--verbose] [--messages]` replays one history (with its transcript).
// Exits 1 on the first failing seed, after printing it and its replay command.
import { parseArgs } from "node:util";
import { type HistoryResult, runHistory, SwarmFailureError } from "./swarm.ts";

const usage = "usage: swarm_cli.ts --seeds COUNT [--from N] | --seed S [--verbose] [--messages]";

function main(): number {
  const { values } = parseArgs({
    options: {
      seeds: { type: "string" },
      from: { type: "string", default: "0" },
      seed: { type: "string" },
      verbose: { type: "boolean", default: false },
      messages: { type: "boolean", default: false },
    },
  });
  if (values.seed !== undefined)
    return replay(values.seed, values.verbose || values.messages, values.messages);
  const count = Number(values.seeds ?? "1000");
  const from = Number(values.from);
  if (!Number.isSafeInteger(count) || count < 1 || !Number.isSafeInteger(from)) {
    console.error(usage);
    return 2;
  }
  return sweep(from, count);
}

function replay(seed: string, verbose: boolean, messages: boolean): number {
  const log = verbose ? (line: string) => console.log(line) : undefined;
  try {
    const r = runHistory(seed, { log, logMessages: messages });
    console.log(describeResult(r));
    return 0;
  } catch (error) {
    return report(error);
  }
}

function sweep(from: number, count: number): number {
  const startedMs = performance.now();
  let lastReportMs = startedMs;
  let events = 0;
  let convergenceTimeoutsMax = 0;
  let slowestSeed = "";
  /** Histories by convergence time in whole election timeouts (index = floor(ticks / T)). */
  const convergenceHistogram: number[] = [];
  for (let i = 0; i < count; i++) {
    const seed = String(from + i);
    let r: HistoryResult;
    try {
      r = runHistory(seed);
    } catch (error) {
      console.error(`failed after ${i} passing histories`);
      return report(error);
    }
    events += r.events;
    const convergenceTimeouts = r.convergenceTicks / r.electionTimeoutTicks;
    const bucket = Math.floor(convergenceTimeouts);
    convergenceHistogram[bucket] = (convergenceHistogram[bucket] ?? 0) + 1;
    if (convergenceTimeouts > convergenceTimeoutsMax) {
      convergenceTimeoutsMax = convergenceTimeouts;
      slowestSeed = seed;
    }
    const nowMs = performance.now();
    if (nowMs - lastReportMs > 5000) {
      lastReportMs = nowMs;
      console.log(`${i + 1}/${count} histories, ${rate(i + 1, nowMs - startedMs)} histories/s`);
    }
  }
  const elapsedMs = performance.now() - startedMs;
  console.log(
    `ok: ${count} histories (seeds ${from}..${from + count - 1}) in ${(elapsedMs / 1000).toFixed(1)} s: ` +
      `${rate(count, elapsedMs)} histories/s, ${rate(events, elapsedMs)} events/s; ` +
      `slowest convergence ${convergenceTimeoutsMax.toFixed(1)} election timeouts (seed ${slowestSeed})`,
  );
  const buckets = Array.from(convergenceHistogram, (n, t) => `<${t + 1}T: ${n ?? 0}`);
  console.log(`convergence after healing: ${buckets.join(", ")}`);
  return 0;
}

function report(error: unknown): number {
  if (error instanceof SwarmFailureError) {
    console.error(`FAIL ${error.message}`);
    if (error.cause instanceof Error && error.cause.stack) console.error(error.cause.stack);
    return 1;
  }
  throw error;
}

function describeResult(r: HistoryResult): string {
  return (
    `seed=${r.seed} ok: ${r.size} nodes (${r.witnesses} witnesses), ${r.events} events, ${r.ticks} ticks, ` +
    `leader ${r.leader.leaderId} term=${r.leader.term} after ${r.convergenceTicks} ticks ` +
    `(T=${r.electionTimeoutTicks}) of healing, ` +
    `${r.termsWithLeader} terms had a leader`
  );
}

function rate(count: number, elapsedMs: number): string {
  return (count / (elapsedMs / 1000)).toFixed(0);
}

process.exitCode = main();
