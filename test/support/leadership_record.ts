// Election safety seen from outside: every round of statuses read together, and every role change the agents
// logged, checked for two lease-holding leaders at once and for two leaders of one term, whatever each node
// believes. Used by the membership tests, where nodes disagree about who is in the cluster.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";

/** The part of GET /api/v1/status these checks read. */
export interface LeadershipView {
  role: string;
  leaseValid: boolean;
  term: number;
  leaderId: string | null;
}

export type StatusRound = ReadonlyMap<string, LeadershipView>;

export class LeadershipRecord {
  private readonly leaderOfTerm = new Map<number, string>();
  /** Rounds recorded (a round may miss nodes that did not answer in time). */
  rounds = 0;

  /** Records one round of statuses read at once; throws on a violation. */
  add(round: StatusRound): void {
    const holding = [...round].filter(([, s]) => s.role === "leader" && s.leaseValid).map(([id]) => id);
    assert.ok(holding.length <= 1, `leaders with valid leases at once: ${describeRound(round)}`);
    for (const [id, status] of round) {
      if (status.role === "leader") this.leaderIn(status.term, id, "status");
    }
    this.rounds += 1;
  }

  /** Leaders logged as `became leader`, from every node's pino lines; throws on two leaders of one term. */
  addLogged(linesById: ReadonlyMap<string, readonly string[]>): void {
    for (const [id, lines] of linesById) {
      for (const change of roleChanges(lines))
        if (change.role === "leader") this.leaderIn(change.term, id, "log");
    }
  }

  /** Every leader seen so far, by term. */
  leaders(): ReadonlyMap<number, string> {
    return this.leaderOfTerm;
  }

  private leaderIn(term: number, id: string, source: string): void {
    const known = this.leaderOfTerm.get(term);
    assert.ok(
      known === undefined || known === id,
      `two leaders in term ${term} (${source}): ${known} and ${id}`,
    );
    this.leaderOfTerm.set(term, id);
  }
}

export function describeRound(round: StatusRound): string {
  return [...round]
    .map(([id, s]) => `${id}: ${s.role}${s.leaseValid ? " (lease)" : ""} term=${s.term} leader=${s.leaderId}`)
    .join(", ");
}

export interface RoleChange {
  atMs: number;
  role: string;
  term: number;
}

/** The `became <role>` lines of one node's log, in order. */
export function roleChanges(lines: readonly string[]): RoleChange[] {
  return lines.flatMap((line) => {
    let record: { time?: number; msg?: string; term?: number };
    try {
      record = JSON.parse(line) as typeof record;
    } catch {
      return [];
    }
    const role = record.msg?.match(/^became (\S+)$/)?.[1];
    return role && record.time !== undefined && record.term !== undefined
      ? [{ atMs: record.time, role, term: record.term }]
      : [];
  });
}

/**
 * Tenures from the logs of nodes that all ran until now (no kill: a killed leader's tenure has no logged
 * end) never overlap: a leader logs its step-down before any other node logs its election. Both times come
 * from one machine's clock; equal milliseconds count as ordered.
 */
export function assertLoggedTenuresDisjoint(linesById: ReadonlyMap<string, readonly string[]>): void {
  const tenures = [...linesById].flatMap(([id, lines]) => {
    const changes = roleChanges(lines);
    return changes.flatMap((change, index) =>
      change.role === "leader"
        ? [{ id, term: change.term, fromMs: change.atMs, toMs: changes[index + 1]?.atMs ?? Infinity }]
        : [],
    );
  });
  for (const a of tenures) {
    for (const b of tenures) {
      if (a.id === b.id) continue;
      const overlap = a.fromMs < b.toMs && b.fromMs < a.toMs;
      assert.ok(!overlap, `${a.id} (term ${a.term}) and ${b.id} (term ${b.term}) led at once per their logs`);
    }
  }
}

export interface WatchOptions {
  /** Both bounds must be met: on a loaded machine fewer rounds fit in the time, so the watch runs longer. */
  durationMs: number;
  roundsMin: number;
  /** Reads one round; nodes that did not answer in time are left out. */
  read: () => Promise<StatusRound>;
  /** Nodes a round must hold to count. */
  expected: readonly string[];
  /** Checked on every full round, after the record's own checks. */
  check?: (round: StatusRound) => void;
  pollIntervalMs?: number;
  /** A node silent this long has stopped serving its API: fail instead of waiting forever. */
  silenceMsMax?: number;
}

/** Reads rounds into `record` until both bounds are met; throws on a violation or a lasting silence. */
export async function watchLeadership(record: LeadershipRecord, options: WatchOptions): Promise<number> {
  const until = Date.now() + options.durationMs;
  const silenceMsMax = options.silenceMsMax ?? 30_000;
  let full = 0;
  let answeredAtMs = Date.now();
  while (Date.now() < until || full < options.roundsMin) {
    const round = await options.read();
    record.add(round);
    if (options.expected.every((id) => round.has(id))) {
      answeredAtMs = Date.now();
      options.check?.(round);
      full += 1;
    } else {
      assert.ok(Date.now() - answeredAtMs < silenceMsMax, `no full round for ${silenceMsMax} ms`);
    }
    await sleep(options.pollIntervalMs ?? 50);
  }
  return full;
}

/** Reads rounds into `record` in the background until stopped; stop() rethrows the first violation. */
export function recordInBackground(
  record: LeadershipRecord,
  read: () => Promise<StatusRound>,
  pollIntervalMs = 50,
): { stop: () => Promise<void> } {
  let stopped = false;
  let failure: unknown;
  const loop = (async () => {
    while (!stopped) {
      try {
        record.add(await read());
      } catch (error) {
        failure = error;
        return;
      }
      await sleep(pollIntervalMs);
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      if (failure !== undefined) throw failure;
    },
  };
}
