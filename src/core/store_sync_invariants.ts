// Safety properties of the store sync core, checked after every input (asserts stay on, as in election.ts):
// what one input changed, judged against the state checked after the previous input. Each check costs
// O(peers) or O(what the input produced), so it runs in production on every step.
import type {
  Envelope,
  NodeId,
  PersistRequest,
  StoreSyncEvent,
  StoreSyncLimits,
  StoreSyncMessage,
  StoreSyncReady,
  WriteResult,
} from "./store_sync_types.ts";

/**
 * - cursor-monotonic: a cursor into a peer's store never moves back within that store, nor is dropped
 *   unless setPeers removed that peer;
 * - cursor-durable: a cursor moves only past what is durable here: on the persisted report of the apply
 *   that continues it, or when a round with that peer completes with every pulled entry persisted;
 * - ack-after-durable: an apply-ack leaves only on the persisted report of that apply;
 * - write-kept: a pending write is forgotten only with its final (done) result, and results name tracked writes;
 * - write-result: hosts reported ok acknowledged every chunk; acked means minAcks of them did; hostsOk
 *   and hostsErr split the write's hosts;
 * - ids-monotonic: round ids and persist tokens only grow, so a late answer never matches a newer round;
 * - round-bounds: a round runs only with a configured peer whose link is up; one per peer; round tokens are
 *   outstanding persists;
 * - message-bounds: every message goes to a peer and stays within StoreSyncLimits;
 * - peer-set: cursors and rounds are kept only for current peers; after setPeers, every write's hosts are
 *   current peers (the peer set changes only through setPeers).
 */
export type StoreSyncRule =
  | "cursor-monotonic"
  | "cursor-durable"
  | "ack-after-durable"
  | "write-kept"
  | "write-result"
  | "ids-monotonic"
  | "round-bounds"
  | "message-bounds"
  | "peer-set";

export interface StoreSyncViolation {
  rule: StoreSyncRule;
  detail: string;
}

export class StoreSyncInvariantError extends Error {
  override readonly name = "StoreSyncInvariantError";
  readonly violations: readonly StoreSyncViolation[];

  constructor(selfId: NodeId, violations: readonly StoreSyncViolation[]) {
    const text = violations.map((v) => `${v.rule}: ${v.detail}`).join("; ");
    super(`store sync invariant violated on ${selfId}: ${text}`);
    this.violations = violations;
  }

  get rules(): StoreSyncRule[] {
    return this.violations.map((v) => v.rule);
  }
}

// The parts of the core's state the checks read (store_sync.ts's own types satisfy them).

export interface CheckedCursor {
  readonly storeId: number;
  readonly createdWallMs: number;
  readonly seq: number;
}

export interface CheckedWrite {
  readonly writeId: string;
  readonly hosts: readonly NodeId[];
  readonly acksNeeded: number;
  readonly chunks: number;
  readonly chunksAcked: ReadonlyMap<NodeId, ReadonlySet<number>>;
  readonly hostsOk: readonly NodeId[];
  readonly resolved: boolean;
}

export interface CheckedRound {
  readonly roundId: number;
  readonly peer: NodeId;
  readonly lastEntriesSeen: boolean;
  readonly tokensPending: ReadonlySet<number>;
  readonly cursorAfter: CheckedCursor | null;
}

/** An apply whose entries the shell reported persisted. */
export interface CheckedApply {
  readonly from: NodeId;
  readonly writeId: string;
  readonly chunk: number;
  readonly seqs: { readonly storeId: number; readonly afterSeq: number; readonly upToSeq: number } | null;
}

export interface CheckedState {
  readonly cursors: ReadonlyMap<NodeId, CheckedCursor>;
  readonly writes: ReadonlyMap<string, CheckedWrite>;
  readonly rounds: ReadonlyMap<NodeId, CheckedRound>;
  readonly linksDown: ReadonlySet<NodeId>;
  /** Persist requests handed out and not yet reported, and those a round waits for. */
  persistsOutstanding(): number;
  persistsOfRounds(): number;
  roundIdNext(): number;
  persistTokenNext(): number;
}

export type StoreSyncInput =
  | "localCommitted"
  | "step"
  | "tick"
  | "persisted"
  | "persistFailed"
  | "linkUp"
  | "linkDown"
  | "setPeers";

/**
 * Holds what was checked after the previous input and logs what the core reports during the current one.
 * Usage: begin(input, ready) at the start of every input, the note… calls where they happen, check() at the end.
 */
export class StoreSyncInvariants {
  /** The core's own set: setPeers changes it in place. */
  private readonly peers: ReadonlySet<NodeId>;
  private readonly limits: StoreSyncLimits;

