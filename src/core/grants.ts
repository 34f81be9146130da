// Service grants: the leader's ledger of who may run which service, and the holder's deadline. Pure: every
// time is a millisecond reading of the caller's monotonic clock, passed in.
//
// Safety: two nodes never run one service at overlapping moments of real time.
// - A grant (and every renewal) lasts its `leaseMs`: what the holder asked for (a service's failover_after_ms,
//   so that a lost owner's grant has lapsed by the time placement moves the service), at most the ledger's
//   `leaseMs`, the longest any grant of the cluster lasts. The leader counts it from when it answered, stretched by
//   the clock margin: it lapses on the leader's clock at answeredAtMs + leaseMs × (1 + margin). The holder
//   counts it from when it sent the request, shrunk by the margin: its deadline is
//   requestSentAtMs + leaseMs × (1 − margin). The request left before the answer, so with clock rates less
//   than (1 + margin)/(1 − margin) apart (4 % for the default 2 % margin), the holder's deadline passes in
//   real time before the leader's lapse. A holder stops the service at its deadline unless a renewal came
//   back first.
// - The leader grants a service to a new owner only when the previous grant lapsed on its clock, or its
//   holder reported the service stopped (released). Once it decided to move a service it stops renewing
//   the old grant (revoke), so that grant runs out.
// - A new leader does not know the grants of the ones before (they live in no replicated state: the store's
//   last-write-wins cannot give exclusivity), so for a while after it took over (the inherited window) it
//   gives a service to no new owner. The election bounds that window (src/core/election.ts, "Contacts"):
//   an earlier leader answered grants only within its answer window (leaderLeaseMs: at most its lease, a
//   heartbeat interval and two ticks in the agent) after sending a heartbeat (or vote request) that a
//   quorum acknowledged; that quorum and the one that elected this leader share a voter, which heard that
//   message no later than the last time it heard any leader, and reports how long ago that was in its
//   vote. Its vote also carries the tail that leader advertised in its heartbeats: its answer window plus
//   the longest lease of any grant it may have live (tailMs below), which it never exceeds before a quorum
//   acknowledged a heartbeat advertising it. So every earlier grant has
//   lapsed on this leader's clock by lastLeaderMs + tail × (1 + margin), lastLeaderMs the latest of the
//   voters' reports (each shrunk by the margin) and tail the longest they carry (inheritedUntilMs). Without
//   that (no contacts, or a voter that heard no tail) it is leaderSinceMs + leaseMs × (1 + margin): the old
//   leader's lease ended before this one was elected. While the window is open this leader advertises what
//   is left of it, so a leader after it inherits it too. A holder re-announces its grant
//   at its first renewal after a leader change (a claim); the first claim of a service is adopted, and the
//   answer says so: the holder keeps running under it only if its own grant had not run out meanwhile, and
//   never starts the service under it (a claim may arrive late, from a holder that stopped while another
//   one's newer grant is still live). An adopted grant released in the window frees the service only at the
//   window's end, when every grant of the earlier leaders has lapsed.
// Fencing tokens order grants: (term, sequence), the sequence counting the grants of one term. A renewal
// names the token it renews and keeps it; a request without one is a fresh grant with a new token even for
// the same holder (it stopped what it ran before), so a release of the old token arriving late frees nothing
// (test/sim/grants_swarm.ts found that case); a claimed grant is renewed under a new token of the term.
import type { NodeId, Term } from "./types.ts";

export interface FencingToken {
  term: Term;
  /** Grants issued in this term before this one, plus one. */
  seq: number;
}

/** Negative when `a` is older than `b`, 0 when equal, positive when newer. */
export function compareFence(a: FencingToken, b: FencingToken): number {
  return a.term !== b.term ? a.term - b.term : a.seq - b.seq;
}

export function formatFence(fence: FencingToken): string {
  return `${fence.term}.${fence.seq}`;
}

/** The token formatFence wrote, or null for anything else. */
export function parseFence(text: string): FencingToken | null {
  const match = /^(\d+)\.(\d+)$/.exec(text);
  return match === null ? null : { term: Number(match[1]), seq: Number(match[2]) };
}

