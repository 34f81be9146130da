// Majority arithmetic shared by vote counting and the leader lease. Voters are members ∪ witnesses:
// witnesses vote, so they count towards every quorum.
import type { NodeId } from "./types.ts";

export const VoteResult = {
  Pending: "pending",
  Won: "won",
  Lost: "lost",
} as const;
export type VoteResult = (typeof VoteResult)[keyof typeof VoteResult];

/** Smallest number of voters that is a strict majority of `voterCount`. */
export function quorumSize(voterCount: number): number {
  if (!Number.isInteger(voterCount) || voterCount < 1) {
    throw new RangeError(`quorumSize: voterCount must be an integer >= 1, got ${voterCount}`);
  }
  return Math.floor(voterCount / 2) + 1;
}

/**
 * Outcome of a poll: won once a majority granted, lost once a majority can no longer be reached.
 * Responses from non-voters are ignored; a voter in both sets counts as granted (its first answer wins
 * in the caller, which never records both).
 */
export function voteResult(
  voters: readonly NodeId[],
  granted: ReadonlySet<NodeId>,
  rejected: ReadonlySet<NodeId>,
): VoteResult {
  const quorum = quorumSize(voters.length);
  let grantedCount = 0;
  let rejectedCount = 0;
  for (const voter of voters) {
    if (granted.has(voter)) grantedCount++;
    else if (rejected.has(voter)) rejectedCount++;
  }
  if (grantedCount >= quorum) return VoteResult.Won;
  if (voters.length - rejectedCount < quorum) return VoteResult.Lost;
  return VoteResult.Pending;
}

/**
 * The largest value that a quorum of voters has reached: with one value per voter (missing ones as
 * -Infinity), the quorum-th largest. For the lease: a quorum acknowledged heartbeats sent at or after it.
 */
export function quorumValue(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => b - a);
  return sorted[quorumSize(values.length) - 1] as number;
}
