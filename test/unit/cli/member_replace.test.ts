import assert from "node:assert/strict";
import { test } from "node:test";
import { MemberClient, type MembersJson } from "../../../src/cli/member_client.ts";
import { type ReplaceOptions, replaceMember, waitUntilVoting } from "../../../src/cli/member_replace.ts";
import { FakeCluster, serveMembers } from "../api/member_fake_cluster.ts";

async function setup(t: { after(fn: () => unknown): void }) {
  const cluster = new FakeCluster();
  const client = new MemberClient(await serveMembers(t, cluster));
  const lines: string[] = [];
  const options: ReplaceOptions = {
    oldId: "n2",
    newId: "n5",
    address: "10.0.0.5:7400",
    role: "member",
    priority: 100,
    force: false,
    timeoutMs: 30_000,
    pollMs: 5,
    report: (line) => lines.push(line),
  };
  return { cluster, client, lines, options };
}

test("member replace: a refused add changes nothing; an uncertain one may still commit", async (t) => {
  const { cluster, client, options } = await setup(t);
  cluster.answers.set("add", {
    ok: false,
    refusal: "refused",
    reason: "membership v8 is not yet held by a quorum; retry",
  });
  await assert.rejects(replaceMember(client, options), {
    message:
      "step 1/3 (add n5) failed: membership v8 is not yet held by a quorum; retry. " +
      "nothing changed: n2 is still a member, n5 was not added",
  });
  cluster.answers.set("add", {
    ok: false,
    refusal: "uncertain",
    reason: "v8 not yet held by a quorum after 10000 ms",
  });
  await assert.rejects(
    replaceMember(client, options),
    /step 1\/3 \(add n5\) failed: .*the add may still commit: check tandem member list/,
  );
  assert.equal(cluster.membership.version, 7);
});

test("member replace: a new node that never votes stops at step 2 with nothing removed; a rerun continues", async (t) => {
  const { cluster, client, lines, options } = await setup(t);
  cluster.down.add("n5");
  await assert.rejects(replaceMember(client, { ...options, timeoutMs: 50 }), {
    message:
      "step 2/3 (wait for n5 to vote) failed: n5 did not become a voter within 0.05 s (waiting for n5 to link: " +
      "start its agent (tandem agent on n5, with its certificate)). State: n5 is in the membership, n2 still votes; " +
      "nothing was removed. Start n5 and run this command again to continue, or undo with tandem member remove n5",
  });
  assert.ok(cluster.membership.nodes.some((n) => n.id === "n2"));

  cluster.down.delete("n5");
  cluster.catchUpReads.set("n5", 2);
  lines.length = 0;
  assert.equal(await replaceMember(client, options), 10);
  assert.equal(lines[0], "step 1/3: n5 is already in membership v8 (an earlier run): not added again");
  assert.equal(lines.at(-1), "step 3/3: removed n2 (membership v10); n5 has replaced it");
  assert.equal(cluster.changes.filter((c) => c.change.type === "add").length, 1);
});

test("member replace: a refused removal leaves the new node voting and says how to finish", async (t) => {
  const { cluster, client, options } = await setup(t);
  cluster.catchUpReads.set("n5", 1);
  cluster.answers.set("remove", { ok: false, refusal: "unsafe", reason: "only 1 of 3 voters healthy" });
  await assert.rejects(replaceMember(client, { ...options, force: true }), {
    message:
      "step 3/3 (remove n2) failed: only 1 of 3 voters healthy. " +
      "n5 votes and n2 is still a member; retry with tandem member remove n2 --force",
  });
  assert.deepEqual(cluster.changes.at(-1), { change: { type: "remove", id: "n2" }, force: true });
  assert.equal(cluster.membership.nodes.find((n) => n.id === "n5")?.voting, true);
});

test("member replace: what cannot be a replacement is refused before any change", async (t) => {
  const { cluster, client, options } = await setup(t);
  await assert.rejects(
    replaceMember(client, { ...options, oldId: "n9" }),
    /n9 is not in membership v7: nothing to replace/,
  );
  await assert.rejects(replaceMember(client, { ...options, newId: "n2" }), /must have different ids/);
  await assert.rejects(
    replaceMember(client, { ...options, newId: "n4", address: "10.0.9.4:7400" }),
    /n4 is already in membership v7 at 10\.0\.0\.4:7400, not 10\.0\.9\.4:7400/,
  );
  assert.deepEqual(cluster.changes, []);
  await client.add({ id: "n6", address: "10.0.0.6:7400", role: "member", priority: 1, learner: true });
  await assert.rejects(
    replaceMember(client, { ...options, newId: "n6", address: "10.0.0.6:7400" }),
    /n6 is a learner the leader does not promote \(added with --learner\): tandem member promote n6/,
  );
});

test("member wait: a failed read is reported and retried until the node votes", async () => {
  const voting: MembersJson = {
    version: 9,
    hash: "",
    committedVersion: 9,
    pendingVersion: null,
    standing: "voter",
    leader: "n1",
    term: 2,
    configDrift: [],
    members: [
      {
        id: "n5",
        address: "a:1",
        role: "member",
        priority: 1,
        voting: true,
        autoPromote: false,
        self: false,
        link: "up",
        state: "alive",
        announcedVersion: 9,
      },
    ],
  };
  let reads = 0;
  const flaky = {
    list: async () => {
      reads++;
      if (reads === 1) throw new Error("connect ECONNREFUSED");
      return voting;
    },
  };
  const lines: string[] = [];
  const doc = await waitUntilVoting(flaky, "n5", {
    timeoutMs: 30_000,
    pollMs: 1,
    report: (l) => lines.push(l),
  });
  assert.equal(doc.version, 9);
  assert.deepEqual(lines, ["cannot read the membership (connect ECONNREFUSED); retrying"]);
});