export interface Grant {
  service: string;
  owner: NodeId;
  fence: FencingToken;
  /** How long it lasts from the request that obtained it (see the header for each side's count). */
  leaseMs: number;
}

/**
 * Clocks of the nodes may run at rates up to 1 % apart; the margin is twice that. Holder and leader each
 * take the margin on their side, so a holder's lease ends at least leaseMs × 2 % before the leader's.
 */
export const clockMarginDefault = 0.02;

/**
 * A holder asks for a renewal five times per lease, and gives up on an answer after as long; it starts
 * stopping the service when two of those periods are left before its deadline (stopBudgetMs). So it rides out
 * at least 0.38 of a lease without an answer (a 1 s grant: a leader stalled 300 ms), and a stop begun then,
 * late by a stall, still ends before the leader's lapse if stall plus stop take less than 0.44 of a lease
 * (the budget plus both margins).
 */
export function renewalPeriodMs(leaseMs: number): number {
  return leaseMs / 5;
}

/** How much of its grant a holder keeps to stop the service in: it starts stopping with this much left. */
export function stopBudgetMs(leaseMs: number): number {
  return 2 * renewalPeriodMs(leaseMs);
}

/** When the holder must have stopped, on its clock, for a grant it asked for at `requestSentAtMs`. */
export function holderDeadlineMs(
  requestSentAtMs: number,
  leaseMs: number,
  margin = clockMarginDefault,
): number {
  return requestSentAtMs + leaseMs * (1 - margin);
}

/**
 * What one vote that elected a leader said about the leaders before (the leader's own state counts as one):
 * collected by the election's shell, turned into a bound by inheritedBound.
 */
export interface LeaderContact {
  /** On the new leader's clock: when the vote arrived (its own: when it won). */
  atMs: number;
  /** At least this long before, on the voter's clock, it last heard a leader, granted a vote or led. */
  heardMsAgo: number;
  /** The tail (lease + longest grant) the newest leader it heard advertised; null when it heard none. */
  tailMs: number | null;
}

export interface InheritedBound {
  /** On this leader's clock: no earlier leader had a quorum acknowledge a message sent after this. */
  lastLeaderMs: number;
  /** The longest tail any earlier leader may have had a grant live under; null: unknown. */
  tailMs: number | null;
}

/** The bound the votes give (see the header); null without any. */
export function inheritedBound(
  contacts: readonly LeaderContact[],
  margin = clockMarginDefault,
): InheritedBound | null {
  if (contacts.length === 0) return null;
  let lastLeaderMs = Number.NEGATIVE_INFINITY;
  let tailMs: number | null = 0;
  for (const contact of contacts) {
    if (!(contact.heardMsAgo >= 0))
      throw new RangeError(`heardMsAgo must be >= 0, got ${contact.heardMsAgo}`);
    lastLeaderMs = Math.max(lastLeaderMs, contact.atMs - contact.heardMsAgo * (1 - margin));
    tailMs = tailMs === null || contact.tailMs === null ? null : Math.max(tailMs, contact.tailMs);
  }
  return { lastLeaderMs, tailMs };
}

export interface GrantLedgerOptions {
  term: Term;
  /** When this node became leader, on its clock. */
  leaderSinceMs: number;
  /** The longest a grant lasts: what one is given when it asks for no lease, or for a longer one. */
  leaseMs: number;
  margin?: number;
  /** What the votes said about earlier leaders; absent: nothing (the window is a whole lease × margin). */
  inherited?: InheritedBound | null;
  /**
   * How long after sending a heartbeat a quorum acknowledged this leader answers requests (its answer
   * window, at most its election lease; ms). Given, the ledger issues a grant of lease L only once a quorum
   * acknowledged an advertised tail of at least leaderLeaseMs + L (request's acknowledgedTailMs), and
   * tailMs() says what to advertise; absent, it issues without (no later leader then has contacts).
   */
  leaderLeaseMs?: number;
}

export type GrantAnswer =
  /** `continueOnly`: an adopted claim, which keeps a running service going and never starts one. */
  | { ok: true; grant: Grant; continueOnly: boolean }
  /**
   * `retryAtMs`: when asking again can succeed (a lapse), or null when only an event can change it.
   * `tailMs`: not yet: a quorum must first acknowledge a heartbeat advertising this tail (see tailMs()).
   */
  | { ok: false; reason: string; retryAtMs: number | null; tailMs?: number };

