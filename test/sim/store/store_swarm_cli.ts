// `node test/sim/store/store_swarm_cli.ts --seeds 10000 [--from N]` runs seeds N..N+count-1 and prints
// histories per second and the slowest convergence; `--seed S [--verbose] [--messages]` replays one history
// with its transcript. Exits 1 on the first failing seed, after printing it and its replay command.
import { parseArgs } from "node:util";
import { runStoreHistory, type StoreHistoryResult, StoreSwarmFailureError } from "./store_swarm.ts";

const usage = "usage: store_swarm_cli.ts --seeds COUNT [--from N] | --seed S [--verbose] [--messages]";

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
    console.log(describeResult(runStoreHistory(seed, { log, logMessages: messages })));
    return 0;
  } catch (error) {
    return report(error);
  }
}

function sweep(from: number, count: number): number {
  const startedMs = performance.now();
  let lastReportMs = startedMs;
  let events = 0;
  let writes = 0;
  let acks = 0;
  let slowest: StoreHistoryResult | null = null;
  for (let i = 0; i < count; i++) {
    let r: StoreHistoryResult;
    try {
      r = runStoreHistory(String(from + i));
    } catch (error) {
      console.error(`failed after ${i} passing histories`);
      return report(error);
    }
    events += r.events;
    writes += r.writes;
    acks += r.acks;
    if (slowest === null || r.convergenceTicks > slowest.convergenceTicks) slowest = r;
    const nowMs = performance.now();
    if (nowMs - lastReportMs > 5000) {
      lastReportMs = nowMs;
      console.log(`${i + 1}/${count} histories, ${rate(i + 1, nowMs - startedMs)} histories/s`);
    }
  }
  const elapsedMs = performance.now() - startedMs;
  console.log(
    `ok: ${count} histories (seeds ${from}..${from + count - 1}) in ${(elapsedMs / 1000).toFixed(1)} s: ` +
      `${rate(count, elapsedMs)} histories/s, ${rate(events, elapsedMs)} events/s; ${writes} writes, ${acks} acks checked; ` +
      `slowest convergence ${slowest?.convergenceTicks} ticks (seed ${slowest?.seed})`,
  );
  return 0;
}

function report(error: unknown): number {
  if (error instanceof StoreSwarmFailureError) {
    console.error(`FAIL ${error.message}`);
    if (error.cause instanceof Error && error.cause.stack) console.error(error.cause.stack);
    return 1;
  }
  throw error;
}

function describeResult(r: StoreHistoryResult): string {
  return (
    `seed=${r.seed} ok: ${r.size} nodes, ${r.events} events, ${r.ticks} ticks, ${r.writes} writes ` +
    `(${r.writesAcked} acknowledged by some host, ${r.acks} acks), ${r.entries} entries, ` +
    `converged ${r.convergenceTicks} ticks after healing`
  );
}

function rate(count: number, elapsedMs: number): string {
  return (count / (elapsedMs / 1000)).toFixed(0);
}

process.exitCode = main();
