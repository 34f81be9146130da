// A deterministic model of the journal's delivery and apply path, around the real applier schedule
// (src/core/journal_lanes.ts): three nodes each record entries (ordering keys from a small set, some without
// a key, one key whose handler always fails); a queue delivers every entry to every other node at least
// once, with random delays (so out of order), duplicate deliveries, redelivery of what was not acknowledged
// and outages; each receiver writes an entry to its durable inbox before it acknowledges it, applies from
// there through JournalLanes, and commits each result (applied or dead letter, with the lane's watermark)
// in one durable step after the handler returned. Receivers are killed at random (everything not durable is
// lost, a handler's result included) and restarted from their durable state.
//
// Checks, the seed printed with any failure:
// 1. Complete: in the end every node applied every other node's entries, except the failing key's, which
//    are dead letters; so a poisoned key held back nothing else.
// 2. Once in effect: no handler starts for an entry already committed as applied (a handler may run again
//    only when a kill fell between its end and the commit; counted as `reruns`).
// 3. In order: a handler starts for an entry of a lane only after every earlier entry of that lane (its
//    origin's, same key) was committed, applied or given up.
import {
  JournalLanes,
  type LaneEntry,
  type LaneWatermark,
  watermarkAfter,
} from "../../src/core/journal_lanes.ts";
import { Prng } from "../../src/core/prng.ts";
import { EventQueue } from "./event_queue.ts";

const nodes = ["n1", "n2", "n3"] as const;
type NodeId = (typeof nodes)[number];
const keys = ["user:ann", "user:bob", "group:ops", "poison", null] as const;
const lanesOptions = { maxAttempts: 4, retryBaseMs: 20, retryMaxMs: 200, concurrency: 3 };
/** A message not acknowledged this long is delivered again. */
const redeliverAfterMs = 300;

export class JournalModelError extends Error {
  override name = "JournalModelError";
}

export interface JournalModelResult {
  seed: string;
  entries: number;
  deliveries: number;
  kills: number;
  /** Handler runs repeated because a kill fell between a handler's end and its commit. */
  reruns: number;
  deadLetters: number;
}

interface Durable {
  inbox: Map<string, LaneEntry>;
  applied: Set<string>;
  dead: Set<string>;
  watermarks: Map<string, LaneWatermark>;
}

interface Receiver {
  id: NodeId;
  boot: number;
  up: boolean;
  durable: Durable;
  lanes: JournalLanes;
}

type Event =
  | { kind: "record"; origin: NodeId }
  | { kind: "deliver"; to: NodeId; entry: LaneEntry }
  | { kind: "redeliver"; to: NodeId; entry: LaneEntry }
  | { kind: "handler-done"; node: NodeId; boot: number; entry: LaneEntry; ok: boolean }
  | { kind: "commit"; node: NodeId; boot: number; entry: LaneEntry; ok: boolean }
  | { kind: "pump"; node: NodeId; boot: number }
  | { kind: "kill"; node: NodeId }
  | { kind: "restart"; node: NodeId }
  | { kind: "outage"; untilMs: number };

const laneKey = (origin: string, key: string) => `${origin}\u0000${key}`;

