// Named membership scenarios on the simulator: the mismatched tandem.yml files, and a node added,
// promoted and another removed, then a failover. The safety checker runs after every event throughout.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ElectionEvent } from "../../src/core/election_types.ts";
import type { NodeId } from "../../src/core/types.ts";
import type { Cluster } from "./cluster.ts";
import { scenarioCluster } from "./scenario_cluster.ts";
import { leaderWithin, ticksUntil } from "./scenario_wait.ts";

const seeds = 12;

interface Emitted {
  id: NodeId;
  event: ElectionEvent;
}

test("sim: membership: n1 n3 list {n1 n2 n3}, n2 n4 list {n1 n2 n4}: no one bootstraps, even once the n1-n2 link fails", () => {
  for (let seed = 0; seed < seeds; seed++) {
    const emitted: Emitted[] = [];
    const first = { members: ["n1", "n2", "n3"], witnesses: [] };
    const second = { members: ["n1", "n2", "n4"], witnesses: [] };
    const c = scenarioCluster({
      seed: `mismatch-${seed}`,
      members: 4,
      fresh: true,
      bootstrapLists: { n1: first, n3: first, n2: second, n4: second },
      onEvent: (id, event) => emitted.push({ id, event }),
    });
    c.runTicks(10 + seed * 7);
    c.network.cut("n1", "n2");
    c.network.cut("n2", "n1");
    c.runTicks(200);
    assert.equal(c.checker.termsWithLeader, 0, `seed ${seed}: someone led`);
    for (const id of c.ids) {
      assert.equal(c.status(id)?.membership.standing, "bootstrapping", `seed ${seed}: ${id}`);
      const mismatch = emitted.some((e) => e.id === id && e.event.type === "membership-mismatch");
      assert.ok(mismatch, `seed ${seed}: ${id} never reported the mismatch`);
    }
    assert.ok(!emitted.some((e) => e.event.type === "vote-granted"), `seed ${seed}: a vote was granted`);
  }
});

/** Once the leader may change its list, proposes `change` and runs until the leader reports it committed. */
function commit(c: Cluster, leader: NodeId, change: Parameters<Cluster["propose"]>[1]): number {
  ticksUntil(c, 30, () => c.status(leader)?.membership.pendingVersion === null);
  const result = c.propose(leader, change);
  assert.ok(result.ok, `${change.type} refused: ${result.ok ? "" : result.reason}`);
  ticksUntil(c, 30, () => c.status(leader)?.membership.committedVersion === result.version);
  return result.version;
}

test("sim: membership: a spare joins as learner, is promoted, a voter is removed; after failover the removed node never leads and gets no votes", () => {
  for (let seed = 0; seed < seeds; seed++) {
    // Odd seeds: the removed node is down while it is removed, so it comes back holding the old list.
    const removedWhileDown = seed % 2 === 1;
    const emitted: Emitted[] = [];
    const c = scenarioCluster({
      seed: `replace-${seed}`,
      members: 3,
      spares: 1,
      fresh: true,
      onEvent: (id, event) => emitted.push({ id, event }),
    });
    const { leaderId: leader } = leaderWithin(c, 80, { among: ["n1", "n2", "n3"] });
    assert.equal(c.status("n4")?.membership.standing, "joining");
    const added = commit(c, leader, {
      type: "add",
      node: { id: "n4", address: "", role: "member", priority: 0, autoPromote: false },
    });
    ticksUntil(c, 10, () => c.status("n4")?.membership.summary.version === added);
    assert.equal(c.status("n4")?.membership.standing, "learner");
    assert.equal(c.status("n4")?.leaderId, leader);
    commit(c, leader, { type: "promote", id: "n4" });
    ticksUntil(c, 10, () => c.status("n4")?.membership.standing === "voter");

    const removed = ["n1", "n2", "n3"].find((id) => id !== leader)!;
    if (removedWhileDown) c.crash(removed);
    const removedAt = emitted.length;
    commit(c, leader, { type: "remove", id: removed });
    if (!removedWhileDown) {
      ticksUntil(c, 10, () => c.status(removed)?.membership.standing === "removed");
      c.crash(removed);
    }
    c.crash(leader, true);
    const survivors = ["n1", "n2", "n3", "n4"].filter((id) => id !== leader && id !== removed);
    const second = leaderWithin(c, 80, { among: survivors, accept: (a) => a.leaderId !== leader });
    assert.ok(survivors.includes(second.leaderId));
    c.restart(removed);
    c.restart(leader);
    c.runTicks(150);
    assert.deepEqual(c.leaderAgreement(survivors.concat(leader)), second, `seed ${seed}: leader changed`);
    const after = emitted.slice(removedAt);
    const votes = after.filter((e) => e.event.type === "vote-granted" && e.event.to === removed);
    assert.deepEqual(votes, [], `seed ${seed}: ${removed} was granted votes`);
    const roles = after.flatMap((e) =>
      e.id === removed && e.event.type === "role-changed" ? [e.event.role] : [],
    );
    assert.ok(!roles.includes("leader"), `seed ${seed}: removed ${removed} led`);
    if (removedWhileDown) {
      // Back with the list that still names it, it campaigns, and every voter refuses it as outdated.
      const refusals = after.filter((e) => e.event.type === "vote-rejected" && e.event.to === removed);
      assert.ok(refusals.length > 0, `seed ${seed}: ${removed} never campaigned`);
    } else {
      assert.deepEqual(roles, [], `seed ${seed}: removed ${removed} campaigned`);
      assert.equal(c.status(removed)?.membership.standing, "removed");
    }
    assert.notEqual(c.status(removed)?.role, "leader");
  }
});
