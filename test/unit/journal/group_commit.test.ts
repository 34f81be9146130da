import assert from "node:assert/strict";
import { test } from "node:test";
import { GroupCommit } from "../../../src/journal/group_commit.ts";

test("group commit: calls of one turn share one commit, each gets its own result; a failed commit fails them all", async () => {
  const commits: number[][] = [];
  let fail = false;
  const group = new GroupCommit<number, string>((items) => {
    if (fail) throw new Error("disk full");
    commits.push([...items]);
    return items.map((i) => `r${i}`);
  }, 3);
  const first = await Promise.all([1, 2].map((i) => group.push(i)));
  assert.deepEqual(first, ["r1", "r2"]);
  assert.deepEqual(await group.push(3), "r3");
  // Past itemsMax the batch commits at once, the rest with the next turn.
  assert.deepEqual(await Promise.all([4, 5, 6, 7].map((i) => group.push(i))), ["r4", "r5", "r6", "r7"]);
  assert.deepEqual(commits, [[1, 2], [3], [4, 5, 6], [7]]);
  fail = true;
  const results = await Promise.allSettled([group.push(8), group.push(9)]);
  assert.deepEqual(
    results.map((r) => r.status),
    ["rejected", "rejected"],
  );
});