export function runJournalModel(seed: string): JournalModelResult {
  const rng = new Prng(seed);
  const queue = new EventQueue<Event>();
  const entriesPerOrigin = rng.intBetween(20, 60);
  const recorded: LaneEntry[] = [];
  const keySeqs = new Map<string, number>();
  const recordedCount = new Map<NodeId, number>();
  let outageUntilMs = 0;
  let deliveries = 0;
  let kills = 0;
  let reruns = 0;
  /** Not yet acknowledged by its receiver: `${to}/${id}`. */
  const unacked = new Set<string>();
  /** Handler runs by `${node}/${id}`: a transient failure comes only in the first two, so it heals. */
  const runs = new Map<string, number>();

  const receivers = new Map<NodeId, Receiver>();
  const freshLanes = (durable: Durable): JournalLanes => {
    const lanes = new JournalLanes(lanesOptions);
    lanes.restore(durable.watermarks.values());
    for (const entry of durable.inbox.values()) lanes.offer(entry, 0);
    return lanes;
  };
  for (const id of nodes) {
    const durable: Durable = { inbox: new Map(), applied: new Set(), dead: new Set(), watermarks: new Map() };
    receivers.set(id, { id, boot: 1, up: true, durable, lanes: freshLanes(durable) });
  }

  let now = 0;
  const fail = (what: string): never => {
    throw new JournalModelError(`seed ${seed} at ${now.toFixed(1)} ms: ${what}`);
  };

  for (const origin of nodes) queue.push(rng.next() * 20, { kind: "record", origin });
  for (let i = rng.intBetween(0, 4); i > 0; i--)
    queue.push(rng.next() * 3000, { kind: "kill", node: pick(rng) });
  for (let i = rng.intBetween(0, 2); i > 0; i--)
    queue.push(rng.next() * 3000, { kind: "outage", untilMs: 0 });

  const send = (to: NodeId, entry: LaneEntry, atMs: number) => {
    unacked.add(`${to}/${entry.id}`);
    queue.push(Math.max(atMs, outageUntilMs) + 1 + rng.next() * 40, { kind: "deliver", to, entry });
    queue.push(atMs + redeliverAfterMs, { kind: "redeliver", to, entry });
  };

  const pump = (r: Receiver) => {
    if (!r.up) return;
    for (const entry of r.lanes.due(now)) {
      if (r.durable.applied.has(entry.id)) fail(`${r.id} runs ${entry.id}, applied already`);
      if (entry.key !== null) {
        for (const earlier of recorded) {
          const sameLane = earlier.origin === entry.origin && earlier.key === entry.key;
          if (!sameLane || earlier.keySeq >= entry.keySeq) continue;
          if (!r.durable.applied.has(earlier.id) && !r.durable.dead.has(earlier.id))
            fail(`${r.id} runs ${entry.id} (keySeq ${entry.keySeq}) before ${earlier.id} settled`);
        }
      }
      const run = (runs.get(`${r.id}/${entry.id}`) ?? 0) + 1;
      runs.set(`${r.id}/${entry.id}`, run);
      const ok = entry.key !== "poison" && (run > 2 || !rng.chance(0.3));
      queue.push(now + 1 + rng.next() * 30, { kind: "handler-done", node: r.id, boot: r.boot, entry, ok });
    }
    const retryAt = r.lanes.nextRetryAtMs();
    if (retryAt !== null) queue.push(Math.max(now, retryAt), { kind: "pump", node: r.id, boot: r.boot });
  };

  while (queue.peekUnits() < 60_000) {
    now = queue.peekUnits();
    const event = queue.pop() as Event;
    if (event.kind === "record") {
      const count = (recordedCount.get(event.origin) ?? 0) + 1;
      recordedCount.set(event.origin, count);
      const key = keys[rng.intBetween(0, keys.length - 1)] ?? null;
      const keySeq = key === null ? 0 : (keySeqs.get(laneKey(event.origin, key)) ?? 0) + 1;
      if (key !== null) keySeqs.set(laneKey(event.origin, key), keySeq);
      const entry: LaneEntry = { id: `${event.origin}-${count}`, origin: event.origin, key, keySeq };
      recorded.push(entry);
      for (const to of nodes) if (to !== event.origin) send(to, entry, now);
      if (count < entriesPerOrigin) queue.push(now + rng.next() * 40, event);
    } else if (event.kind === "deliver") {
      deliveries += 1;
      const r = receivers.get(event.to) as Receiver;
      if (!r.up) continue;
      const { id } = event.entry;
      const known = r.durable.applied.has(id) || r.durable.dead.has(id) || r.durable.inbox.has(id);
      if (!known) {
        r.durable.inbox.set(id, event.entry);
        r.lanes.offer(event.entry, now);
      }
      // Acknowledged once durable; the acknowledgement itself may be lost (a redelivery follows).
      if (!rng.chance(0.1)) unacked.delete(`${event.to}/${id}`);
      // A duplicate delivery now and then, as a queue may.
      if (rng.chance(0.05))
        queue.push(now + rng.next() * 100, { kind: "deliver", to: event.to, entry: event.entry });
      pump(r);
    } else if (event.kind === "redeliver") {
      if (unacked.has(`${event.to}/${event.entry.id}`)) send(event.to, event.entry, now);
    } else if (event.kind === "handler-done") {
      const r = receivers.get(event.node) as Receiver;
      if (!r.up || r.boot !== event.boot) continue;
      // The handler's effect happened; its commit is a separate step a kill may fall before.
      queue.push(now + rng.next() * 2, { ...event, kind: "commit" });
    } else if (event.kind === "commit") {
      const r = receivers.get(event.node) as Receiver;
      if (!r.up || r.boot !== event.boot) {
        if (event.ok) reruns += 1;
        continue;
      }
      // The applier's order: the result stored first, then the lanes told (so the lane moves on only then).
      const outcome = r.lanes.outcomeOf(event.entry.id, event.ok);
      if (outcome.kind !== "retry") {
        const { durable } = r;
        durable.inbox.delete(event.entry.id);
        (outcome.kind === "applied" ? durable.applied : durable.dead).add(event.entry.id);
        const watermark = watermarkAfter(event.entry);
        if (watermark !== null) durable.watermarks.set(laneKey(watermark.origin, watermark.key), watermark);
      }
      r.lanes.finished(event.entry.id, event.ok, now);
      pump(r);
    } else if (event.kind === "pump") {
      const r = receivers.get(event.node) as Receiver;
      if (r.up && r.boot === event.boot) pump(r);
    } else if (event.kind === "kill") {
      const r = receivers.get(event.node) as Receiver;
      if (!r.up) continue;
      kills += 1;
      r.up = false;
      queue.push(now + 50 + rng.next() * 500, { kind: "restart", node: event.node });
    } else if (event.kind === "restart") {
      const r = receivers.get(event.node) as Receiver;
      r.up = true;
      r.boot += 1;
      r.lanes = freshLanes(r.durable);
      pump(r);
    } else {
      outageUntilMs = now + rng.next() * 1000;
    }
  }

  let deadLetters = 0;
  for (const r of receivers.values()) {
    if (!r.up) fail(`${r.id} still down at the end`);
    for (const entry of recorded) {
      if (entry.origin === r.id) continue;
      const poisoned = entry.key === "poison";
      if (poisoned && !r.durable.dead.has(entry.id)) fail(`${r.id}: ${entry.id} (poison) not a dead letter`);
      if (!poisoned && !r.durable.applied.has(entry.id)) fail(`${r.id}: ${entry.id} never applied`);
    }
    deadLetters += r.durable.dead.size;
  }
  return { seed, entries: recorded.length, deliveries, kills, reruns, deadLetters };

  function pick(r: Prng): NodeId {
    return nodes[r.intBetween(0, nodes.length - 1)] as NodeId;
  }
}
