// `npm run sim -- --seeds 100000 [--from N]` runs seeds N..N+count-1 and prints histories per second and a
// convergence histogram; `npm run sim -- --seed S [--verbose] [--messages]` replays one history.
// With `--membership`, the same for the membership swarm (membership_swarm.ts); with `--grants`, for service
// grants (grants_swarm.ts); with `--services`, for services with elected leaders (services_swarm.ts).
import { type GrantsHistoryResult, GrantsSafetyError, runGrantsHistory } from "./grants_swarm.ts";
import { type MembershipHistoryResult, runMembershipHistory } from "./membership_swarm.ts";
import { runSeedCli } from "./seed_cli.ts";
import { servicesCli } from "./services_swarm.ts";
import { type HistoryResult, runHistory, SwarmFailureError } from "./swarm.ts";

interface Converged {
  seed: string;
  convergenceTicks: number;
  electionTimeoutTicks: number;
}

/** Slowest convergence and a histogram by whole election timeouts (index = floor(ticks / T)). */
function convergenceTally<R extends Converged>(extra?: (results: R) => void, extraLine?: () => string) {
  return () => {
    let slowestTimeouts = 0;
    let slowestSeed = "";
    const histogram: number[] = [];
    return {
      add: (r: R) => {
        const timeouts = r.convergenceTicks / r.electionTimeoutTicks;
        const bucket = Math.floor(timeouts);
        histogram[bucket] = (histogram[bucket] ?? 0) + 1;
        if (timeouts > slowestTimeouts) {
          slowestTimeouts = timeouts;
          slowestSeed = r.seed;
        }
        extra?.(r);
      },
      summary: () => ({
        inline: `slowest convergence ${slowestTimeouts.toFixed(1)} election timeouts (seed ${slowestSeed})`,
        lines: [
          `convergence after healing: ${Array.from(histogram, (n, t) => `<${t + 1}T: ${n ?? 0}`).join(", ")}`,
          ...(extraLine === undefined ? [] : [extraLine()]),
        ],
      }),
    };
  };
}

const isFailure = (error: unknown): error is Error => error instanceof SwarmFailureError;
const membership = process.argv.includes("--membership");
const grants = process.argv.includes("--grants");
const services = process.argv.includes("--services");
const args = process.argv
  .slice(2)
  .filter((arg) => arg !== "--membership" && arg !== "--grants" && arg !== "--services");

if (services) {
  process.exitCode = await servicesCli(args);
} else if (grants) {
  let runs = 0;
  let leaderChanges = 0;
  let bounded = 0;
  let windowMsMax = 0;
  process.exitCode = runSeedCli<GrantsHistoryResult>(
    {
      name: "swarm_cli.ts --grants",
      run: (seed) => runGrantsHistory(seed),
      isFailure: (error): error is Error => error instanceof GrantsSafetyError,
      describe: (r) =>
        `seed=${r.seed} ok: ${r.events} events, ${r.runs.length} runs of the service, ${r.leaderChanges} leader changes, ` +
        `${r.boundedWindows} windows bounded by votes, the longest ${r.windowMsMax.toFixed(0)} ms`,
      tally: () => ({
        add: (r) => {
          runs += r.runs.length;
          leaderChanges += r.leaderChanges;
          bounded += r.boundedWindows;
          windowMsMax = Math.max(windowMsMax, r.windowMsMax);
        },
        summary: () => ({
          inline:
            `${runs} runs of the service, ${leaderChanges} leader changes, ${bounded} new leaders' windows ` +
            `bounded by their votes, the longest window ${windowMsMax.toFixed(0)} ms`,
          lines: [],
        }),
      }),
    },
    args,
  );
} else if (membership) {
  let accepted = 0;
  let committed = 0;
  process.exitCode = runSeedCli<MembershipHistoryResult>(
    {
      name: "swarm_cli.ts --membership",
      run: runMembershipHistory,
      isFailure,
      describe: (r) =>
        `seed=${r.seed} ok: ${r.voters} voters + ${r.spares} spares, ${r.events} events, ${r.ticks} ticks, ` +
        `${r.changesAccepted} changes accepted, v${r.committedVersion} committed last, ` +
        `leader ${r.leader.leaderId} term=${r.leader.term} after ${r.convergenceTicks} ticks ` +
        `(T=${r.electionTimeoutTicks}) of healing`,
      tally: convergenceTally<MembershipHistoryResult>(
        (r) => {
          accepted += r.changesAccepted;
          committed += Math.max(0, r.committedVersion - 1);
        },
        () => `membership changes: ${accepted} accepted, ${committed} committed (newest version - 1, summed)`,
      ),
    },
    args,
  );
} else {
  process.exitCode = runSeedCli<HistoryResult>(
    {
      name: "swarm_cli.ts",
      run: runHistory,
      isFailure,
      describe: (r) =>
        `seed=${r.seed} ok: ${r.size} nodes (${r.witnesses} witnesses), ${r.events} events, ${r.ticks} ticks, ` +
        `leader ${r.leader.leaderId} term=${r.leader.term} after ${r.convergenceTicks} ticks ` +
        `(T=${r.electionTimeoutTicks}) of healing, ${r.termsWithLeader} terms had a leader`,
      tally: convergenceTally<HistoryResult>(),
    },
    args,
  );
}
