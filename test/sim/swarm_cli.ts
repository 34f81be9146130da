// `npm run sim -- --seeds 100000 [--from N]` runs seeds N..N+count-1 and prints histories per second and a
// convergence histogram; `npm run sim -- --seed S [--verbose] [--messages]` replays one history.
import { runSeedCli } from "./seed_cli.ts";
import { type HistoryResult, runHistory, SwarmFailureError } from "./swarm.ts";

process.exitCode = runSeedCli<HistoryResult>({
  name: "swarm_cli.ts",
  run: runHistory,
  isFailure: (error): error is Error => error instanceof SwarmFailureError,
  describe: (r) =>
    `seed=${r.seed} ok: ${r.size} nodes (${r.witnesses} witnesses), ${r.events} events, ${r.ticks} ticks, ` +
    `leader ${r.leader.leaderId} term=${r.leader.term} after ${r.convergenceTicks} ticks ` +
    `(T=${r.electionTimeoutTicks}) of healing, ${r.termsWithLeader} terms had a leader`,
  tally: () => {
    let slowestTimeouts = 0;
    let slowestSeed = "";
    /** Histories by convergence time in whole election timeouts (index = floor(ticks / T)). */
    const histogram: number[] = [];
    return {
      add: (r) => {
        const timeouts = r.convergenceTicks / r.electionTimeoutTicks;
        const bucket = Math.floor(timeouts);
        histogram[bucket] = (histogram[bucket] ?? 0) + 1;
        if (timeouts > slowestTimeouts) {
          slowestTimeouts = timeouts;
          slowestSeed = r.seed;
        }
      },
      summary: () => ({
        inline: `slowest convergence ${slowestTimeouts.toFixed(1)} election timeouts (seed ${slowestSeed})`,
        lines: [
          `convergence after healing: ${Array.from(histogram, (n, t) => `<${t + 1}T: ${n ?? 0}`).join(", ")}`,
        ],
      }),
    };
  },
});