  // Checked after the previous input.
  private readonly cursors = new Map<NodeId, CheckedCursor>();
  private writesTracked = 0;
  private roundIdNext: number;
  private persistTokenNext: number;

  // This input.
  private input: StoreSyncInput = "tick";
  private inputOpen = false;
  private persistedApply: CheckedApply | null = null;
  private readonly roundsCompleted: CheckedRound[] = [];
  private readonly writesForgotten: CheckedWrite[] = [];
  private forgottenIndex: Map<string, CheckedWrite> | null = null;
  private messagesFrom = 0;
  private violations: StoreSyncViolation[] | null = null;
  private persistFrom = 0;
  private resultsFrom = 0;
  private eventsFrom = 0;

  constructor(peers: ReadonlySet<NodeId>, limits: StoreSyncLimits, state: CheckedState) {
    this.peers = peers;
    this.limits = limits;
    this.roundIdNext = state.roundIdNext();
    this.persistTokenNext = state.persistTokenNext();
    this.rebase(state);
  }

  begin(input: StoreSyncInput, ready: StoreSyncReady, state: CheckedState): void {
    // An input that threw (its StoreView failed, say) is not judged: the next starts from what it left.
    if (this.inputOpen) this.rebase(state);
    this.inputOpen = true;
    this.input = input;
    this.persistedApply = null;
    this.roundsCompleted.length = 0;
    // Truncation, not Map.clear(): that allocates a new table on every input.
    if (this.writesForgotten.length > 0) this.writesForgotten.length = 0;
    this.forgottenIndex = null;
    this.messagesFrom = ready.messages.length;
    this.persistFrom = ready.persist.length;
    this.resultsFrom = ready.writeResults.length;
    this.eventsFrom = ready.events.length;
  }

  notePersistedApply(apply: CheckedApply): void {
    this.persistedApply = apply;
  }

  noteRoundCompleted(round: CheckedRound): void {
    this.roundsCompleted.push(round);
  }

  noteWriteForgotten(write: CheckedWrite): void {
    this.writesForgotten.push(write);
  }

  /** Violations of this input; [] when all hold. What was checked becomes the baseline of the next input. */
  check(state: CheckedState, ready: StoreSyncReady): readonly StoreSyncViolation[] {
    this.inputOpen = false;
    this.violations = null;
    this.checkCursors(state);
    this.checkAcks(ready.messages);
    this.checkWrites(state, ready.writeResults);
    this.checkIdsAndRounds(state, ready.persist, ready.events);
    this.checkMessages(ready.messages);
    this.checkPeerSet(state);
    return this.violations ?? noViolations;
  }

  private rebase(state: CheckedState): void {
    this.cursors.clear();
    for (const [peer, cursor] of state.cursors) this.cursors.set(peer, cursor);
    this.writesTracked = state.writes.size;
    this.roundIdNext = Math.max(this.roundIdNext, state.roundIdNext());
    this.persistTokenNext = Math.max(this.persistTokenNext, state.persistTokenNext());
  }

  private fail(rule: StoreSyncRule, detail: string): void {
    this.violations ??= [];
    this.violations.push({ rule, detail });
  }

  private checkCursors(state: CheckedState): void {
    let kept = 0;
    for (const [peer, after] of state.cursors) {
      const before = this.cursors.get(peer);
      if (before !== undefined) kept++;
      if (after === before) continue;
      if (before !== undefined && before.storeId === after.storeId && after.seq < before.seq) {
        this.fail(
          "cursor-monotonic",
          `cursor into ${peer} moved back from ${describe(before)} to ${describe(after)}`,
        );
      }
      if (!this.cursorMoveJustified(peer, before, after)) {
        const from = before === undefined ? "none" : describe(before);
        this.fail(
          "cursor-durable",
          `cursor into ${peer} moved from ${from} to ${describe(after)} (input ${this.input}) ` +
            "without a persisted apply continuing it or a completed round with it",
        );
      }
      this.cursors.set(peer, after);
    }
    if (kept === this.cursors.size) return;
    for (const [peer, before] of this.cursors) {
      if (state.cursors.has(peer)) continue;
      if (this.input !== "setPeers" || this.peers.has(peer)) {
        this.fail("cursor-monotonic", `cursor into ${peer} dropped at ${describe(before)}`);
      }
      this.cursors.delete(peer);
    }
  }

