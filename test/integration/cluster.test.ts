// Real 3-process clusters through the CLI and config files: election, crash failover, rejoin, witness.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { ClusterHarness } from "../support/cluster_harness.ts";

describe("cluster: three members (mTLS)", { timeout: 90_000 }, () => {
  let harness: ClusterHarness;
  after(() => harness?.dispose());

  it("elects exactly one leader that every node agrees on, with peers alive and rtt measured", async () => {
    harness = await ClusterHarness.create({ nodes: 3 });
    harness.startAll();
    const { leaderId, term } = await harness.waitForAgreedLeader(["n1", "n2", "n3"]);
    assert.ok(term >= 1);
    const statuses = await Promise.all(["n1", "n2", "n3"].map((id) => harness.status(id)));
    assert.equal(statuses.filter((s) => s?.role === "leader").length, 1, "exactly one node says it leads");
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
    const killedAtMs = Date.now();
    const survivors = ["n1", "n2", "n3"].filter((id) => id !== before.leaderId);
    const afterKill = await harness.waitForAgreedLeader(survivors, 5_000);
    // The failure detector calls the dead node down within about a second (1 s of silence by default).
    await harness.waitFor(
      `${before.leaderId} down on the survivors`,
      survivors,
      (all) =>
        [...all.values()].every((s) => s.peers.find((p) => p.id === before.leaderId)?.state === "down")
          ? true
          : undefined,
      3_000,
    );
    const detectedMs = Date.now() - killedAtMs;
    assert.ok(detectedMs < 2_000, `down after ${detectedMs} ms`);
    assert.notEqual(afterKill.leaderId, before.leaderId);
    assert.ok(afterKill.term > before.term, `term ${afterKill.term} must exceed ${before.term}`);

    // The old leader restarts from its persisted term and rejoins as a follower of the new leader.
    harness.start(before.leaderId);
    const rejoined = await harness.waitForAgreedLeader(["n1", "n2", "n3"]);
    const restarted = await harness.status(before.leaderId);
    assert.equal(restarted?.role, "follower");
    assert.equal(rejoined.leaderId, afterKill.leaderId, "a rejoining node does not disrupt the leader");
    assert.equal(rejoined.term, afterKill.term, "a rejoining node does not bump the term (pre-vote)");
  });
});

describe("cluster: two members and a witness (PSK)", { timeout: 60_000 }, () => {
  let harness: ClusterHarness;
  after(() => harness?.dispose());

  it("the witness votes but never leads; losing the leader hands over to the other member", async () => {
    harness = await ClusterHarness.create({ nodes: 3, witness: true, security: "psk" });
    harness.startAll();
    const first = await harness.waitForAgreedLeader(["n1", "n2", "n3"]);
    assert.notEqual(first.leaderId, "n3", "n3 is the witness");
    await harness.kill(first.leaderId, "SIGKILL");
    const other = first.leaderId === "n1" ? "n2" : "n1";
    const second = await harness.waitForAgreedLeader([other, "n3"], 5_000);
    assert.equal(second.leaderId, other);
  });
});
