// An idle 3-node cluster of replicators on virtual time: each node's ticker (the agent's one timer) runs
// on a clock the test moves, and its timer fires are counted. Messages and flushes still take real event
// loop turns, which cost no virtual time. What is asserted is behaviour (how often the replicator asks to
// be woken while it has nothing to do), not CPU.
import assert from "node:assert/strict";
import { test } from "node:test";
import pino from "pino";
import type { NodeId } from "../../../src/core/types.ts";
import { Ticker, type TickerTimers } from "../../../src/shell/index.ts";
import { Replicator } from "../../../src/store/replicator.ts";
import { SqliteLocalStore } from "../../../src/store/sqlite_store.ts";
import { MemoryNetwork } from "../../support/memory_mesh.ts";

const encoder = new TextEncoder();

/** One virtual clock; each node's ticker arms one timer at a time on it. */
class VirtualTimers {
  nowMs = 0;
  private readonly armed = new Map<NodeId, { callback: () => void; dueMs: number }>();
  readonly fires = new Map<NodeId, number>();

  timersOf(id: NodeId): TickerTimers {
    return {
      setTimeout: (callback, delayMs) => {
        const timer = { callback, dueMs: this.nowMs + delayMs };
        this.armed.set(id, timer);
        return timer;
      },
      clearTimeout: (handle) => {
        if (this.armed.get(id) === handle) this.armed.delete(id);
      },
    };
  }

  /** Fires every timer due up to `untilMs`, in order, letting messages and flushes settle after each. */
  async runUntil(untilMs: number): Promise<void> {
    for (;;) {
      const next = [...this.armed].sort(([, a], [, b]) => a.dueMs - b.dueMs)[0];
      if (next === undefined || next[1].dueMs > untilMs) break;
      const [id, timer] = next;
      this.armed.delete(id);
      this.nowMs = timer.dueMs;
      this.fires.set(id, (this.fires.get(id) ?? 0) + 1);
      timer.callback();
      await settle();
    }
    this.nowMs = untilMs;
  }
}

/** Enough event loop turns for a round (since, changes, pull, entries, flush) to finish. */
async function settle(): Promise<void> {
  for (let i = 0; i < 30; i++) await new Promise((resolve) => setImmediate(resolve));
}

test("replicator: idle, it sleeps until its next anti-entropy round instead of waking every tick", async (t) => {
  const ids = ["n1", "n2", "n3"];
  const time = new VirtualTimers();
  const network = new MemoryNetwork();
  const rounds = new Map<NodeId, number>();
  const nodes = ids.map((id) => {
    const logger = pino(
      { level: "debug" },
      {
        write: (line: string) => {
          if (JSON.parse(line).msg === "store round-completed") rounds.set(id, (rounds.get(id) ?? 0) + 1);
        },
      },
    );
    const store = SqliteLocalStore.open({ path: ":memory:", nodeId: id, valueBytesMax: 1024 });
    const replicator = new Replicator({
      selfId: id,
      peers: ids.filter((p) => p !== id),
      readOnly: false,
      store,
      mesh: network.join(id),
      logger,
      writeTimeoutMs: 2_000,
      antiEntropyIntervalMs: 5_000,
      valueBytesMax: 1024,
      ticker: new Ticker({ now: () => time.nowMs, timers: time.timersOf(id) }),
    });
    replicator.start();
    return { replicator, store };
  });
  t.after(() => {
    network.close();
    for (const { replicator, store } of nodes) {
      replicator.stop();
      store.close();
    }
  });
  network.connectAll();
  await nodes[0]!.replicator.write([{ path: "a", value: encoder.encode("1") }], { minAcks: "all" });
  await time.runUntil(10_000);
  time.fires.clear();
  rounds.clear();
  const idleMs = 60_000;
  await time.runUntil(10_000 + idleMs);
  const perSecond = ids.map((id) => ((time.fires.get(id) ?? 0) / (idleMs / 1000)).toFixed(2));
  t.diagnostic(`wake-ups per second while idle (n1, n2, n3): ${perSecond.join(", ")}`);
  for (const id of ids) {
    // Its rounds still run: one every 5 s.
    assert.ok((rounds.get(id) ?? 0) >= 10, `${id} completed ${rounds.get(id) ?? 0} rounds`);
    // A wake-up per round and few more; waking every 250 ms tick would be 240.
    assert.ok((time.fires.get(id) ?? 0) <= 30, `${id} woke ${time.fires.get(id)} times in a minute`);
  }
});
