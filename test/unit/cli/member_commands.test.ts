import assert from "node:assert/strict";
import { test } from "node:test";
import { parseDurationOption, registerMemberCommands } from "../../../src/cli/commands/member.ts";
import { FakeCluster, serveMembers } from "../api/member_fake_cluster.ts";
import { runCli } from "./harness.ts";

/** Runs `tandem member ...` and returns its exit status, including the exitCode an action sets (then cleared). */
async function member(args: string[]) {
  const run = await runCli(registerMemberCommands, ["member", ...args]);
  const exitCode = run.exitCode || Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { ...run, exitCode };
}

test("cli member list: header with versions, leader and term; a row per node; self, leader and drift marked", async (t) => {
  const cluster = new FakeCluster();
  cluster.down.add("n3");
  cluster.configDrift = ["n4 is in membership v7 but not configured"];
  const api = await serveMembers(t, cluster);
  const listed = await member(["list", "--api", api]);
  assert.equal(listed.exitCode, 0, listed.stderr);
  const lines = listed.stdout.split("\n");
  assert.equal(lines[0], "membership v7 (committed v7)   leader n2   term 5   this node: n1 (voter)");
  assert.match(lines[2] ?? "", /^ID +ADDRESS +ROLE +PRIORITY +VOTING +LINK +VERSION$/);
  assert.match(lines[3] ?? "", /^n1 \(self\) +10\.0\.0\.1:7400 +member +100 +yes +self +v7$/);
  assert.match(lines[4] ?? "", /^n2 \* +10\.0\.0\.2:7400 +member +100 +yes +up +v7$/);
  assert.match(lines[5] ?? "", /^n3 +10\.0\.0\.3:7400 +witness +0 +yes +down +-$/);
  assert.match(lines[6] ?? "", /^n4 +10\.0\.0\.4:7400 +member +100 +learner \(auto\) +up +v6$/);
  assert.match(
    listed.stdout,
    /tandem\.yml differs from the membership.*\n {2}- n4 is in membership v7 but not configured\n$/,
  );

  const asJson = await member(["list", "--api", api, "--json"]);
  const doc = JSON.parse(asJson.stdout) as { version: number; members: Array<{ id: string }> };
  assert.equal(doc.version, 7);
  assert.deepEqual(
    doc.members.map((m) => m.id),
    ["n1", "n2", "n3", "n4"],
  );
});

