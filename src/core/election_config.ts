// Refuses election settings that cannot work, as etcd raft's Config.validate() does.
import type { ElectionConfig } from "./election_types.ts";
import type { ConfigProblem } from "./types.ts";

/** Lease must end this far before followers stop honouring it, to absorb clock-rate drift between nodes. */
export const leaseFractionMax = 0.9;

function tickProblems(c: ElectionConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const ticks = {
    electionTimeoutTicks: c.electionTimeoutTicks,
    heartbeatIntervalTicks: c.heartbeatIntervalTicks,
    leaseTicks: c.leaseTicks,
  };
  for (const [key, value] of Object.entries(ticks)) {
    if (!Number.isInteger(value) || value < 1) problems.push({ key, message: "must be an integer >= 1" });
  }
  if (problems.length > 0) return problems;
  if (c.heartbeatIntervalTicks * 2 > c.electionTimeoutTicks) {
    problems.push({
      key: "heartbeatIntervalTicks",
      message: "must be at most half of electionTimeoutTicks, or one lost heartbeat starts an election",
    });
  }
  if (c.leaseTicks > leaseFractionMax * c.electionTimeoutTicks) {
    problems.push({
      key: "leaseTicks",
      message: `must be at most ${leaseFractionMax} * electionTimeoutTicks, so the lease ends before followers vote again`,
    });
  }
  if (c.leaseTicks <= c.heartbeatIntervalTicks) {
    problems.push({
      key: "leaseTicks",
      message: "must exceed heartbeatIntervalTicks, or the lease lapses between two heartbeats",
    });
  }
  return problems;
}

function membershipProblems(c: ElectionConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (c.members.length < 1) problems.push({ key: "members", message: "needs at least one member" });
  const seen = new Set<string>();
  for (const [key, ids] of [
    ["members", c.members],
    ["witnesses", c.witnesses],
  ] as const) {
    for (const id of ids) {
      if (id.length === 0) problems.push({ key, message: "ids must be non-empty" });
      if (seen.has(id)) problems.push({ key, message: `duplicate id ${JSON.stringify(id)}` });
      seen.add(id);
    }
  }
  if (!seen.has(c.selfId)) {
    problems.push({
      key: "selfId",
      message: `${JSON.stringify(c.selfId)} is neither a member nor a witness`,
    });
  }
  for (const id of seen) {
    const priority = c.priorities[id];
    if (priority === undefined)
      problems.push({ key: "priorities", message: `missing for ${JSON.stringify(id)}` });
    else if (!Number.isFinite(priority)) {
      problems.push({ key: "priorities", message: `${JSON.stringify(id)}: must be a finite number` });
    }
  }
  for (const id of Object.keys(c.priorities)) {
    if (!seen.has(id)) problems.push({ key: "priorities", message: `${JSON.stringify(id)} is not a voter` });
  }
  return problems;
}

/** Every reason `c` cannot run; `[]` means valid. A joining node has no bootstrap list to check. */
export function validateElectionConfig(c: ElectionConfig): ConfigProblem[] {
  return [...tickProblems(c), ...(c.join === true ? [] : membershipProblems(c))];
}
