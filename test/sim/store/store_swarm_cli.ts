// `node test/sim/store/store_swarm_cli.ts --seeds 10000 [--from N]` runs seeds N..N+count-1 and prints
// histories per second and the slowest convergence; `--seed S [--verbose] [--messages]` replays one history.
import { runSeedCli } from "../seed_cli.ts";
import { runStoreHistory, type StoreHistoryResult, StoreSwarmFailureError } from "./store_swarm.ts";

process.exitCode = runSeedCli<StoreHistoryResult>({
  name: "store_swarm_cli.ts",
  run: runStoreHistory,
  isFailure: (error): error is Error => error instanceof StoreSwarmFailureError,
  describe: (r) =>
    `seed=${r.seed} ok: ${r.size} nodes, ${r.events} events, ${r.ticks} ticks, ${r.writes} writes ` +
    `(${r.writesAcked} acknowledged by some host, ${r.acks} acks), ${r.entries} entries, ` +
    `${r.membershipChanges} membership changes, converged ${r.convergenceTicks} ticks after healing, ` +
    `all caught up ${r.caughtUpTicks} ticks later`,
  tally: () => {
    let writes = 0;
    let acks = 0;
    let membershipChanges = 0;
    let churned = 0;
    let slowest: StoreHistoryResult | null = null;
    return {
      add: (r) => {
        writes += r.writes;
        acks += r.acks;
        membershipChanges += r.membershipChanges;
        if (r.membershipChanges > 0) churned++;
        if (slowest === null || r.convergenceTicks > slowest.convergenceTicks) slowest = r;
      },
      summary: () => ({
        inline:
          `${writes} writes, ${acks} acks checked; ` +
          `${membershipChanges} membership changes in ${churned} histories; ` +
          `slowest convergence ${slowest?.convergenceTicks} ticks (seed ${slowest?.seed})`,
        lines: [],
      }),
    };
  },
});
