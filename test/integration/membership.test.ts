// Membership changes across real agents (processes, CLI, config files, loopback): a node joins a running
// cluster with `tandem agent --join` while the store takes writes, then a member is removed with `tandem
// member remove`; a member killed -9 is replaced with `tandem member replace`; a removed node that comes
// back is refused; a node whose tandem.yml drifted from the membership says so and follows the cluster.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { ClusterHarness } from "../support/cluster_harness.ts";
import { type DevConfig, setPriority } from "../support/dev_config_edit.ts";
import { LeadershipRecord, recordInBackground, watchLeadership } from "../support/leadership_record.ts";
import {
  describeRun,
  type MemberNodeStatus,
  memberCommand,
  members,
  StoreWriter,
  statusRound,
  waitForMembers,
  waitUntilHeld,
} from "../support/membership_cluster.ts";

const three = ["n1", "n2", "n3"];

type Peer = DevConfig["peers"][number];

/** Where the other agents dial `id`. */
function meshAddress(harness: ClusterHarness, id: string): string {
  return `127.0.0.1:${harness.node(id).meshPort}`;
}

/** One leader other than `not`, agreed by every listed node in one term. */
function waitForLeaderOtherThan(harness: ClusterHarness, ids: readonly string[], not: string) {
  return harness.waitFor(`a leader other than ${not} agreed by ${ids.join(",")}`, [...ids], (all) => {
    const first = all.get(ids[0]!);
    const leaderId = first?.leaderId;
    if (!first || !leaderId || leaderId === not || all.get(leaderId)?.role !== "leader") return undefined;
    const agreed = ids.every((id) => all.get(id)?.leaderId === leaderId && all.get(id)?.term === first.term);
    return agreed ? { leaderId, term: first.term } : undefined;
  });
}

/**
 * Dev configs for four nodes: n1..n3 bootstrap a cluster of three (n4 left out of their peers), n4 lists no
 * peers and is started later with --join. n3 ranks below n1 and n2, so the leader hands off to them and n3
 * is a follower when the tests remove or kill it (removing a leader hands off first: another path). Starts
 * n1..n3 and waits for a leader other than n3.
 */
async function threeAndASpare(): Promise<ClusterHarness> {
  const harness = await ClusterHarness.create({ nodes: 4 });
  for (const id of three) {
    harness.editConfig(id, (config) => {
      config.peers = (config.peers as Peer[]).filter((p) => p.id !== "n4");
    });
  }
  harness.editConfig("n4", (config) => {
    config.peers = [];
  });
  setPriority(
    harness.nodes.map((n) => n.configPath),
    "n3",
    50,
  );
  for (const id of three) harness.start(id);
  await waitForLeaderOtherThan(harness, three, "n3");
  return harness;
}

/** A node's own view of its place in the membership ("voter", "removed", ...). */
function standing(statuses: ReadonlyMap<string, unknown>, id: string): string | undefined {
  return (statuses.get(id) as MemberNodeStatus | undefined)?.membership.standing;
}

/** Statuses of every running agent, for the background leadership record. */
function readRunning(harness: ClusterHarness) {
  return () => statusRound(harness, harness.running());
}

function logsOf(harness: ClusterHarness, ids: readonly string[]): Map<string, readonly string[]> {
  return new Map(ids.map((id) => [id, harness.logLines(id)]));
}

describe("membership: n4 joins a running cluster while writes flow, then n3 is removed", {
  timeout: 300_000,
}, () => {
  let harness: ClusterHarness | undefined;
  let writer: StoreWriter | undefined;
  let watch: { stop: () => Promise<void> } | undefined;
  after(async () => {
    await writer?.stop();
    await watch?.stop().catch(() => {});
    await harness?.dispose();
  });

  it("n4 votes and holds every acknowledged write; after the removal n1, n2, n4 lead and lose nothing", async () => {
    harness = await threeAndASpare();
    const record = new LeadershipRecord();
    watch = recordInBackground(record, readRunning(harness));
    writer = new StoreWriter(harness, ["n1", "n2"], "load");
    await writer.ackedAtLeast(10, "before n4 joins");

    harness.start("n4", ["--join", meshAddress(harness, "n1")]);
    const joined = await waitForMembers(harness, "n1", "n4 to vote", (doc) =>
      doc.members.find((m) => m.id === "n4")?.voting === true ? doc : undefined,
    );
    assert.deepEqual(joined.members.map((m) => m.id).sort(), ["n1", "n2", "n3", "n4"]);
    await waitUntilHeld(harness, "n4", "load", [...writer.acked]);
    await writer.ackedMore(5, "with n4 voting");

    const removal = await memberCommand(harness, "n1", ["remove", "n3"]);
    assert.equal(removal.code, 0, `tandem member remove n3: ${describeRun(removal)}`);
    const removedAt = writer.acked.length;
    await harness.waitFor("n3 to know it was removed", ["n3"], (all) =>
      standing(all, "n3") === "removed" ? true : undefined,
    );
    await harness.kill("n3", "SIGTERM");

    const rest = ["n1", "n2", "n4"];
    const leader = await harness.waitForAgreedLeader(rest);
    await writer.ackedAtLeast(removedAt + 10, "after n3's removal");
    await writer.stop();
    await watch.stop();
    for (const id of rest) await waitUntilHeld(harness, id, "load", writer.acked);
    const listed = await members(harness, "n4");
    assert.deepEqual(listed?.members.map((m) => [m.id, m.voting]).sort(), [
      ["n1", true],
      ["n2", true],
      ["n4", true],
    ]);
    record.addLogged(logsOf(harness, [...three, "n4"]));
    console.log(
      `join and remove: ${writer.acked.length} writes acknowledged, ${record.rounds} status rounds, ` +
        `leader ${leader.leaderId} in term ${leader.term} after the removal`,
    );
  });
});

