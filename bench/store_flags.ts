// Do the agent's V8 flags cost the store throughput? Two 3-node clusters, one with AGENT_NODE_FLAGS and one
// without, run side by side; batched writes go to one of them at a time in rounds of ABBA order (A B B A,
// then B A A B, ...), so neither variant always runs first and a drift of the machine over the run falls on
// both alike. Measured on one pair of clusters, after both warmed up: the sequential runs of bench/store.ts
// put each variant's figure in a different minute of the run, and on this VM those differed by ±20 %.
import { AGENT_NODE_FLAGS } from "../src/cli/agent_flags.ts";
import { TandemTarget } from "./store_tandem.ts";
import { closedLoop, patternValue } from "./store_workloads.ts";

export interface FlagsComparison {
  rounds: number;
  windowMs: number;
  /** Batched writes per second, summed over every window of the variant. */
  withFlags: number;
  withoutFlags: number;
  /** withFlags / withoutFlags. */
  ratio: number;
  /** The ratio of each ABBA round (its two windows per variant). */
  roundRatios: number[];
}

export interface FlagsComparisonOptions {
  rounds: number;
  windowMs: number;
  warmupMs: number;
  batchEntries: number;
  batchConcurrency: number;
  valueBytes: number;
}

/** `flags` against `none` (by default the agent's flags against no flags). */
export async function compareFlags(
  o: FlagsComparisonOptions,
  flags: readonly string[] = AGENT_NODE_FLAGS,
  none: readonly string[] = [],
): Promise<FlagsComparison> {
  const targets = { flags: await TandemTarget.start(flags), none: null as TandemTarget | null };
  try {
    targets.none = await TandemTarget.start(none);
    const variants = { flags: targets.flags, none: targets.none };
    let batch = 0;
    const run = async (target: TandemTarget, ms: number) =>
      closedLoop(o.batchConcurrency, ms, (i) =>
        target.writeBatch(
          Array.from({ length: o.batchEntries }, (_, j) => ({
            key: `ab/${batch}/${i}/${j}`,
            value: patternValue(o.valueBytes, i + j),
          })),
        ),
      );
    for (const target of [variants.flags, variants.none]) {
      batch += 1;
      await run(target, o.warmupMs);
    }
    const totals = { flags: { writes: 0, seconds: 0 }, none: { writes: 0, seconds: 0 } };
    const roundRatios: number[] = [];
    for (let round = 0; round < o.rounds; round++) {
      const order =
        round % 2 === 0
          ? (["flags", "none", "none", "flags"] as const)
          : (["none", "flags", "flags", "none"] as const);
      const inRound = { flags: { writes: 0, seconds: 0 }, none: { writes: 0, seconds: 0 } };
      for (const variant of order) {
        batch += 1;
        const result = await run(variants[variant], o.windowMs);
        for (const sum of [totals[variant], inRound[variant]]) {
          sum.writes += result.writes;
          sum.seconds += result.seconds;
        }
      }
      roundRatios.push(
        inRound.flags.writes / inRound.flags.seconds / (inRound.none.writes / inRound.none.seconds),
      );
    }
    const withFlags = totals.flags.writes / totals.flags.seconds;
    const withoutFlags = totals.none.writes / totals.none.seconds;
    return {
      rounds: o.rounds,
      windowMs: o.windowMs,
      withFlags,
      withoutFlags,
      ratio: withFlags / withoutFlags,
      roundRatios,
    };
  } finally {
    await targets.flags.stop();
    await targets.none?.stop();
  }
}