  private cursorMoveJustified(
    peer: NodeId,
    before: CheckedCursor | undefined,
    after: CheckedCursor,
  ): boolean {
    const apply = this.persistedApply;
    const seqs = apply?.seqs;
    if (
      this.input === "persisted" &&
      apply?.from === peer &&
      seqs != null &&
      before !== undefined &&
      before.storeId === seqs.storeId &&
      before.seq === seqs.afterSeq &&
      sameCursor(after, { ...before, seq: seqs.upToSeq })
    ) {
      return true;
    }
    return this.roundsCompleted.some(
      (round) =>
        round.peer === peer &&
        round.lastEntriesSeen &&
        round.tokensPending.size === 0 &&
        round.cursorAfter !== null &&
        sameCursor(after, round.cursorAfter),
    );
  }

  private checkAcks(messages: readonly Envelope<StoreSyncMessage>[]): void {
    let acks = 0;
    for (let i = this.messagesFrom; i < messages.length; i++) {
      const { to, message } = messages[i]!;
      if (message.type !== "apply-ack") continue;
      acks++;
      const apply = this.input === "persisted" ? this.persistedApply : null;
      const matches =
        apply !== null &&
        apply.from === to &&
        apply.writeId === message.writeId &&
        apply.chunk === message.chunk;
      if (!matches || acks > 1) {
        this.fail(
          "ack-after-durable",
          `apply-ack ${message.writeId}/${message.chunk} to ${to} sent on ${this.input} ` +
            "before that apply was reported persisted",
        );
      }
    }
  }

  private checkWrites(state: CheckedState, results: readonly WriteResult[]): void {
    const created = this.input === "localCommitted" ? 1 : 0;
    let done = 0;
    for (let i = this.resultsFrom; i < results.length; i++) {
      const result = results[i]!;
      const tracked = state.writes.get(result.writeId);
      const forgotten = result.done ? this.forgottenWrite(result.writeId) : undefined;
      if (result.done) {
        done++;
        if (tracked !== undefined || forgotten === undefined) {
          this.fail(
            "write-kept",
            `final result of ${result.writeId} but the write is ${tracked ? "still" : "not"} tracked`,
          );
        }
      } else if (tracked === undefined || !tracked.resolved) {
        this.fail("write-kept", `result of ${result.writeId} that resolves no tracked write`);
      }
      const write = tracked ?? forgotten;
      if (write !== undefined) this.checkResult(result, write);
    }
    if (done !== this.writesForgotten.length) {
      this.fail("write-kept", `${this.writesForgotten.length} writes forgotten with ${done} final results`);
    }
    const expected = this.writesTracked + created - done;
    if (state.writes.size !== expected) {
      this.fail(
        "write-kept",
        `${state.writes.size} writes tracked where ${this.writesTracked} + ${created} new - ${done} done = ${expected}`,
      );
    }
    this.writesTracked = state.writes.size;
  }

  private forgottenWrite(writeId: string): CheckedWrite | undefined {
    const forgotten = this.writesForgotten;
    if (forgotten.length <= 8) return forgotten.find((w) => w.writeId === writeId);
    // A tick may time out many writes at once: index them then.
    this.forgottenIndex ??= new Map(forgotten.map((w) => [w.writeId, w]));
    return this.forgottenIndex.get(writeId);
  }

  private checkResult(result: WriteResult, write: CheckedWrite): void {
    const ok = new Set(result.hostsOk);
    if (ok.size !== result.hostsOk.length) this.fail("write-result", `${result.writeId} lists a host twice`);
    for (const host of result.hostsOk) {
      const acked = write.chunksAcked.get(host)?.size ?? 0;
      if (write.chunks > 0 && acked !== write.chunks) {
        this.fail(
          "write-result",
          `${result.writeId} reports ${host} ok after ${acked} of ${write.chunks} chunks`,
        );
      }
    }
    const hosts = new Set(write.hosts);
    const split =
      result.hostsOk.every((host) => hosts.has(host)) &&
      result.hostsErr.every((e) => hosts.has(e.host) && !ok.has(e.host)) &&
      ok.size + result.hostsErr.length === hosts.size;
    if (!split) this.fail("write-result", `${result.writeId}: hostsOk and hostsErr do not split its hosts`);
    if (result.acked !== result.hostsOk.length >= write.acksNeeded) {
      this.fail(
        "write-result",
        `${result.writeId} acked=${result.acked} with ${result.hostsOk.length} of ${write.acksNeeded} acks`,
      );
    }
  }

