// A randomized simulation of service grants (src/core/grants.ts and the runner's rules in
// src/services/service_runner.ts) over a virtual network, in real-time milliseconds: three nodes whose clocks
// run at rates up to 1 % apart, leaders that change (each new one elected only after the old one's lease
// ended, as the election guarantees), the leader moving the service at random, messages delayed, lost, or
// cut for whole seconds between a node and the leader, and timers firing up to 300 ms late. Each node asks
// for a lease of its own between 1 and 2 s (the service's failover_after_ms as its config says; configs may
// disagree), renews five times per lease and stops at its stop budget, as the runner does. The one check:
// no two nodes run the service at overlapping moments of real time.
import {
  clockMarginDefault,
  type FencingToken,
  GrantLedger,
  holderDeadlineMs,
  renewalPeriodMs,
  stopBudgetMs,
} from "../../src/core/grants.ts";
import { Prng } from "../../src/core/prng.ts";
import { EventQueue } from "./event_queue.ts";

const nodes = ["n1", "n2", "n3"] as const;
type NodeId = (typeof nodes)[number];
const service = "web";
/** The ledger's longest lease (the agent's grantLeaseMsDefault). */
const leaseMs = 2000;
const historyMs = 120_000;

interface Leader {
  id: NodeId;
  term: number;
  /** Real time its lease ends: it answers nothing from then on. */
  untilMs: number;
  ledger: GrantLedger;
  assigned: NodeId | null;
}

interface Holder {
  id: NodeId;
  rate: number;
  offsetMs: number;
  /** The lease it asks for. */
  askMs: number;
  /** What the latest table said: the leader to ask, its term, and the owner. */
  table: { leader: NodeId; term: number; owner: NodeId | null };
  running: { sinceMs: number; fence: FencingToken; deadlineLocal: number; leaseMs: number } | null;
  /** Bumped at every stop and fresh acquire, so a late answer to an earlier request changes nothing. */
  generation: number;
}

export interface GrantsHistoryResult {
  seed: string;
  /** Events processed. */
  events: number;
  /** Real-time intervals during which each node ran the service. */
  runs: Array<{ node: NodeId; fromMs: number; toMs: number }>;
  leaderChanges: number;
}

export class GrantsSafetyError extends Error {}

type Event =
  | { kind: "tick"; node: NodeId }
  | {
      kind: "request";
      from: NodeId;
      to: NodeId;
      sentLocal: number;
      generation: number;
      current?: FencingToken;
    }
  | {
      kind: "answer";
      to: NodeId;
      generation: number;
      sentLocal: number;
      fence: FencingToken | null;
      leaseMs: number;
      continueOnly: boolean;
    }
  | { kind: "release"; from: NodeId; to: NodeId; fence: FencingToken }
  | { kind: "elect" }
  /** `again`: schedules the next move (the periodic chain); a one-off move right after an election does not. */
  | { kind: "move"; again: boolean }
  | { kind: "table" }
  | { kind: "table-delivery"; to: NodeId; table: Holder["table"] };