test("cli member list: what a server sends cannot drive the terminal", async (t) => {
  const cluster = new FakeCluster();
  cluster.membership = {
    ...cluster.membership,
    nodes: [{ ...cluster.membership.nodes[0]!, address: "h:1\u001b[2J\u009b" }],
  };
  const listed = await member(["list", "--api", await serveMembers(t, cluster)]);
  assert.ok(!listed.stdout.includes("\u001b") && !listed.stdout.includes("\u009b"), listed.stdout);
  assert.match(listed.stdout, /h:1\\u001b\[2J\\u009b/);
});

test("cli member add: a learner promoted once caught up, or kept a learner; --wait follows it until it votes", async (t) => {
  const cluster = new FakeCluster();
  const api = await serveMembers(t, cluster);
  const added = await member(["add", "n5", "--address", "10.0.0.5:7400", "--priority", "50", "--api", api]);
  assert.equal(added.exitCode, 0, added.stderr);
  assert.match(added.stdout, /^added n5 at 10\.0\.0\.5:7400 as a learner: membership v8, held by a quorum\n/);
  assert.match(added.stdout, /start n5's agent: it votes once it has caught up/);
  const witness = await member([
    "add",
    "w6",
    "--address",
    "[::1]:7406",
    "--witness",
    "--learner",
    "--api",
    api,
    "--json",
  ]);
  assert.equal(witness.stdout, '{"version":9}\n');
  assert.deepEqual(
    cluster.changes.map((c) => c.change),
    [
      {
        type: "add",
        node: { id: "n5", address: "10.0.0.5:7400", role: "member", priority: 50, autoPromote: true },
      },
      {
        type: "add",
        node: { id: "w6", address: "[::1]:7406", role: "witness", priority: 100, autoPromote: false },
      },
    ],
  );

  cluster.catchUpReads.set("n7", 2);
  const waited = await member(["add", "n7", "--address", "10.0.0.7:7400", "--wait", "--api", api]);
  assert.equal(waited.exitCode, 0, waited.stderr);
  assert.match(waited.stdout, /n7 is linked and catching up as a learner in membership v10;/);
  assert.match(waited.stdout, /\nn7 votes\n$/);
  assert.equal(cluster.membership.nodes.find((n) => n.id === "n7")?.voting, true);
});

test("cli member add: bad arguments are refused before any request", async (t) => {
  const cluster = new FakeCluster();
  const api = await serveMembers(t, cluster);
  const refusals: Array<[string[], RegExp]> = [
    [
      ["add", "N5", "--address", "10.0.0.5:7400"],
      /'N5' is invalid for argument 'id'\. expected 1-63 characters/,
    ],
    [["add", "n5", "--address", "10.0.0.5"], /'10\.0\.0\.5' is invalid\. expected host:port/],
    [["add", "n5"], /required option '--address <host:port>' not specified/],
    [["add", "n5", "--address", "a:1", "--priority", "1001"], /an integer from 0 to 1000/],
    [["add", "n5", "--address", "a:1", "--wait", "--timeout", "soon"], /a duration such as/],
    [
      ["add", "n5", "--address", "a:1", "--wait", "--learner"],
      /--wait waits for a vote, which a --learner never gets/,
    ],
    [["update", "n2"], /name at least one of --address, --priority, --role/],
    [["update", "n2", "--role", "leader"], /Allowed choices are member, witness/],
  ];
  for (const [args, message] of refusals) {
    const run = await member([...args, "--api", api]);
    assert.notEqual(run.exitCode, 0, args.join(" "));
    assert.match(run.stderr, message, args.join(" "));
  }
  assert.deepEqual(cluster.changes, []);
});

test("cli member remove, promote, demote, update: the change and its version; a refusal exits 1 with the reason", async (t) => {
  const cluster = new FakeCluster();
  const api = await serveMembers(t, cluster);
  const reason = "after this change 2 voters need 2 for a quorum, and only 1 is healthy: repeat with --force";
  cluster.answers.set("remove", { ok: false, refusal: "unsafe", reason });
  const unsafe = await member(["remove", "n3", "--api", api]);
  assert.equal(unsafe.exitCode, 1);
  assert.equal(unsafe.stderr, `tandem member remove: ${reason}\n`);
  cluster.answers.delete("remove");
  const forced = await member(["remove", "n3", "--force", "--api", api]);
  assert.equal(forced.stdout, "removed n3: membership v8, held by a quorum\n");
  assert.equal(
    (await member(["promote", "n4", "--api", api])).stdout,
    "promoted n4: membership v9, held by a quorum\n",
  );
  assert.equal((await member(["demote", "n2", "--api", api])).exitCode, 0);
  const moved = await member(["update", "n2", "--address", "10.0.1.2:7400", "--priority", "7", "--api", api]);
  assert.equal(moved.stdout, "updated n2: membership v11, held by a quorum\n");
  assert.deepEqual(
    cluster.changes.map((c) => [c.change, c.force]),
    [
      [{ type: "remove", id: "n3" }, false],
      [{ type: "remove", id: "n3" }, true],
      [{ type: "promote", id: "n4" }, false],
      [{ type: "demote", id: "n2" }, false],
      [{ type: "update", id: "n2", address: "10.0.1.2:7400", priority: 7 }, false],
    ],
  );
  const gone = await member(["promote", "n3", "--api", api]);
  assert.equal(gone.exitCode, 1);
  assert.equal(gone.stderr, "tandem member promote: n3 is not in the membership\n");
});

test("cli member: an agent that does not answer is named", async () => {
  const run = await member(["list", "--api", "http://127.0.0.1:1"]);
  assert.equal(run.exitCode, 1);
  assert.match(
    run.stderr,
    /^tandem member list: cannot reach the Tandem API at http:\/\/127\.0\.0\.1:1 \(is the agent running\?\)/,
  );
});

test("cli member replace: add, wait until the new node votes, remove the old one, each step printed", async (t) => {
  const cluster = new FakeCluster();
  cluster.down.add("n3");
  cluster.catchUpReads.set("n5", 2);
  const api = await serveMembers(t, cluster);
  const run = await member([
    "replace",
    "n2",
    "n5",
    "--address",
    "10.0.0.5:7400",
    "--priority",
    "90",
    "--api",
    api,
  ]);
  assert.equal(run.exitCode, 0, run.stderr);
  assert.match(run.stdout, /^step 1\/3: added n5 at 10\.0\.0\.5:7400 as a learner \(membership v8\)\n/);
  assert.match(run.stdout, /\nstep 2\/3: waiting up to 120 s for n5 to vote\n/);
  assert.match(
    run.stdout,
    /\nn5 is linked and catching up as a learner in membership v8;[^\n]*\nstep 2\/3: n5 votes\n/,
  );
  assert.match(run.stdout, /\nstep 3\/3: removed n2 \(membership v10\); n5 has replaced it\n$/);
  assert.deepEqual(
    cluster.membership.nodes.map((n) => [n.id, n.voting, n.priority]),
    [
      ["n1", true, 100],
      ["n3", true, 0],
      ["n4", false, 100],
      ["n5", true, 90],
    ],
  );
});

test("cli member: durations", () => {
  assert.equal(parseDurationOption("120s"), 120_000);
  assert.equal(parseDurationOption("2m"), 120_000);
  assert.equal(parseDurationOption("1500ms"), 1_500);
  assert.equal(parseDurationOption("30"), 30_000);
  assert.throws(() => parseDurationOption("0s"));
  assert.throws(() => parseDurationOption("-1s"));
  assert.throws(() => parseDurationOption("1h"));
});