interface LedgerEntry {
  grant: Grant;
  /** On the leader's clock: from here on the holder has provably stopped. */
  lapsesAtMs: number;
  /** The leader decided to move the service: this grant is not renewed. */
  revoked: boolean;
  /** Adopted from a claim in the inherited window. */
  adopted: boolean;
}

export class GrantLedger {
  readonly term: Term;
  private readonly leaseMs: number;
  private readonly margin: number;
  /** Until then, a grant of an earlier leader this one never heard of may still be live. */
  readonly inheritedUntilMs: number;
  private readonly leaderLeaseMs: number | null;
  /** The tail to advertise: never less than the window left at leaderSinceMs, nor a grant's need. */
  private tailWantedMs: number;
  private seq = 0;
  private readonly entries = new Map<string, LedgerEntry>();

  constructor(options: GrantLedgerOptions) {
    this.term = options.term;
    this.leaseMs = options.leaseMs;
    this.margin = options.margin ?? clockMarginDefault;
    if (!(this.leaseMs > 0)) throw new RangeError(`leaseMs must be > 0, got ${this.leaseMs}`);
    if (!(this.margin >= 0 && this.margin < 1)) throw new RangeError(`margin must be in [0, 1)`);
    const widest = options.leaderSinceMs + this.leaseMs * (1 + this.margin);
    const inherited = options.inherited ?? null;
    const bounded =
      inherited === null || inherited.tailMs === null
        ? Number.POSITIVE_INFINITY
        : inherited.lastLeaderMs + inherited.tailMs * (1 + this.margin);
    this.inheritedUntilMs = Math.min(widest, bounded);
    this.leaderLeaseMs = options.leaderLeaseMs ?? null;
    if (this.leaderLeaseMs !== null && !(this.leaderLeaseMs > 0)) {
      throw new RangeError(`leaderLeaseMs must be > 0, got ${this.leaderLeaseMs}`);
    }
    // Every heartbeat advertising the tail leaves after leaderSinceMs, and a later leader counts from one.
    this.tailWantedMs = Math.max(0, Math.ceil(this.inheritedUntilMs - options.leaderSinceMs));
    if (this.leaderLeaseMs !== null) this.tailWantedMs = Math.max(this.tailWantedMs, this.leaderLeaseMs);
  }

  /**
   * The tail this leader must advertise in its heartbeats (ms of its clock, never decreasing): its answer
   * window plus the longest lease it was asked to issue, and what is left of its inherited window at its
   * start.
   */
  tailMs(): number {
    return this.tailWantedMs;
  }

  /**
   * `owner` asks for `service`. `current`: the grant it holds for it, if any. None: a fresh grant (a new
   * token even when `owner` held it before: whatever it ran under that one has stopped, so a late release
   * of it cannot free the new one). The current grant: a renewal. A grant of an earlier leader: a claim
   * (see the header). Anything else is stale: refused, the holder must stop. `leaseMs`: how long a fresh
   * or claimed grant lasts (capped at the ledger's); a renewal keeps the grant's own.
   * `acknowledgedTailMs`: the longest tail a quorum acknowledged in this term (with leaderLeaseMs).
   */
  request(
    service: string,
    owner: NodeId,
    nowMs: number,
    current?: FencingToken,
    leaseMs = this.leaseMs,
    acknowledgedTailMs = Number.POSITIVE_INFINITY,
  ): GrantAnswer {
    const entry = this.live(service, nowMs);
    const claim = current !== undefined && current.term < this.term;
    if (entry !== null) {
      if (entry.grant.owner !== owner) {
        return refuse(`${entry.grant.owner} holds it until its grant lapses or it stops`, entry.lapsesAtMs);
      }
      if (entry.revoked) return refuse("moved elsewhere: the grant is not renewed", null);
      // A claim repeated (its first answer lost) renews the grant it was adopted into.
      const renewal =
        current !== undefined && (compareFence(current, entry.grant.fence) === 0 || (claim && entry.adopted));
      if (renewal) {
        // Issued under an acknowledged tail of this term, which only grows: no new advert needed.
        entry.lapsesAtMs = this.lapseAt(nowMs, entry.grant.leaseMs);
        return { ok: true, grant: entry.grant, continueOnly: entry.adopted && nowMs < this.inheritedUntilMs };
      }
      if (current !== undefined) return refuse("renews a grant that is no longer the current one", null);
      return this.issue(service, owner, nowMs, false, leaseMs, acknowledgedTailMs);
    }
    if (current !== undefined && !claim) {
      return refuse(`the grant ${current.term}.${current.seq} is no longer live here: stop`, null);
    }
    const inherited = nowMs < this.inheritedUntilMs;
    if (inherited && !claim)
      return refuse("a grant of the previous leader may still be live", this.inheritedUntilMs);
    return this.issue(service, owner, nowMs, inherited && claim, leaseMs, acknowledgedTailMs);
  }

