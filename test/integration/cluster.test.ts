// Real 3-process clusters through the CLI and config files: election, crash failover, rejoin, witness.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { ClusterHarness } from "../support/cluster_harness.ts";

describe("cluster: three members (mTLS)", { timeout: 180_000 }, () => {
  let harness: ClusterHarness;
  after(() => harness?.dispose());

  it("elects exactly one leader that every node agrees on, with peers alive and rtt measured", async () => {
    harness = await ClusterHarness.create({ nodes: 3 });
    harness.startAll();
    const { leaderId, term } = await harness.waitForAgreedLeader(["n1", "n2", "n3"]);
    assert.ok(term >= 1);
    const statuses = await harness.waitFor("every status", ["n1", "n2", "n3"], (all) =>
      all.size === 3 ? [...all.values()] : undefined,
    );
    assert.equal(statuses.filter((s) => s.role === "leader").length, 1, "exactly one node says it leads");
    await harness.waitFor("all peers alive with an rtt", ["n1", "n2", "n3"], (all) =>
      [...all.values()].every((s) =>
        s.peers.every((p) => p.state === "alive" && p.link === "up" && p.rttMs !== null),
      )
        ? true
        : undefined,
    );
    assert.ok(["n1", "n2", "n3"].includes(leaderId));
  });

  it("kill -9 of the leader: the others elect a new leader in a higher term", async () => {
    const before = await harness.waitForAgreedLeader(["n1", "n2", "n3"]);
    await harness.kill(before.leaderId, "SIGKILL");
    const survivors = ["n1", "n2", "n3"].filter((id) => id !== before.leaderId);
    const afterKill = await harness.waitForAgreedLeader(survivors);
    assert.notEqual(afterKill.leaderId, before.leaderId);
    assert.ok(afterKill.term > before.term, `term ${afterKill.term} must exceed ${before.term}`);
    // Every survivor's failure detector calls the dead node down (how fast is bench/failover.ts's claim).
    await harness.waitFor(`${before.leaderId} down on the survivors`, survivors, (all) =>
      all.size === survivors.length &&
      [...all.values()].every((s) => s.peers.find((p) => p.id === before.leaderId)?.state === "down")
        ? true
        : undefined,
    );

    // The old leader restarts from its persisted term and rejoins as a follower of the new leader.
    await harness.restart(before.leaderId);
    const rejoined = await harness.waitForAgreedLeader(["n1", "n2", "n3"]);
    const restarted = await harness.waitFor("the restarted node's status", [before.leaderId], (all) =>
      all.get(before.leaderId),
    );
    assert.equal(restarted.role, "follower");
    assert.equal(rejoined.leaderId, afterKill.leaderId, "a rejoining node does not disrupt the leader");
    assert.equal(rejoined.term, afterKill.term, "a rejoining node does not bump the term (pre-vote)");
  });
});

describe("cluster: two members and a witness (PSK)", { timeout: 120_000 }, () => {
  let harness: ClusterHarness;
  after(() => harness?.dispose());

  it("the witness votes but never leads; losing the leader hands over to the other member", async () => {
    harness = await ClusterHarness.create({ nodes: 3, witness: true, security: "psk" });
    harness.startAll();
    const first = await harness.waitForAgreedLeader(["n1", "n2", "n3"]);
    assert.notEqual(first.leaderId, "n3", "n3 is the witness");
    await harness.kill(first.leaderId, "SIGKILL");
    const other = first.leaderId === "n1" ? "n2" : "n1";
    const second = await harness.waitForAgreedLeader([other, "n3"]);
    assert.equal(second.leaderId, other);
  });
});
