// Removing the node that leads, asked through its own API or through a follower's: it hands leadership over,
// the successor removes it, and the command reports success once a quorum holds the change (the removed
// node keeps its links for a grace period, so the answer reaches the CLI over it).
import assert from "node:assert/strict";
import { after, it } from "node:test";
import { ClusterHarness } from "../support/cluster_harness.ts";
import { describeRun, memberCommand, memberStatus, waitTimeoutMs } from "../support/membership_cluster.ts";

const ids = ["n1", "n2", "n3"];
const harnesses: ClusterHarness[] = [];
after(() => Promise.all(harnesses.map((h) => h.dispose())));

for (const via of ["the leader", "a follower"] as const) {
  it(`removing the running leader through ${via} succeeds and the others elect a successor`, {
    timeout: 180_000,
  }, async () => {
    const harness = await ClusterHarness.create({ nodes: 3 });
    harnesses.push(harness);
    harness.startAll();
    const first = await harness.waitForAgreedLeader(ids);
    const rest = ids.filter((id) => id !== first.leaderId);
    const asked = via === "the leader" ? first.leaderId : (rest[0] as string);
    const run = await memberCommand(harness, asked, ["remove", first.leaderId]);
    assert.equal(run.code, 0, describeRun(run));
    const second = await harness.waitForAgreedLeader(rest);
    assert.notEqual(second.leaderId, first.leaderId);
    assert.ok(second.term > first.term);
    const deadline = Date.now() + waitTimeoutMs;
    let standing: string | undefined;
    while (Date.now() < deadline && standing !== "removed") {
      standing = (await memberStatus(harness, first.leaderId))?.membership.standing;
      if (standing !== "removed") await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(standing, "removed", `${first.leaderId} learns of its removal\n${harness.dumpLogs()}`);
    const list = await memberCommand(harness, second.leaderId, ["list", "--json"]);
    const listed = (JSON.parse(list.stdout) as { members: { id: string }[] }).members.map((m) => m.id);
    assert.deepEqual(listed.sort(), [...rest].sort());
  });
}
