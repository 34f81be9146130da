import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { registerMemberCommands } from "../../../src/cli/commands/member.ts";
import { DataDirLock } from "../../../src/cli/data_dir_lock.ts";
import { forcedHardState } from "../../../src/cli/force_new_cluster.ts";
import { FileHardStateStore } from "../../../src/cluster/index.ts";
import { Election } from "../../../src/core/election.ts";
import type { HardState } from "../../../src/core/election_types.ts";
import {
  compareMembership,
  type MemberSpec,
  membershipHash,
  sortedMembership,
} from "../../../src/core/membership.ts";
import { Prng } from "../../../src/core/prng.ts";
import { runCli } from "./harness.ts";

const spec = (id: string, extra: Partial<MemberSpec> = {}): MemberSpec => ({
  id,
  address: `10.0.0.${id.slice(1)}:7400`,
  role: "member",
  priority: 100,
  voting: true,
  autoPromote: false,
  ...extra,
});

/** n1's election state after term 7: it voted for n2 and holds v5 of n1, n2 and witness n3, from term 6. */
const oldState: HardState = {
  term: 7,
  votedFor: "n2",
  membership: {
    config: sortedMembership(5, [
      spec("n1", { priority: 150 }),
      spec("n2"),
      spec("n3", { role: "witness", priority: 0 }),
    ]),
    term: 6,
  },
};

/** A stopped node n1 with `state` on disk (none when null), and its tandem.yml. */
function survivor(t: { after(fn: () => unknown): void }, state: HardState | null, role = "member") {
  const dir = mkdtempSync(join(tmpdir(), "tandem-force-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, "tandem.yml");
  writeFileSync(
    config,
    `node: { id: n1, role: ${role}, priority: 90 }\nlisten: 127.0.0.1:7400\nadvertise: 10.0.9.1:7400\n` +
      "security: { mode: psk, psk_env: TANDEM_TEST_UNUSED }\npeers:\n  - { id: n2, address: 10.0.0.2:7400 }\n",
  );
  const store = new FileHardStateStore(join(dir, "data"));
  if (state !== null) store.save(state);
  return { config, store, dataDir: join(dir, "data") };
}

async function member(args: string[]) {
  const run = await runCli(registerMemberCommands, ["member", ...args]);
  const exitCode = run.exitCode || Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { ...run, exitCode };
}

test("force-new-cluster: without --yes it shows the plan, refuses and writes nothing", async (t) => {
  const { config, store } = survivor(t, oldState);
  const run = await member(["force-new-cluster", "--config", config]);
  assert.equal(run.exitCode, 1);
  assert.equal(
    run.stdout,
    `would rewrite ${store.path}:\n  term        7 -> 8, vote cleared\n` +
      "  membership  v5 [n1, n2, n3 (witness)] (term 6) -> v6 [n1] (term 8)\n",
  );
  assert.match(run.stderr, /refused without --yes: .* unsafe while a majority of its voters still runs/);
  assert.deepEqual(store.load(), oldState);
});

test("force-new-cluster --yes: the survivor holds itself alone, outranks the old list and elects itself", async (t) => {
  const { config, store } = survivor(t, oldState);
  const run = await member(["force-new-cluster", "--config", config, "--yes"]);
  assert.equal(run.exitCode, 0, run.stderr);
  const forced = store.load();
  const alone = sortedMembership(6, [spec("n1", { priority: 150 })]);
  assert.deepEqual(forced, { term: 8, votedFor: null, membership: { config: alone, term: 8 } });
  assert.match(run.stdout, /^rewrote /);
  assert.match(run.stdout, /n1 now holds a membership of itself alone/);
  assert.match(run.stdout, /Keep every other node of the old cluster stopped/);
  assert.match(run.stdout, new RegExp(`tandem agent --config ${config.replaceAll(".", "\\.")} `));
  assert.match(run.stdout, /\n {7}tandem member add n2 --address 10\.0\.0\.2:7400 --priority 100 --wait\n/);
  assert.match(
    run.stdout,
    /\n {7}tandem member add n3 --address 10\.0\.0\.3:7400 --witness --priority 0 --wait\n/,
  );

  // The election core accepts the state: alone, n1 elects itself, under a list newer than the old one.
  const election = new Election(
    {
      selfId: "n1",
      members: ["n1", "n2"],
      witnesses: [],
      priorities: { n1: 90, n2: 100 },
      electionTimeoutTicks: 10,
      heartbeatIntervalTicks: 2,
      leaseTicks: 8,
      preVote: true,
      checkQuorum: true,
    },
    forced,
    new Prng("force"),
  );
  for (let i = 0; i < 100 && election.status().role !== "leader"; i++) {
    election.tick();
    while (election.hasReady()) election.advance(election.ready());
  }
  assert.equal(election.status().role, "leader");
  assert.equal(election.status().membership.summary.version, 6);
  const old = oldState.membership!;
  const outranks = compareMembership(election.status().membership.summary, {
    version: old.config.version,
    hash: membershipHash(old.config),
    term: old.term,
  });
  assert.ok(outranks > 0, "voters of the old list take the forced one, and refuse their old candidates");
});

test("force-new-cluster: refused while the agent holds the data directory", async (t) => {
  const { config, store, dataDir } = survivor(t, oldState);
  const lock = new DataDirLock(dataDir);
  lock.acquire();
  t.after(() => lock.release());
  const run = await member(["force-new-cluster", "--config", config, "--yes"]);
  assert.equal(run.exitCode, 1);
  assert.match(
    run.stderr,
    /agent\.lock: this process \(pid \d+\) already runs an agent on this data directory/,
  );
  assert.deepEqual(store.load(), oldState);
});

test("force-new-cluster: refused on a witness, and where no election state exists", async (t) => {
  const witness = survivor(t, oldState, "witness");
  const asWitness = {
    ...oldState,
    membership: {
      ...oldState.membership!,
      config: sortedMembership(5, [spec("n1", { role: "witness" }), spec("n2")]),
    },
  };
  witness.store.save(asWitness);
  const refused = await member(["force-new-cluster", "--config", witness.config, "--yes"]);
  assert.equal(refused.exitCode, 1);
  assert.match(refused.stderr, /n1 is a witness: it votes but never leads, so it cannot be a cluster alone/);
  assert.deepEqual(witness.store.load(), asWitness);

  const fresh = survivor(t, null);
  const none = await member(["force-new-cluster", "--config", fresh.config, "--yes"]);
  assert.equal(none.exitCode, 1);
  assert.match(
    none.stderr,
    /election-state\.json does not exist: n1 never ran in a cluster with this data_dir/,
  );
});

test("force-new-cluster: a node missing from its list takes its config; terms above every term known", () => {
  const configured = { id: "n1", address: "10.0.9.1:7400", role: "member" as const, priority: 90 };
  const removed: HardState = {
    term: 4,
    votedFor: null,
    membership: { config: sortedMembership(9, [spec("n2"), spec("n3")]), term: 4 },
  };
  const forced = forcedHardState(removed, configured);
  assert.ok(forced.ok);
  assert.deepEqual(forced.state.membership, {
    config: sortedMembership(10, [{ ...configured, voting: true, autoPromote: false }]),
    term: 5,
  });
  const beforeMembership = forcedHardState({ term: 3, votedFor: "n2" }, configured);
  assert.ok(beforeMembership.ok);
  assert.equal(beforeMembership.state.term, 4);
  assert.equal(beforeMembership.state.membership?.config.version, 1);
});