describe("membership: a member killed with kill -9 is replaced", { timeout: 300_000 }, () => {
  let harness: ClusterHarness | undefined;
  let watch: { stop: () => Promise<void> } | undefined;
  after(async () => {
    await watch?.stop().catch(() => {});
    await harness?.dispose();
  });

  it("tandem member replace n3 n4: n4 votes, n3 is gone; a leader then killed -9 is succeeded", async () => {
    harness = await threeAndASpare();
    const record = new LeadershipRecord();
    watch = recordInBackground(record, readRunning(harness));
    await harness.kill("n3", "SIGKILL");

    // As the command's help says: start the new node while the command waits for it.
    const address = meshAddress(harness, "n4");
    const replacing = memberCommand(harness, "n1", [
      "replace",
      "n3",
      "n4",
      "--address",
      address,
      "--timeout",
      "45s",
    ]);
    await waitForMembers(harness, "n1", "n4 to be listed", (doc) =>
      doc.members.some((m) => m.id === "n4") ? true : undefined,
    );
    harness.start("n4", ["--join", meshAddress(harness, "n1")]);
    const replaced = await replacing;
    assert.equal(replaced.code, 0, `tandem member replace: ${describeRun(replaced)}\n${harness.dumpLogs()}`);
    assert.match(replaced.stdout, /step 3\/3: removed n3/);

    const rest = ["n1", "n2", "n4"];
    for (const id of rest) {
      await waitForMembers(harness, id, `${id} to list n1, n2, n4 voting`, (doc) =>
        doc.members.map((m) => `${m.id}:${m.voting}`).join(",") === "n1:true,n2:true,n4:true"
          ? true
          : undefined,
      );
    }
    const first = await harness.waitForAgreedLeader(rest);
    await harness.kill(first.leaderId, "SIGKILL");
    const survivors = rest.filter((id) => id !== first.leaderId);
    const second = await harness.waitForAgreedLeader(survivors);
    assert.ok(second.term > first.term, `term ${second.term} must exceed ${first.term}`);
    await watch.stop();
    record.addLogged(logsOf(harness, [...three, "n4"]));
    console.log(
      `replace: ${first.leaderId} (term ${first.term}) killed, ${second.leaderId} elected (term ${second.term}); ` +
        `${record.rounds} status rounds`,
    );
  });
});

