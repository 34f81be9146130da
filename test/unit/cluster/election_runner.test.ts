// The election's shell: the contacts a vote carries leave as milliseconds (peers' ticks may differ), and a
// new leader collects those of the votes that elected it, on its own clock (src/core/grants.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { pino } from "pino";
import { ElectionRunner } from "../../../src/cluster/election_runner.ts";
import { MemoryHardStateStore } from "../../../src/cluster/hard_state_store.ts";
import type { ElectionConfig } from "../../../src/core/election_types.ts";
import { sortedMembership } from "../../../src/core/membership.ts";
import { Ticker } from "../../../src/shell/index.ts";
import { MemoryNetwork } from "../../support/memory_mesh.ts";

const ids = ["n1", "n2", "n3"];
const tickMs = 10;

function world() {
  const clock = { nowMs: 1_000 };
  let due: { atMs: number; fire: () => void } | null = null;
  const ticker = new Ticker({
    now: () => clock.nowMs,
    timers: {
      setTimeout: (fire, delayMs) => {
        due = { atMs: clock.nowMs + delayMs, fire };
        return due;
      },
      clearTimeout: (handle) => {
        if (due === handle) due = null;
      },
    },
  });
  const network = new MemoryNetwork();
  const config = sortedMembership(
    1,
    ids.map((id) => ({ id, address: "", role: "member", priority: 1, voting: true, autoPromote: false })),
  );
  const runners = new Map<string, ElectionRunner>();
  for (const id of ids) {
    const store = new MemoryHardStateStore();
    store.save({ term: 0, votedFor: null, membership: { config, term: 0 } });
    const electionConfig: ElectionConfig = {
      selfId: id,
      members: ids,
      witnesses: [],
      priorities: Object.fromEntries(ids.map((m) => [m, 1])),
      electionTimeoutTicks: 10,
      heartbeatIntervalTicks: 2,
      leaseTicks: 8,
      preVote: true,
      checkQuorum: true,
    };
    const runner = new ElectionRunner({
      config: electionConfig,
      store,
      mesh: network.join(id),
      logger: pino({ level: "silent" }),
      tickMs,
      ticker,
      seed: id,
      now: () => clock.nowMs,
    });
    runners.set(id, runner);
  }
  network.connectAll();
  for (const runner of runners.values()) runner.start();
  /** Moves the clock tick by tick, firing the ticker and letting messages arrive (setImmediate). */
  const advance = async (ms: number) => {
    for (let elapsed = 0; elapsed < ms; elapsed += tickMs) {
      clock.nowMs += tickMs;
      const timer = due as { atMs: number; fire: () => void } | null;
      if (timer !== null && timer.atMs <= clock.nowMs) {
        due = null;
        timer.fire();
      }
      for (let i = 0; i < 4; i++) await new Promise((resolve) => setImmediate(resolve));
    }
  };
  const runner = (id: string) => runners.get(id) as ElectionRunner;
  const leaders = () => ids.filter((id) => runner(id).status().role === "leader");
  const stop = () => {
    for (const r of runners.values()) r.stop();
  };
  return { clock, network, runner, leaders, advance, stop };
}

test("election runner: a new leader holds its voters' contacts in ms on its clock, and the tail its predecessor advertised", async () => {
  const w = world();
  w.runner("n1").campaign();
  await w.advance(100);
  assert.deepEqual(w.leaders(), ["n1"]);
  const first = w.runner("n1").contactsWhenWon(w.runner("n1").status().term);
  assert.ok(
    first !== null && first.length === 2,
    `its own contact and the vote that won: ${JSON.stringify(first)}`,
  );
  assert.deepEqual(
    first.map((c) => c.tailMs),
    [null, null],
    "nobody advertised a tail before the first leader",
  );
  w.runner("n1").setGrantTailMs(1550);
  await w.advance(30);
  assert.equal(w.runner("n1").acknowledgedGrantTailMs(), 1550);
  // n1 falls silent (a hung process: links up, nothing it sends arrives).
  w.network.setMuted("n1", true);
  const silentAtMs = w.clock.nowMs;
  await w.advance(600);
  const next = w.leaders().find((id) => id !== "n1");
  assert.ok(next !== undefined, "a new leader");
  const term = w.runner(next).status().term;
  const contacts = w.runner(next).contactsWhenWon(term);
  assert.ok(contacts !== null && contacts.length >= 2, JSON.stringify(contacts));
  for (const contact of contacts) {
    assert.equal(contact.tailMs, 1550);
    assert.equal(contact.heardMsAgo % tickMs, 0, "whole ticks, less one");
    // It last heard n1 at most a heartbeat interval before the silence.
    assert.ok(contact.atMs - contact.heardMsAgo >= silentAtMs - 2 * tickMs - tickMs, JSON.stringify(contact));
    assert.ok(contact.atMs - contact.heardMsAgo <= w.clock.nowMs);
  }
  assert.equal(w.runner(next).contactsWhenWon(term - 1), null, "only the term it won");
  w.stop();
  w.network.close();
});