  private issue(
    service: string,
    owner: NodeId,
    nowMs: number,
    adopted: boolean,
    askedMs: number,
    acknowledgedTailMs: number,
  ): GrantAnswer {
    if (!(askedMs > 0)) throw new RangeError(`a grant's leaseMs must be > 0, got ${askedMs}`);
    const leaseMs = Math.min(askedMs, this.leaseMs);
    if (this.leaderLeaseMs !== null) {
      const tailMs = this.leaderLeaseMs + leaseMs;
      this.tailWantedMs = Math.max(this.tailWantedMs, tailMs);
      if (acknowledgedTailMs < tailMs) {
        const reason = `a quorum has not yet acknowledged a tail of ${tailMs} ms`;
        return { ok: false, reason, retryAtMs: nowMs, tailMs };
      }
    }
    this.seq += 1;
    const grant: Grant = { service, owner, fence: { term: this.term, seq: this.seq }, leaseMs };
    this.entries.set(service, { grant, lapsesAtMs: this.lapseAt(nowMs, leaseMs), revoked: false, adopted });
    return { ok: true, grant, continueOnly: adopted };
  }

  /** Stop renewing `service` (placement moved it): its holder stops at its deadline. */
  revoke(service: string): void {
    const entry = this.entries.get(service);
    if (entry !== undefined) entry.revoked = true;
  }

  /**
   * The holder of `fence` reports the service stopped: it may be granted again at once (an adopted grant:
   * at the end of the inherited window). False when `fence` is not the current grant of `service`.
   */
  released(service: string, owner: NodeId, fence: FencingToken, nowMs: number): boolean {
    const entry = this.live(service, nowMs);
    if (entry === null || entry.grant.owner !== owner || compareFence(entry.grant.fence, fence) !== 0) {
      return false;
    }
    if (entry.adopted && nowMs < this.inheritedUntilMs) {
      entry.lapsesAtMs = this.inheritedUntilMs;
      entry.revoked = true;
    } else {
      this.entries.delete(service);
    }
    return true;
  }

  /** The grant of `service` that may be live now, if any. */
  holder(service: string, nowMs: number): Grant | null {
    return this.live(service, nowMs)?.grant ?? null;
  }

  /** When `service` may next go to a new owner, on this clock: now if nothing holds it. */
  freeAtMs(service: string, nowMs: number): number {
    const entry = this.live(service, nowMs);
    if (entry !== null) return entry.lapsesAtMs;
    return Math.max(nowMs, this.inheritedUntilMs);
  }

  /** Every grant that may be live now. */
  grants(nowMs: number): Grant[] {
    const live: Grant[] = [];
    for (const service of this.entries.keys()) {
      const entry = this.live(service, nowMs);
      if (entry !== null) live.push(entry.grant);
    }
    return live;
  }

  private live(service: string, nowMs: number): LedgerEntry | null {
    const entry = this.entries.get(service);
    if (entry === undefined) return null;
    if (nowMs >= entry.lapsesAtMs) {
      this.entries.delete(service);
      return null;
    }
    return entry;
  }

  private lapseAt(nowMs: number, leaseMs: number): number {
    return nowMs + leaseMs * (1 + this.margin);
  }
}

function refuse(reason: string, retryAtMs: number | null): GrantAnswer {
  return { ok: false, reason, retryAtMs };
}