  private checkIdsAndRounds(
    state: CheckedState,
    persist: readonly PersistRequest[],
    events: readonly StoreSyncEvent[],
  ): void {
    let roundIdMin = this.roundIdNext;
    for (let i = this.eventsFrom; i < events.length; i++) {
      const event = events[i]!;
      if (event.type !== "round-started") continue;
      if (event.roundId < roundIdMin) {
        this.fail("ids-monotonic", `round ${event.roundId} started after round ids reached ${roundIdMin}`);
      }
      roundIdMin = event.roundId + 1;
      if (!this.peers.has(event.peer) || state.linksDown.has(event.peer)) {
        this.fail(
          "round-bounds",
          `round ${event.roundId} started with ${event.peer}, not a peer with a link up`,
        );
      }
    }
    if (state.roundIdNext() < roundIdMin) {
      this.fail("ids-monotonic", `next round id ${state.roundIdNext()} below ${roundIdMin}`);
    }
    this.roundIdNext = state.roundIdNext();
    let tokenMin = this.persistTokenNext;
    for (let i = this.persistFrom; i < persist.length; i++) {
      const token = persist[i]!.token;
      if (token < tokenMin)
        this.fail("ids-monotonic", `persist token ${token} issued after tokens reached ${tokenMin}`);
      tokenMin = token + 1;
    }
    if (state.persistTokenNext() < tokenMin) {
      this.fail("ids-monotonic", `next persist token ${state.persistTokenNext()} below ${tokenMin}`);
    }
    this.persistTokenNext = state.persistTokenNext();
    if (state.rounds.size > this.peers.size) {
      this.fail("round-bounds", `${state.rounds.size} rounds in flight with ${this.peers.size} peers`);
    }
    if (state.persistsOfRounds() > state.persistsOutstanding()) {
      this.fail(
        "round-bounds",
        `rounds wait for ${state.persistsOfRounds()} persists, ${state.persistsOutstanding()} are outstanding`,
      );
    }
  }

  private checkMessages(messages: readonly Envelope<StoreSyncMessage>[]): void {
    const l = this.limits;
    let previous: StoreSyncMessage | null = null;
    for (let i = this.messagesFrom; i < messages.length; i++) {
      const { to, message } = messages[i]!;
      if (!this.peers.has(to)) this.fail("message-bounds", `${message.type} sent to ${to}, not a peer`);
      // An apply goes to every peer as one object: its size is checked once.
      if (message === previous) continue;
      previous = message;
      const problem = messageBoundProblem(message, l);
      if (problem !== null) this.fail("message-bounds", `${message.type} to ${to}: ${problem}`);
    }
  }

  /** O(peers) on every input; the writes only on setPeers, the one input that changes the peers. */
  private checkPeerSet(state: CheckedState): void {
    for (const peer of state.cursors.keys()) {
      if (!this.peers.has(peer)) this.fail("peer-set", `cursor kept into ${peer}, not a peer`);
    }
    for (const peer of state.rounds.keys()) {
      if (!this.peers.has(peer)) this.fail("peer-set", `round in flight with ${peer}, not a peer`);
    }
    if (this.input !== "setPeers") return;
    for (const write of state.writes.values()) {
      const stranger = write.hosts.find((host) => !this.peers.has(host));
      if (stranger !== undefined) this.fail("peer-set", `write ${write.writeId} still counts ${stranger}`);
    }
  }
}

const noViolations: readonly StoreSyncViolation[] = Object.freeze([]);

/** What of `message` exceeds `limits`, or null. */
export function messageBoundProblem(message: StoreSyncMessage, limits: StoreSyncLimits): string | null {
  switch (message.type) {
    case "apply":
    case "entries": {
      const { entries } = message;
      if (entries.length > limits.entriesPerMessageMax) {
        return `${entries.length} entries > entriesPerMessageMax ${limits.entriesPerMessageMax}`;
      }
      if (entries.length < 2) return null;
      let bytes = 0;
      for (const entry of entries) bytes += entry.value.byteLength;
      return bytes > limits.valueBytesPerMessageMax
        ? `${bytes} value bytes > valueBytesPerMessageMax ${limits.valueBytesPerMessageMax}`
        : null;
    }
    case "pull":
      return message.paths.length > limits.pathsPerPullMax
        ? `${message.paths.length} paths > pathsPerPullMax ${limits.pathsPerPullMax}`
        : null;
    case "changes": {
      const max = Math.min(limits.stampsPerMessageMax, limits.pathsPerPullMax);
      return message.stamps.length > max ? `${message.stamps.length} stamps > ${max}` : null;
    }
    case "stamps":
      // Whole buckets: one bucket always goes, whatever its size.
      return message.buckets.length > 1 && message.stamps.length > limits.stampsPerMessageMax
        ? `${message.stamps.length} stamps in ${message.buckets.length} buckets > stampsPerMessageMax ${limits.stampsPerMessageMax}`
        : null;
    default:
      return null;
  }
}

function sameCursor(a: CheckedCursor, b: CheckedCursor): boolean {
  return a.storeId === b.storeId && a.createdWallMs === b.createdWallMs && a.seq === b.seq;
}

function describe(c: CheckedCursor): string {
  return `store ${c.storeId} seq ${c.seq}`;
}
