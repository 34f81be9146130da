// A randomized simulation of service grants (src/core/grants.ts and the runner's rules in
// src/services/service_runner.ts) over a virtual network, in real-time milliseconds: three nodes whose clocks
// run at rates up to 1 % apart, messages delayed, lost, or cut for whole seconds between a node and the
// others, and timers firing up to 300 ms late. Each node asks for a lease of its own between 1 and 2 s (the
// service's failover_after_ms as its config says; configs may disagree), renews five times per lease and
// stops at its stop budget, as the runner does. The leader moves the service at random.
// Leaders change as the election makes them (src/core/election.ts, modelled, not run): the leader is cut off
// (its machine sometimes crashes with it: services down, memory gone) and answers grants only within its
// answer window (a heartbeat sent less than answerWindowMs ago answered by a voter; its lease holds longer,
// and it steps down when that ends); a node campaigns once neither it nor
// its voter heard a leader for an election timeout; the vote carries the voter's contacts (how long since it
// heard a leader, the tail it advertised) and the new leader's ledger bounds its inherited window with
// them; heartbeats advertise the ledger's tail and the ledger issues only under an acknowledged one.
// The one check: no two nodes run the service at overlapping moments of real time.
import {
  clockMarginDefault,
  type FencingToken,
  GrantLedger,
  holderDeadlineMs,
  inheritedBound,
  type LeaderContact,
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
/** The lan election: lease, election timeout, leader heartbeat (src/config/timings.ts). */
const electionLeaseMs = 550;
/** cluster.ts grantAnswerWindowTicks (lan: 4 + 2 ticks of 50 ms): grants answered within it of a heartbeat. */
const answerWindowMs = 300;
const electionTimeoutMs = 700;
const heartbeatMs = 200;
const historyMs = 120_000;

interface Leader {
  id: NodeId;
  term: number;
  ledger: GrantLedger;
  assigned: NodeId | null;
  /** Per voter, the send time (leader's clock) of the newest heartbeat or vote request it answered. */
  ackedSendLocal: Map<NodeId, number>;
  /** Per voter, the largest tail it acknowledged. */
  ackedTailMs: Map<NodeId, number>;
  /** Crashed, or stepped down: sends and answers nothing more. */
  done: boolean;
}

/** What a node's election core remembers (Contacts): lost with a crash. */
interface Voter {
  term: number;
  lastLeaderLocal: number;
  heardTail: { term: number; ms: number | null } | null;
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
  /** A crashed machine: nothing runs until then. */
  downUntilMs: number;
  /** Its drivers are stopping until then: the runner asks for nothing new meanwhile. */
  stoppingUntilMs: number;
}

export interface GrantsHistoryResult {
  seed: string;
  /** Events processed. */
  events: number;
  /** Real-time intervals during which each node ran the service. */
  runs: Array<{ node: NodeId; fromMs: number; toMs: number }>;
  leaderChanges: number;
  /** New leaders whose inherited window their votes bounded (the rest: the widest). */
  boundedWindows: number;
  /** The longest time a leader change left the service with no new owner possible (inherited window), ms. */
  windowMsMax: number;
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
  /** `once`: a round asked for now (GrantService.freshen), not the periodic one. */
  | { kind: "heartbeat-timer"; leader: Leader; once?: boolean }
  | { kind: "heartbeat"; leader: Leader; to: NodeId; sentLocal: number; tailMs: number }
  | { kind: "heartbeat-ack"; leader: Leader; from: NodeId; sentLocal: number; tailMs: number }
  | { kind: "cut" }
  /** `against`: the leader it replaces; once another one is elected the campaign is over. */
  | { kind: "campaign"; node: NodeId; against: Leader }
  | { kind: "vote"; from: NodeId; to: NodeId; term: number; sentLocal: number }
  | {
      kind: "vote-granted";
      to: NodeId;
      from: NodeId;
      term: number;
      sentLocal: number;
      contact: LeaderContact;
    }
  /** `again`: schedules the next move (the periodic chain); a one-off move right after an election does not. */
  | { kind: "move"; again: boolean }
  | { kind: "table"; leader: Leader }
  | { kind: "table-delivery"; to: NodeId; table: Holder["table"] };

export function runGrantsHistory(seed: string): GrantsHistoryResult {
  const rng = new Prng(seed);
  const queue = new EventQueue<Event>();
  const holders = new Map<NodeId, Holder>();
  const voters = new Map<NodeId, Voter>();
  for (const id of nodes) {
    holders.set(id, {
      id,
      rate: 0.995 + rng.next() * 0.01,
      offsetMs: rng.next() * 1e6,
      askMs: 50 * rng.intBetween(20, 40),
      table: { leader: "n1", term: 1, owner: null },
      running: null,
      generation: 0,
      downUntilMs: 0,
      stoppingUntilMs: 0,
    });
  }
  const local = (id: NodeId, t: number) => {
    const h = holders.get(id) as Holder;
    return h.offsetMs + t * h.rate;
  };
  for (const id of nodes) voters.set(id, { term: 1, lastLeaderLocal: local(id, 0), heardTail: null });
  /** Real ms for `localMs` of a node's clock to pass, plus event-loop lateness. */
  const after = (id: NodeId, localMs: number) =>
    localMs / (holders.get(id) as Holder).rate + rng.next() * 300 * (rng.chance(0.1) ? 1 : 0.1);
  // A node cut off from the others (both ways) until this real time.
  const cutUntil = new Map<NodeId, number>();
  const delay = (a: NodeId, b: NodeId, t: number): number | null => {
    if (a === b) return 0;
    if ((cutUntil.get(a) ?? 0) > t || (cutUntil.get(b) ?? 0) > t) return null;
    if (rng.chance(0.02)) return null;
    return rng.chance(0.05) ? rng.next() * 1500 : 0.1 + rng.next() * 5;
  };

  /** The node's current leader role, if any. */
  const leading = new Map<NodeId, Leader>();
  let leaderChanges = 0;
  let boundedWindows = 0;
  let windowMsMax = 0;
  let events = 0;
  let newest: Leader = newLeader("n1", 1, 0, null);
  newest.assigned = "n1";
  for (const id of nodes) if (id !== "n1") newest.ackedSendLocal.set(id, local("n1", 0));
  const runs: GrantsHistoryResult["runs"] = [];

  function newLeader(id: NodeId, term: number, t: number, contacts: LeaderContact[] | null): Leader {
    const leader: Leader = {
      id,
      term,
      ledger: new GrantLedger({
        term,
        leaderSinceMs: local(id, t),
        leaseMs,
        inherited: contacts === null ? null : inheritedBound(contacts, clockMarginDefault),
        leaderLeaseMs: answerWindowMs,
      }),
      assigned: null,
      ackedSendLocal: new Map(),
      ackedTailMs: new Map(),
      done: false,
    };
    leading.get(id)?.ledger; // an older role of this node is over
    const older = leading.get(id);
    if (older) older.done = true;
    leading.set(id, leader);
    windowMsMax = Math.max(windowMsMax, leader.ledger.inheritedUntilMs - local(id, t));
    queue.push(t, { kind: "heartbeat-timer", leader });
    queue.push(t, { kind: "table", leader });
    return leader;
  }

  /** Under its lease: a voter answered a heartbeat (or vote request) sent less than the lease ago. */
  const leaseValid = (leader: Leader, t: number): boolean => {
    if (leader.done) return false;
    const now = local(leader.id, t);
    let newestSend = Number.NEGATIVE_INFINITY;
    for (const sent of leader.ackedSendLocal.values()) newestSend = Math.max(newestSend, sent);
    if (now < newestSend + electionLeaseMs) return true;
    // checkQuorum: it steps down, and from then on is a follower that heard itself last.
    leader.done = true;
    const voter = voters.get(leader.id) as Voter;
    voter.lastLeaderLocal = now;
    voter.heardTail = { term: leader.term, ms: leader.ledger.tailMs() };
    return false;
  };

  /** GrantService: a grant is answered only within the answer window of an acknowledged heartbeat. */
  const fresh = (leader: Leader, t: number): boolean => {
    let newestSend = Number.NEGATIVE_INFINITY;
    for (const sent of leader.ackedSendLocal.values()) newestSend = Math.max(newestSend, sent);
    return local(leader.id, t) < newestSend + answerWindowMs;
  };

  /** GrantService: with the ledger's acknowledged tail (a quorum: itself and the best voter). */
  const acknowledgedTail = (leader: Leader): number => {
    let best = Number.NEGATIVE_INFINITY;
    for (const ms of leader.ackedTailMs.values()) best = Math.max(best, ms);
    return Math.min(best, leader.ledger.tailMs());
  };

  /**
   * The holder stops: its drivers take any time up to its deadline (often all of it, the worst the runner
   * allows), and the release leaves once they are done. A crashed machine stops at once, releasing nothing.
   */
  const stop = (h: Holder, t: number, crashed = false) => {
    if (h.running === null) return;
    const leftMs = Math.max(0, (h.running.deadlineLocal - local(h.id, t)) / h.rate);
    const endMs = crashed ? t : t + (rng.chance(0.5) ? leftMs : rng.next() * leftMs);
    runs.push({ node: h.id, fromMs: h.running.sinceMs, toMs: endMs });
    h.stoppingUntilMs = endMs;
    const d = delay(h.id, h.table.leader, t);
    if (d !== null && !crashed)
      queue.push(endMs + d, { kind: "release", from: h.id, to: h.table.leader, fence: h.running.fence });
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

  /** Honours a lease: heard a leader (or voted, or led) less than an election timeout ago. */
  const inLeaseWindow = (id: NodeId, t: number): boolean =>
    leading.get(id)?.done === false ||
    local(id, t) < (voters.get(id) as Voter).lastLeaderLocal + electionTimeoutMs;

  for (const id of nodes) queue.push(rng.next() * 500, { kind: "tick", node: id });
  queue.push(1_000 + rng.next() * 8_000, { kind: "cut" });
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
      if (t < h.downUntilMs) continue;
      if (rng.chance(0.03)) cutUntil.set(h.id, Math.max(cutUntil.get(h.id) ?? 0, t + rng.next() * 4_000));
      if (h.running !== null) {
        if (h.table.owner !== h.id || nowLocal >= h.running.deadlineLocal - stopBudgetMs(h.running.leaseMs)) {
          stop(h, t);
          continue;
        }
        request(h, t, nowLocal, h.running.fence);
      } else if (h.table.owner === h.id && t >= h.stoppingUntilMs) {
        h.generation += 1;
        request(h, t, nowLocal);
      }
    } else if (event.kind === "request") {
      // Only a leader under a valid lease answers (GrantService.answer).
      const leader = leading.get(event.to);
      if (leader === undefined || !leaseValid(leader, t)) continue;
      // Stale: a heartbeat round now, and "unavailable" (the asker tries again, a holder keeps its grant).
      if (!fresh(leader, t)) {
        queue.push(t, { kind: "heartbeat-timer", leader, once: true });
        continue;
      }
      const claim = event.current !== undefined && event.current.term < leader.term;
      if (claim && leader.assigned === null) leader.assigned = event.from;
      let fence: FencingToken | null = null;
      let continueOnly = false;
      let grantedMs = 0;
      if (leader.assigned === event.from) {
        const askMs = (holders.get(event.from) as Holder).askMs;
        const nowLocal = local(leader.id, t);
        const acknowledged = acknowledgedTail(leader);
        const answer = leader.ledger.request(
          service,
          event.from,
          nowLocal,
          event.current,
          askMs,
          acknowledged,
        );
        // Not yet acknowledged: "unavailable", which a holder answers by keeping what it holds.
        if (!answer.ok && answer.tailMs !== undefined) continue;
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
      if (event.generation !== h.generation || t < h.downUntilMs) continue;
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
      const leader = leading.get(event.to);
      if (leader !== undefined && leaseValid(leader, t))
        leader.ledger.released(service, event.from, event.fence, local(leader.id, t));
    } else if (event.kind === "heartbeat-timer") {
      const leader = event.leader;
      if (!leaseValid(leader, t)) continue;
      const sentLocal = local(leader.id, t);
      const tailMs = leader.ledger.tailMs();
      for (const to of nodes) {
        const d = to === leader.id ? null : delay(leader.id, to, t);
        if (d !== null) queue.push(t + d, { kind: "heartbeat", leader, to, sentLocal, tailMs });
      }
      if (event.once !== true)
        queue.push(t + after(leader.id, heartbeatMs), { kind: "heartbeat-timer", leader });
    } else if (event.kind === "heartbeat") {
      const voter = voters.get(event.to) as Voter;
      if (t < (holders.get(event.to) as Holder).downUntilMs || event.leader.term < voter.term) continue;
      const older = leading.get(event.to);
      if (older !== undefined && older.term < event.leader.term) older.done = true;
      voter.term = event.leader.term;
      voter.lastLeaderLocal = local(event.to, t);
      const heard = voter.heardTail;
      if (heard === null || heard.term < voter.term) voter.heardTail = { term: voter.term, ms: event.tailMs };
      else voter.heardTail = { term: voter.term, ms: Math.max(heard.ms ?? 0, event.tailMs) };
      const d = delay(event.to, event.leader.id, t);
      if (d !== null) {
        const ack = {
          leader: event.leader,
          from: event.to,
          sentLocal: event.sentLocal,
          tailMs: event.tailMs,
        };
        queue.push(t + d, { kind: "heartbeat-ack", ...ack });
      }
    } else if (event.kind === "heartbeat-ack") {
      const leader = event.leader;
      if (leader.done) continue;
      const sent = leader.ackedSendLocal.get(event.from) ?? Number.NEGATIVE_INFINITY;
      leader.ackedSendLocal.set(event.from, Math.max(sent, event.sentLocal));
      const tail = leader.ackedTailMs.get(event.from) ?? Number.NEGATIVE_INFINITY;
      leader.ackedTailMs.set(event.from, Math.max(tail, event.tailMs));
    } else if (event.kind === "cut") {
      // The newest leader loses the others for a while; sometimes its machine crashes with it.
      const old = newest;
      const backAt = t + 1_000 + rng.next() * 4_000;
      cutUntil.set(old.id, Math.max(cutUntil.get(old.id) ?? 0, backAt));
      if (rng.chance(0.3)) {
        const h = holders.get(old.id) as Holder;
        stop(h, t, true);
        h.downUntilMs = backAt;
        h.table = { ...h.table, owner: null };
        old.done = true;
        // It restarts with what a fresh core knows: nothing heard since its start.
        voters.set(old.id, {
          term: (voters.get(old.id) as Voter).term,
          lastLeaderLocal: local(old.id, backAt),
          heardTail: null,
        });
      }
      for (const id of nodes) if (id !== old.id) queue.push(t, { kind: "campaign", node: id, against: old });
    } else if (event.kind === "campaign") {
      // Followers campaign once they and a voter left every lease window (pre-vote and check-quorum): the
      // voters' windows alone keep a new leader from being elected under the old one's lease.
      const candidate = event.node;
      if (newest !== event.against) continue;
      // Its vote request reaches either other node (the old leader too, once it is back).
      const others = nodes.filter((id) => id !== candidate);
      const voter = others[rng.intBetween(0, others.length - 1)] as NodeId;
      if (newest.id === candidate || t < (holders.get(candidate) as Holder).downUntilMs) continue;
      if (inLeaseWindow(candidate, t) || leading.get(voter)?.done === false) {
        queue.push(t + after(candidate, 50), { ...event });
        continue;
      }
      const term = Math.max(newest.term, (voters.get(candidate) as Voter).term) + 1;
      // It votes for itself: a vote request of the same term from the other candidate is refused.
      (voters.get(candidate) as Voter).term = term;
      const d = delay(candidate, voter, t);
      const sentLocal = local(candidate, t);
      if (d !== null) queue.push(t + d, { kind: "vote", from: candidate, to: voter, term, sentLocal });
      queue.push(t + after(candidate, electionTimeoutMs), { ...event });
    } else if (event.kind === "vote") {
      const voter = voters.get(event.to) as Voter;
      if (t < (holders.get(event.to) as Holder).downUntilMs || event.term <= voter.term) continue;
      if (inLeaseWindow(event.to, t)) continue;
      const now = local(event.to, t);
      const contact: LeaderContact = {
        atMs: 0,
        heardMsAgo: now - voter.lastLeaderLocal,
        tailMs: voter.heardTail?.ms ?? null,
      };
      voter.term = event.term;
      voter.lastLeaderLocal = now;
      const d = delay(event.to, event.from, t);
      if (d !== null)
        queue.push(t + d, {
          kind: "vote-granted",
          to: event.from,
          from: event.to,
          term: event.term,
          sentLocal: event.sentLocal,
          contact,
        });
    } else if (event.kind === "vote-granted") {
      const me = voters.get(event.to) as Voter;
      if (
        t < (holders.get(event.to) as Holder).downUntilMs ||
        me.term > event.term ||
        newest.term >= event.term
      )
        continue;
      if (inLeaseWindow(event.to, t)) continue;
      const now = local(event.to, t);
      const own: LeaderContact = {
        atMs: now,
        heardMsAgo: now - me.lastLeaderLocal,
        tailMs: me.heardTail?.ms ?? null,
      };
      const contacts = [own, { ...event.contact, atMs: now }];
      me.term = event.term;
      me.lastLeaderLocal = now;
      const previousOwner: NodeId | null = newest.assigned;
      newest = newLeader(event.to, event.term, t, contacts);
      if (contacts.every((c) => c.tailMs !== null)) boundedWindows += 1;
      // The first lease dates from the vote request the voter answered.
      newest.ackedSendLocal.set(event.from, event.sentLocal);
      // Its placement starts from the last table it held (often the previous owner).
      newest.assigned = rng.chance(0.7) ? previousOwner : null;
      leaderChanges += 1;
      queue.push(t + 1_000 + rng.next() * 8_000, { kind: "cut" });
      // Often the new leader moves the service at once: the window in which an old grant is still live.
      if (rng.chance(0.5)) queue.push(t + rng.next() * 1500, { kind: "move", again: false });
    } else if (event.kind === "move") {
      if (event.again) queue.push(t + 1000 + rng.next() * 8000, { kind: "move", again: true });
      if (leaseValid(newest, t)) {
        const to = nodes[rng.intBetween(0, nodes.length - 1)] as NodeId;
        if (to !== newest.assigned) {
          if (newest.assigned !== null) newest.ledger.revoke(service);
          newest.assigned = to;
        }
        queue.push(t, { kind: "table", leader: newest });
      }
    } else if (event.kind === "table") {
      // The leader's table, to every node (each may get it late or not at all).
      const leader = event.leader;
      if (!leaseValid(leader, t)) continue;
      for (const id of nodes) {
        const d = delay(leader.id, id, t);
        const table = { leader: leader.id, term: leader.term, owner: leader.assigned };
        if (d !== null) queue.push(t + d, { kind: "table-delivery", to: id, table });
      }
      queue.push(t + 2000, { kind: "table", leader });
    } else if (event.kind === "table-delivery") {
      const h = holders.get(event.to) as Holder;
      if (t < h.downUntilMs) continue;
      if (event.table.term >= h.table.term) h.table = event.table;
      if (h.running !== null && h.table.owner !== h.id) stop(h, t);
    }
  }
  for (const h of holders.values()) stop(h, historyMs, true);
  checkExclusive(seed, runs);
  return { seed, events, runs, leaderChanges, boundedWindows, windowMsMax };
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