export function runGrantsHistory(seed: string): GrantsHistoryResult {
  const rng = new Prng(seed);
  const queue = new EventQueue<Event>();
  const holders = new Map<NodeId, Holder>();
  for (const id of nodes) {
    holders.set(id, {
      id,
      rate: 0.995 + rng.next() * 0.01,
      offsetMs: rng.next() * 1e6,
      askMs: 50 * rng.intBetween(20, 40),
      table: { leader: "n1", term: 1, owner: null },
      running: null,
      generation: 0,
    });
  }
  const local = (id: NodeId, t: number) => {
    const h = holders.get(id) as Holder;
    return h.offsetMs + t * h.rate;
  };
  /** Real ms for `localMs` of a node's clock to pass, plus event-loop lateness. */
  const after = (id: NodeId, localMs: number) =>
    localMs / (holders.get(id) as Holder).rate + rng.next() * 300 * (rng.chance(0.1) ? 1 : 0.1);
  // A node cut off from the leader (both ways) until this real time.
  const cutUntil = new Map<NodeId, number>();
  const delay = (a: NodeId, b: NodeId, t: number): number | null => {
    if ((cutUntil.get(a) ?? 0) > t || (cutUntil.get(b) ?? 0) > t) return null;
    if (rng.chance(0.02)) return null;
    return rng.chance(0.05) ? rng.next() * 1500 : 0.1 + rng.next() * 5;
  };

  let leader: Leader = newLeader("n1", 1, 0, 0);
  leader.assigned = "n1";
  let leaderChanges = 0;
  let events = 0;
  const runs: GrantsHistoryResult["runs"] = [];

  function newLeader(id: NodeId, term: number, electedAtMs: number, tNow: number): Leader {
    return {
      id,
      term,
      untilMs: electedAtMs + 1_000 + rng.next() * 8_000,
      ledger: new GrantLedger({ term, leaderSinceMs: local(id, tNow), leaseMs }),
      assigned: null,
    };
  }

  const stop = (h: Holder, t: number) => {
    if (h.running === null) return;
    runs.push({ node: h.id, fromMs: h.running.sinceMs, toMs: t });
    const d = delay(h.id, h.table.leader, t);
    if (d !== null)
      queue.push(t + d, { kind: "release", from: h.id, to: h.table.leader, fence: h.running.fence });
    h.running = null;
    h.generation += 1;
  };

  /** A renewal (`current`) or a fresh request to the leader the node's table names, if the network carries it. */
  const request = (h: Holder, t: number, sentLocal: number, current?: FencingToken) => {
    const d = delay(h.id, h.table.leader, t);
    if (d === null) return;
    const generation = h.generation;
    queue.push(t + d, { kind: "request", from: h.id, to: h.table.leader, sentLocal, generation, current });
  };

  for (const id of nodes) queue.push(rng.next() * 500, { kind: "tick", node: id });
  queue.push(0, { kind: "table" });
  queue.push(leader.untilMs, { kind: "elect" });
  queue.push(1000 + rng.next() * 5000, { kind: "move", again: true });

  while (queue.peekUnits() < historyMs) {
    const t = queue.peekUnits();
    const event = queue.pop() as Event;
    events += 1;
    if (event.kind === "tick") {
      const h = holders.get(event.node) as Holder;
      const nowLocal = local(h.id, t);
      // The runner's timer: a renewal period, or the stop budget's start if sooner.
      const untilBudget =
        h.running === null
          ? Number.POSITIVE_INFINITY
          : h.running.deadlineLocal - stopBudgetMs(h.running.leaseMs) - nowLocal;
      queue.push(t + after(h.id, Math.max(0, Math.min(renewalPeriodMs(h.askMs), untilBudget))), {
        kind: "tick",
        node: h.id,
      });
      if (rng.chance(0.03)) cutUntil.set(h.id, t + rng.next() * 4_000);
      if (h.running !== null) {
        if (h.table.owner !== h.id || nowLocal >= h.running.deadlineLocal - stopBudgetMs(h.running.leaseMs)) {
          stop(h, t);
          continue;
        }
        request(h, t, nowLocal, h.running.fence);
      } else if (h.table.owner === h.id) {
        h.generation += 1;
        request(h, t, nowLocal);
      }
    } else if (event.kind === "request") {
      // Only the leader under a valid lease answers (GrantService.answer).
      if (event.to !== leader.id || t >= leader.untilMs) continue;
      const claim = event.current !== undefined && event.current.term < leader.term;
      if (claim && leader.assigned === null) leader.assigned = event.from;
      let fence: FencingToken | null = null;
      let continueOnly = false;
      let grantedMs = 0;
      if (leader.assigned === event.from) {
        const askMs = (holders.get(event.from) as Holder).askMs;
        const answer = leader.ledger.request(service, event.from, local(leader.id, t), event.current, askMs);
        if (answer.ok) {
          fence = answer.grant.fence;
          continueOnly = answer.continueOnly;
          grantedMs = answer.grant.leaseMs;
        }
      }
      const d = delay(leader.id, event.from, t);
      if (d !== null) {
        queue.push(t + d, {
          kind: "answer",
          to: event.from,
          generation: event.generation,
          sentLocal: event.sentLocal,
          fence,
          leaseMs: grantedMs,
          continueOnly,
        });
      }
    } else if (event.kind === "answer") {
      const h = holders.get(event.to) as Holder;
      if (event.generation !== h.generation) continue;
      if (h.running !== null) {
        if (event.fence === null) stop(h, t);
        else
          h.running = {
            ...h.running,
            fence: event.fence,
            deadlineLocal: holderDeadlineMs(event.sentLocal, event.leaseMs, clockMarginDefault),
            leaseMs: event.leaseMs,
          };
      } else if (event.fence !== null && !event.continueOnly && h.table.owner === h.id) {
        const deadlineLocal = holderDeadlineMs(event.sentLocal, event.leaseMs, clockMarginDefault);
        if (local(h.id, t) < deadlineLocal - stopBudgetMs(event.leaseMs))
          h.running = { sinceMs: t, fence: event.fence, deadlineLocal, leaseMs: event.leaseMs };
      }
    } else if (event.kind === "release") {
      if (event.to === leader.id && t < leader.untilMs)
        leader.ledger.released(service, event.from, event.fence, local(leader.id, t));
    } else if (event.kind === "elect") {
      // The next leader is elected only after the old lease ended (the election's guarantee), a while later.
      const electedAt = t + 50 + rng.next() * 800;
      const next = nodes[rng.intBetween(0, nodes.length - 1)] as NodeId;
      const previousOwner: NodeId | null = leader.assigned;
      leader = newLeader(next, leader.term + 1, electedAt, electedAt);
      // Its placement starts from the last table it held (often the previous owner).
      leader.assigned = rng.chance(0.7) ? previousOwner : null;
      leaderChanges += 1;
      queue.push(leader.untilMs, { kind: "elect" });
      queue.push(electedAt, { kind: "table" });
      // Often the new leader moves the service at once: the window in which an old grant is still live.
      if (rng.chance(0.5)) queue.push(electedAt + rng.next() * 1500, { kind: "move", again: false });
    } else if (event.kind === "move") {
      if (event.again) queue.push(t + 1000 + rng.next() * 8000, { kind: "move", again: true });
      if (t < leader.untilMs) {
        const to = nodes[rng.intBetween(0, nodes.length - 1)] as NodeId;
        if (to !== leader.assigned) {
          if (leader.assigned !== null) leader.ledger.revoke(service);
          leader.assigned = to;
        }
        queue.push(t, { kind: "table" });
      }
    } else if (event.kind === "table") {
      // The leader's table, to every node (each may get it late or not at all).
      if (t >= leader.untilMs) continue;
      for (const id of nodes) {
        const d = id === leader.id ? 0 : delay(leader.id, id, t);
        const table = { leader: leader.id, term: leader.term, owner: leader.assigned };
        if (d !== null) queue.push(t + d, { kind: "table-delivery", to: id, table });
      }
      queue.push(t + 2000, { kind: "table" });
    } else if (event.kind === "table-delivery") {
      const h = holders.get(event.to) as Holder;
      if (event.table.term >= h.table.term) h.table = event.table;
      if (h.running !== null && h.table.owner !== h.id) stop(h, t);
    }
  }
  for (const h of holders.values()) stop(h, historyMs);
  checkExclusive(seed, runs);
  return { seed, events, runs, leaderChanges };
}

/** Sorted by start, each run must begin after every other node's earlier runs ended. */
function checkExclusive(seed: string, runs: GrantsHistoryResult["runs"]): void {
  const endByNode = new Map<NodeId, number>();
  for (const run of [...runs].sort((a, b) => a.fromMs - b.fromMs)) {
    for (const [node, endMs] of endByNode) {
      if (node !== run.node && run.fromMs < endMs) {
        throw new GrantsSafetyError(
          `seed ${seed}: ${run.node} started at ${run.fromMs.toFixed(1)} ms while ${node} ran until ${endMs.toFixed(1)} ms`,
        );
      }
    }
    endByNode.set(run.node, Math.max(endByNode.get(run.node) ?? 0, run.toMs));
  }
}
