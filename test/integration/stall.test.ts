// Failure detection must not flap while a node is CPU-starved: SIGSTOP a node for 300 ms, then SIGCONT.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ClusterHarness } from "../support/cluster_harness.ts";

function transitions(harness: ClusterHarness, id: string): string[] {
  return harness
    .logLines(id)
    .filter((line) => /"msg":"peer (suspect|down)"|"msg":"leader changed"|lease-lost/.test(line));
}

const ids = ["n1", "n2", "n3"];
const stallMs = 300;
/**
 * The stall as the other nodes saw it: from SIGSTOP until the node answered its API after SIGCONT (by then it
 * ran its late timers and sent its heartbeats). On a loaded machine the test's timer or the node's return to
 * the CPU can stretch it past the 300 ms the claim is about: such a stall proves nothing either way.
 */
const stallMsMax = 380;
const stallsNeeded = 3;
const attemptsMax = 15;

describe("failure detection: a 300 ms stall does not flap", { timeout: 300_000 }, () => {
  let harness: ClusterHarness;
  after(() => harness?.dispose());

  /** The cluster with one agreed leader, every peer alive, nothing logged for a moment. */
  async function settled(): Promise<{ leaderId: string; term: number }> {
    const leader = await harness.waitForAgreedLeader(ids);
    await harness.waitFor("all peers alive", ids, (all) =>
      all.size === ids.length && [...all.values()].every((s) => s.peers.every((p) => p.state === "alive"))
        ? true
        : undefined,
    );
    await sleep(500);
    return leader;
  }

  /** Waits until every other node heard `target` after `resumedAtMs` (Date.now()): the stall is over for all. */
  async function heardAgain(target: string, resumedAtMs: number): Promise<void> {
    const others = ids.filter((id) => id !== target);
    await harness.waitFor(`${target} heard again`, others, (all) => {
      if (all.size !== others.length) return undefined;
      const nowMs = Date.now();
      return [...all.values()].every((s) => {
        const agoMs = s.peers.find((p) => p.id === target)?.lastHeardMsAgo;
        return typeof agoMs === "number" && nowMs - agoMs > resumedAtMs;
      })
        ? true
        : undefined;
    });
  }

  for (const victim of ["leader", "follower"] as const) {
    it(`stalling the ${victim} for 300 ms changes no peer state, leader or term`, async (t) => {
      harness ??= await ClusterHarness.create({ nodes: 3 });
      if (harness.running().length === 0) harness.startAll();
      const stalls: number[] = [];
      let valid = 0;
      for (let attempt = 1; attempt <= attemptsMax && valid < stallsNeeded; attempt++) {
        const before = await settled();
        const target = victim === "leader" ? before.leaderId : ids.find((id) => id !== before.leaderId)!;
        const counts = new Map(ids.map((id) => [id, transitions(harness, id).length]));
        const stoppedAtMs = performance.now();
        process.kill(harness.pid(target), "SIGSTOP");
        await sleep(stallMs);
        process.kill(harness.pid(target), "SIGCONT");
        const resumedAtMs = Date.now();
        const answered = await harness.status(target, 30_000);
        const seenStallMs = Math.round(performance.now() - stoppedAtMs);
        stalls.push(seenStallMs);
        assert.ok(answered, `${target} answers its API after SIGCONT`);
        await heardAgain(target, resumedAtMs);
        await sleep(200);
        if (seenStallMs > stallMsMax) continue;
        valid += 1;
        const afterStall = await harness.waitForAgreedLeader(ids);
        assert.deepEqual(afterStall, before, `leader and term unchanged (stall of ${seenStallMs} ms)`);
        for (const id of ids) {
          const added = transitions(harness, id).slice(counts.get(id));
          assert.deepEqual(
            added,
            [],
            `${id} logged no suspect/down/leader change (stall of ${seenStallMs} ms):\n${added.join("\n")}`,
          );
        }
      }
      t.diagnostic(`stalls as seen (ms): ${stalls.join(", ")}; ${valid} within ${stallMsMax} ms`);
      // A machine too loaded to stall a node for about 300 ms cannot test the claim: say so, do not fail.
      if (valid < stallsNeeded)
        t.skip(
          `only ${valid} of ${attemptsMax} stalls lasted at most ${stallMsMax} ms (${stalls.join(", ")})`,
        );
    });
  }
});