describe("membership: a removed node that comes back is refused", { timeout: 300_000 }, () => {
  let harness: ClusterHarness | undefined;
  after(() => harness?.dispose());

  it("n3, killed -9 then removed, restarts on its old data dir: refused, never leads, disturbs nothing", async () => {
    harness = await ClusterHarness.create({ nodes: 3 });
    harness.startAll();
    await harness.waitForAgreedLeader(three);
    // Killed before the removal, n3 never hears of it: it comes back holding the list that names it.
    await harness.kill("n3", "SIGKILL");
    const pair = ["n1", "n2"];
    await harness.waitForAgreedLeader(pair);
    const removal = await memberCommand(harness, "n1", ["remove", "n3"]);
    assert.equal(removal.code, 0, `tandem member remove n3: ${describeRun(removal)}`);
    const settled = await harness.waitForAgreedLeader(pair);

    const firstRunLines = harness.logLines("n3").length;
    await harness.restart("n3");
    await harness.waitForApi(["n3"]);
    const refusal = "node n3 is not a member of membership v";
    await harness.waitFor("a refusal of n3's links in the logs", three, () =>
      three.some((id) => harness!.logLines(id).some((line) => line.includes(refusal))) ? true : undefined,
    );

    const record = new LeadershipRecord();
    const rounds = await watchLeadership(record, {
      durationMs: 5_000,
      roundsMin: 40,
      read: () => statusRound(harness!, three),
      expected: three,
      check: (round) => {
        assert.notEqual(round.get("n3")?.role, "leader", "the removed n3 leads");
        for (const id of pair) {
          const status = round.get(id);
          assert.equal(status?.leaderId, settled.leaderId, `${id} left leader ${settled.leaderId}`);
          assert.equal(status?.term, settled.term, `${id} left term ${settled.term}`);
        }
      },
    });
    const restarted = harness.logLines("n3").slice(firstRunLines);
    assert.ok(
      !restarted.some((line) => line.includes('"msg":"became leader"')),
      "the removed n3 logged an election",
    );
    record.addLogged(logsOf(harness, three));

    const listed = await memberCommand(harness, "n1", ["list", "--json"]);
    assert.equal(listed.code, 0, describeRun(listed));
    const ids = (JSON.parse(listed.stdout) as { members: Array<{ id: string }> }).members.map((m) => m.id);
    assert.deepEqual(ids.sort(), pair);
    // n3 itself says why it is alone: its peers refuse it as not in their membership.
    const told = await harness.waitFor("n3's status to name the peers refusing it", ["n3"], (all) => {
      const refusedBy = (all.get("n3") as MemberNodeStatus | undefined)?.membership.refusedBy ?? [];
      return refusedBy.length > 0 ? refusedBy : undefined;
    });
    assert.ok(
      told.every((r) => pair.includes(r.peer) && r.reason.includes(refusal)),
      JSON.stringify(told),
    );
    console.log(
      `removed node back: refused; ${settled.leaderId} kept term ${settled.term} over ${rounds} rounds`,
    );
  });
});

describe("membership: a node whose tandem.yml drifted from the membership", { timeout: 300_000 }, () => {
  let harness: ClusterHarness | undefined;
  after(() => harness?.dispose());

  it("warns at start, shows configDrift in its status, and follows the cluster's leader and version", async () => {
    harness = await ClusterHarness.create({ nodes: 3 });
    harness.startAll();
    const first = await harness.waitForAgreedLeader(three);
    const drifted = three.find((id) => id !== first.leaderId)!;
    await harness.kill(drifted, "SIGTERM");
    // Its file now lacks the leader and names a node that was never added.
    const stranger = { id: "n9", address: "127.0.0.1:9", role: "member", priority: 100 };
    harness.editConfig(drifted, (config) => {
      config.peers = [...(config.peers as Peer[]).filter((p) => p.id !== first.leaderId), stranger];
    });
    await harness.restart(drifted);

    const status = await harness.waitFor(`${drifted} to report its drift`, [drifted], (all) => {
      const own = all.get(drifted) as MemberNodeStatus | undefined;
      return own && own.membership.configDrift.length > 0 ? own : undefined;
    });
    const drift = status.membership.configDrift;
    assert.ok(
      drift.some((d) => /^n9 is configured but not in membership v\d+$/.test(d)),
      `drift lacks n9: ${JSON.stringify(drift)}`,
    );
    assert.ok(
      drift.some(
        (d) => d.startsWith(`${first.leaderId} is in membership v`) && d.endsWith("but not configured"),
      ),
      `drift lacks ${first.leaderId}: ${JSON.stringify(drift)}`,
    );
    const warned = harness
      .logLines(drifted)
      .some((line) => line.includes("tandem.yml's peers differ from the cluster's membership"));
    assert.ok(warned, `${drifted} did not warn at start\n${harness.dumpLogs()}`);

    await harness.waitFor(
      `${drifted} to follow ${first.leaderId} with the cluster's membership`,
      three,
      (all) => {
        const statuses = three.map((id) => all.get(id) as MemberNodeStatus | undefined);
        const own = all.get(drifted) as MemberNodeStatus | undefined;
        const linked = own?.peers.find((p) => p.id === first.leaderId)?.link === "up";
        const same = statuses.every(
          (s) =>
            s?.leaderId === first.leaderId &&
            s.term === first.term &&
            s.membership.version === status.membership.version &&
            s.membership.hash === status.membership.hash,
        );
        return linked && same ? true : undefined;
      },
    );
    for (const id of three.filter((n) => n !== drifted)) {
      const other = (await harness.status(id)) as MemberNodeStatus | null;
      assert.deepEqual(other?.membership.configDrift, [], `${id}'s file agrees with the membership`);
    }
  });
});
