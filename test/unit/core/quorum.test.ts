import assert from "node:assert/strict";
import { test } from "node:test";
import { Prng } from "../../../src/core/prng.ts";
import { quorumSize, quorumValue, VoteResult, voteResult } from "../../../src/core/quorum.ts";

/** Naive oracle: try every way the silent voters could still answer. */
function naiveVoteResult(voters: readonly string[], granted: Set<string>, rejected: Set<string>): VoteResult {
  const majority = (count: number) => count * 2 > voters.length;
  const yes = voters.filter((v) => granted.has(v)).length;
  if (majority(yes)) return VoteResult.Won;
  const silent = voters.filter((v) => !granted.has(v) && !rejected.has(v)).length;
  let reachable = false;
  for (let extra = 0; extra <= silent; extra++) if (majority(yes + extra)) reachable = true;
  return reachable ? VoteResult.Pending : VoteResult.Lost;
}

/** Naive oracle: the largest value v such that a strict majority of entries is >= v. */
function naiveQuorumValue(values: readonly number[]): number {
  let best = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    if (values.filter((w) => w >= v).length * 2 > values.length && v > best) best = v;
  }
  return best;
}

test("quorum: quorumSize is a strict majority", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(quorumSize), [1, 2, 2, 3, 3, 4, 4]);
  assert.throws(() => quorumSize(0), RangeError);
});

test("quorum: voteResult table", () => {
  const voters = ["a", "b", "c"];
  const cases: [string[], string[], VoteResult][] = [
    [[], [], "pending"],
    [["a"], [], "pending"],
    [["a", "b"], [], "won"],
    [["a"], ["b"], "pending"],
    [["a"], ["b", "c"], "lost"],
    [[], ["x", "y", "z"], "pending"],
    [["a", "x", "y"], [], "pending"],
  ];
  for (const [granted, rejected, expected] of cases) {
    assert.equal(voteResult(voters, new Set(granted), new Set(rejected)), expected, `${granted}/${rejected}`);
  }
  assert.equal(voteResult(["a", "b", "w"], new Set(["b", "w"]), new Set()), "won", "witnesses count");
  assert.equal(voteResult(["a", "b"], new Set(["a"]), new Set()), "pending", "two nodes need both");
});

test("quorum: voteResult agrees with a naive count on random polls", () => {
  const rng = new Prng("quorum-votes");
  const ids = ["n1", "n2", "n3", "n4", "n5", "n6", "n7", "x1", "x2"];
  for (let round = 0; round < 2000; round++) {
    const voters = ids.slice(0, rng.intBetween(1, 7));
    const granted = new Set<string>();
    const rejected = new Set<string>();
    for (const id of ids) {
      const draw = rng.intBetween(0, 2);
      if (draw === 1) granted.add(id);
      else if (draw === 2) rejected.add(id);
    }
    assert.equal(voteResult(voters, granted, rejected), naiveVoteResult(voters, granted, rejected));
  }
});

test("quorum: quorumValue agrees with a naive count on random values", () => {
  const rng = new Prng("quorum-values");
  for (let round = 0; round < 2000; round++) {
    const values = Array.from({ length: rng.intBetween(1, 9) }, () =>
      rng.chance(0.2) ? Number.NEGATIVE_INFINITY : rng.intBetween(0, 20),
    );
    assert.equal(quorumValue(values), naiveQuorumValue(values), JSON.stringify(values));
  }
});

test("quorum: quorumValue does not reorder its input", () => {
  const values = [3, 1, 2];
  assert.equal(quorumValue(values), 2);
  assert.deepEqual(values, [3, 1, 2]);
});
