// Replication of the store as a pure state machine in the shape of election.ts: inputs are method calls
// (localCommitted, step, tick, persisted, linkUp/linkDown, setPeers), outputs are batched in a Ready (the
// caller's loop is in store_sync_types.ts). It reads local state through a read-only StoreView and never
// writes: remote entries leave as persist requests that the shell makes durable before it reports them
// persisted.
// Its invariants are asserted after every input (store_sync_invariants.ts): a violation is a bug and throws.
//
// Write path: a write committed locally goes to every peer at once (apply, in bounded chunks). A peer acks
// a chunk only after the shell persisted it, so an ack means durable there; the write resolves as soon as
// minAcks peers acked every chunk, or fails with the missing hosts when writeTimeoutTicks pass. Lost
// applies are not retried: the write stays local and anti-entropy spreads it.
//
// Anti-entropy rounds, A (initiator) with B, in two kinds. Both only pull: what A holds newer, B pulls in its
// own rounds. So every transfer waits for the receiver's persistence before the next one starts (a pushed
// entry would not, and a next round would push it again), and no entry crosses twice when both ends start a
// round at once.
// - since (the usual kind): A → since (its cursor into B's change log: B's storeId and a seq); B answers
//   changes (stamps of what it changed after that seq, bounded, leaving out the writes of the origins A
//   names: A itself and every other peer whose log A reads directly); A pulls what B holds newer; once that
//   is persisted, A's cursor moves to the seq B named. A node back from a partition, or an empty one, so
//   compares only what changed while it was away, whatever the store's size. Applies carry the writer's seq
//   span, so A's cursor into a writer's log follows its writes, and under steady load a round finds nothing.
// - digest (every digestRoundEvery-th periodic round with a peer, or owed): A → digest (fingerprints of its
//   non-empty buckets); B answers stamps (its stamps in the differing buckets that fit one message, `more` if
//   others differ too); A pulls what B holds newer. The safety net for what a cursor cannot see: an entry
//   skipped for clock skew, a peer's database restored from a copy, a write left out of B's answer because
//   its writer's link to A was up when A asked, if the writer then died before reaching A (see below).
// Cursors are saved through the Ready at most once per antiEntropyIntervalTicks and read back at start, so a
// restarted node resumes where it left off; a lost or stale one only costs reading more of a log.
// Then B answers the pull with entries messages, the final one marked `last`, and the round completes once
// the pulled entries are persisted. A since round cut short by a bound continues at once; a digest round
// only when it also pulled something (under load every bucket differs by what is still in flight, and the
// next digest round starts at another bucket anyway). A path another round already pulls, at the same
// version or newer, is left to that round. Every round is bounded in bytes and in time (roundTimeoutTicks);
// B keeps no state for it. Rounds run every antiEntropyIntervalTicks with one peer at a time (round robin),
// and at once with a peer whose link comes up.
//
// Losing a writer: while O's link is up and A reads O's log, A's since rounds with others leave out O's writes
// yet move A's cursors past them. So when O's link goes down or O is removed before A held O's writes (the
// latest round with O left something behind, or none completed since A started, or an apply or since answer
// named a seq of O's log past A's cursor), every other peer owes A a digest round. So does every peer A holds
// a cursor into when A starts with cursors into several: nothing says it held what they moved past. An owed
// round starts as soon as that peer's round slot is free and its link reported up (after the link-up since
// round), not at its periodic turn; the debt ends when one of its rounds completes without continuing (or a
// persist fails). Only the writes of a peer whose link was reported up are left out, not of one merely not
// reported down (every peer at start). Left to the periodic digest round: a write whose apply to A was lost
// unnoticed.
//
// Membership: setPeers changes the peers at run time (a new peer is read from the start of its change log,
// a removed one is forgotten and stops counting for writes in flight); syncProgress tells a learner's
// promotion whether the latest round with a peer left anything behind.

import { differingBuckets, newerStamps } from "./digest.ts";
import { compareVersions } from "./lww.ts";
import { bucketsThatFit, chunkEntries } from "./store_sync_batch.ts";
import { peerProblems, StoreSyncConfigError, validateStoreSyncConfig } from "./store_sync_config.ts";
import {
  type CheckedState,
  type StoreSyncInput,
  StoreSyncInvariantError,
  StoreSyncInvariants,
} from "./store_sync_invariants.ts";
import type {
  Envelope,
  NodeId,
  OriginSkip,
  PeerCursor,
  PeerSyncProgress,
  RoundKind,
  SeqSpan,
  StoreEntry,
  StoreSyncConfig,
  StoreSyncEvent,
  StoreSyncMessage,
  StoreSyncReady,
  StoreView,
  SyncMinAcks,
  WriteResult,
} from "./store_sync_types.ts";
import type { EntryStamp, Version } from "./store_types.ts";
import { Timeout } from "./timeout.ts";

export { validateStoreSyncConfig };

/**
 * A since answer looks at up to this many seqs per stamp it may carry: the writes of the origins the asker
 * names are left out, and under one writer they are nearly all of them, so the scan is bounded on its own.
 */
const sinceSeqSpanPerStamp = 8;

type MessageOf<T extends StoreSyncMessage["type"]> = Extract<StoreSyncMessage, { type: T }>;

interface PendingWrite {
  writeId: string;
  minAcks: SyncMinAcks;
  /** The peers the write was sent to that are still peers: hostsOk and hostsErr split them. */
  hosts: NodeId[];
  /** Peer acks needed: minAcks, or every host for "all" (fewer once a host is removed). */
  acksNeeded: number;
  chunks: number;
  /** Chunks each peer acknowledged so far. */
  chunksAcked: Map<NodeId, Set<number>>;
  /** Peers that acknowledged every chunk, in order of their last ack. */
  hostsOk: NodeId[];
  timer: Timeout;
  resolved: boolean;
}

/** Where a persist request came from: an apply to acknowledge, or a pull answer a round waits for. */
type PersistOrigin =
  | { kind: "apply"; from: NodeId; writeId: string; chunk: number; seqs: SeqSpan | null }
  | { kind: "round" };

type Cursor = Omit<PeerCursor, "peer">;

/** A point in one store's change log. */
interface LogPosition {
  storeId: number;
  seq: number;
}

interface Round {
  roundId: number;
  peer: NodeId;
  kind: RoundKind;
  /** since or digest sent, awaiting stamps → pull sent, awaiting entries (and their persistence). */
  phase: "stamps" | "pull";
  timer: Timeout;
  pulled: number;
  /** A bound cut this round's exchange short: run the next one at once. */
  more: boolean;
  /** Some of what the peer holds newer was left to rounds with other peers that already pull it. */
  leftToOthers: boolean;
  /** Persist tokens of received entries not yet reported persisted. */
  tokensPending: Set<number>;
  lastEntriesSeen: boolean;
  /** What this round's pull asked for: each path and the version the peer said it holds. */
  pulling: Map<string, Version>;
  /** Pulled paths whose entry has not arrived: the answer's byte bound may leave some for the next round. */
  awaiting: Set<string>;
  /** Where the cursor into the peer's change log moves once the round completes (since rounds). */
  cursorAfter: Cursor | null;
}

export class StoreSync {
  private readonly config: StoreSyncConfig;
  private readonly view: StoreView;
  /** Every other node of the cluster now (setPeers); the invariants read the same set. */
  private readonly peers: Set<NodeId>;
  /** The same peers in the order given: round robin and the order of hosts in write results. */
  private peerList: NodeId[];

  private readonly writes = new Map<string, PendingWrite>();
  private readonly persistOrigins = new Map<number, PersistOrigin>();
  private readonly rounds = new Map<NodeId, Round>();
  private readonly roundsByToken = new Map<number, Round>();
  private readonly linksDown = new Set<NodeId>();
  /**
   * Peers whose link was reported up and not down since: only their writes are left out of since answers. A peer
   * merely not reported down (every peer at start) may be dead, and its writes then reach us only from others.
   */
  private readonly linksUp = new Set<NodeId>();
  private readonly cursors = new Map<NodeId, Cursor>();
  /** The latest round with each peer that completed (syncProgress). */
  private readonly lastRounds = new Map<NodeId, NonNullable<PeerSyncProgress["lastRound"]>>();
  /** How far each peer's change log reaches as far as we heard: its latest since answer, or an apply past it. */
  private readonly heads = new Map<NodeId, LogPosition>();
  /**
   * Peers owed a digest round, each with why: our cursors into their logs may have moved past writes we do
   * not hold, of a peer lost before we held them, or from before a restart (see the header).
   */
  private readonly digestsOwed = new Map<NodeId, string>();
  /** Periodic rounds started with each peer: every digestRoundEvery-th is a digest round. */
  private readonly periodicRounds = new Map<NodeId, number>();
  private readonly antiEntropyTimer: Timeout;
  /** Cursors are saved at most once per antiEntropyIntervalTicks, when they moved. */
  private readonly cursorSaveTimer: Timeout;
  private cursorsMoved = false;
  /**
   * No write times out sooner than this many ticks from now: exact after each tick, lowered by each new
   * write, left as is when one is forgotten (a lower bound only costs an early wake-up).
   */
  private writeTimeoutTicksMin = Number.POSITIVE_INFINITY;
  private roundRobinIndex = 0;
  private roundIdNext = 1;
  private persistTokenNext = 1;

  private ready_: StoreSyncReady = emptyReady();
  private readyInFlight: StoreSyncReady | null = null;
  /** Checked after every input (store_sync_invariants.ts); a violation throws StoreSyncInvariantError. */
  private readonly invariants: StoreSyncInvariants;
  private readonly checkedState: CheckedState;

  constructor(config: StoreSyncConfig, view: StoreView) {
    const problems = validateStoreSyncConfig(config);
    if (problems.length > 0) throw new StoreSyncConfigError(problems);
    this.config = config;
    this.view = view;
    this.peers = new Set(config.peers);
    this.peerList = [...config.peers];
    this.antiEntropyTimer = new Timeout("anti-entropy", config.antiEntropyIntervalTicks);
    this.cursorSaveTimer = new Timeout("cursor save", config.antiEntropyIntervalTicks);
    // Where the previous run left off, so a restart does not read every peer's whole log again.
    for (const { peer, ...cursor } of view.syncCursors()) {
      if (this.peers.has(peer)) this.cursors.set(peer, cursor);
    }
    // Rounds with one peer may have moved its cursor past another's writes, and nothing says we held them.
    if (this.cursors.size > 1) {
      for (const peer of this.cursors.keys()) this.digestsOwed.set(peer, "restarted with cursors");
    }
    this.checkedState = {
      cursors: this.cursors,
      writes: this.writes,
      rounds: this.rounds,
      linksDown: this.linksDown,
      persistsOutstanding: () => this.persistOrigins.size,
      persistsOfRounds: () => this.roundsByToken.size,
      roundIdNext: () => this.roundIdNext,
      persistTokenNext: () => this.persistTokenNext,
    };
    this.invariants = new StoreSyncInvariants(this.peers, config.limits, this.checkedState);
  }

  // --- inputs ------------------------------------------------------------------------------------

  /**
   * The shell committed `entries` durably as one local write: send them to every peer and track the acks.
   * `timeoutTicks` overrides writeTimeoutTicks for this write. `firstSeq`: the local seq of entries[0] when
   * the entries took consecutive seqs and nothing else did in between; peers then keep their cursors into
   * this node's change log current from the applies alone, and their since rounds find nothing to compare.
   */
  localCommitted(
    writeId: string,
    entries: readonly StoreEntry[],
    minAcks: SyncMinAcks,
    timeoutTicks = this.config.writeTimeoutTicks,
    firstSeq: number | null = null,
  ): void {
    if (this.writes.has(writeId)) throw new RangeError(`write ${writeId} is already in flight`);
    if (!Number.isSafeInteger(timeoutTicks) || timeoutTicks < 1) {
      throw new RangeError(`write timeoutTicks must be an integer >= 1, got ${timeoutTicks}`);
    }
    const acksNeeded = minAcks === "all" ? this.peerList.length : minAcks;
    if (!Number.isSafeInteger(acksNeeded) || acksNeeded < 0) throw new RangeError(`bad minAcks ${minAcks}`);
    this.beginInput("localCommitted");
    const chunks = chunkEntries(entries, this.config.limits);
    const storeId = this.view.identity().storeId;
    let afterSeq = firstSeq === null ? 0 : firstSeq - 1;
    // One message object per chunk for every peer: the shell can encode it once.
    chunks.forEach((chunk, index) => {
      const upToSeq = afterSeq + chunk.length;
      const seqs = firstSeq === null ? null : { storeId, afterSeq, upToSeq };
      afterSeq = upToSeq;
      const apply: StoreSyncMessage = { type: "apply", writeId, chunk: index, entries: chunk, seqs };
      for (const peer of this.peerList) this.send(peer, apply);
    });
    const write: PendingWrite = {
      writeId,
      minAcks,
      hosts: [...this.peerList],
      acksNeeded,
      chunks: chunks.length,
      chunksAcked: new Map(),
      hostsOk: [],
      timer: new Timeout(`write ${writeId}`, timeoutTicks),
      resolved: false,
    };
    // Nothing to wait for: no peers, or nothing to send (every peer trivially holds an empty write).
    if (chunks.length === 0) write.hostsOk.push(...write.hosts);
    this.writes.set(writeId, write);
    this.writeTimeoutTicksMin = Math.min(this.writeTimeoutTicksMin, timeoutTicks);
    this.progressWrite(write);
    this.assertInvariants();
  }

  step(from: NodeId, message: StoreSyncMessage): void {
    this.beginInput("step");
    this.stepMessage(from, message);
    this.assertInvariants();
  }

  tick(): void {
    this.beginInput("tick");
    this.tickTimers();
    this.assertInvariants();
  }

  /** The shell made persist request `token` durable. */
  persisted(token: number): void {
    this.beginInput("persisted");
    const origin = this.takeOrigin(token);
    if (origin?.kind === "apply") {
      this.invariants.notePersistedApply(origin);
      // A peer removed meanwhile is owed nothing: the entries stay, LWW-merged like any others.
      if (this.peers.has(origin.from)) {
        this.send(origin.from, { type: "apply-ack", writeId: origin.writeId, chunk: origin.chunk });
        this.advanceCursorPast(origin.from, origin.seqs);
      }
    } else if (origin?.kind === "round") {
      const round = this.roundsByToken.get(token);
      this.roundsByToken.delete(token);
      round?.tokensPending.delete(token);
      if (round !== undefined) this.completeRoundIfDone(round);
    }
    this.assertInvariants();
  }

  /** The shell could not make persist request `token` durable: no ack; the round it served fails. */
  persistFailed(token: number, reason: string): void {
    this.beginInput("persistFailed");
    const origin = this.takeOrigin(token);
    const round = this.roundsByToken.get(token);
    this.roundsByToken.delete(token);
    if (origin?.kind === "round" && round !== undefined) {
      this.abandonRound(round, `persist failed: ${reason}`);
      // Retrying at once would fail alike: what the owed digest round was for waits for a periodic one.
      this.digestsOwed.delete(round.peer);
    }
    this.assertInvariants();
  }

  /** A link to `peer` came up: pull what it holds newer now rather than at its next turn (it does the same). */
  linkUp(peer: NodeId): void {
    if (!this.peers.has(peer)) return;
    this.beginInput("linkUp");
    this.linksDown.delete(peer);
    this.linksUp.add(peer);
    const inFlight = this.rounds.get(peer);
    if (inFlight !== undefined) this.abandonRound(inFlight, "link came up again");
    this.startRound(peer, "since", "link up");
    this.assertInvariants();
  }

  linkDown(peer: NodeId): void {
    if (!this.peers.has(peer)) return;
    this.beginInput("linkDown");
    this.noteLost(peer, this.peerList);
    this.linksDown.add(peer);
    this.linksUp.delete(peer);
    const inFlight = this.rounds.get(peer);
    if (inFlight !== undefined) this.abandonRound(inFlight, "link down");
    this.startOwedDigests();
    this.assertInvariants();
  }

  /**
   * The cluster's membership changed: from now on `peers` are every other node. An added peer starts with
   * no cursor, so its first since round reads its whole change log (in bounded rounds, as for any empty
   * node); as at construction its link counts as up until linkDown, and linkUp starts that round at once.
   * A removed peer is forgotten: its round is abandoned, its cursor dropped (the saved cursors are replaced
   * in this Ready), and the writes in flight stop counting it, ok or missing: each resolves from the hosts
   * it was sent to that remain ("all" = all of those), or fails naming them. Peers added after a write was
   * committed are not among its hosts: it never reached them, and anti-entropy brings it.
   */
  setPeers(peers: readonly NodeId[]): void {
    const problems = peerProblems(this.config.selfId, peers);
    if (problems.length > 0) throw new StoreSyncConfigError(problems);
    this.beginInput("setPeers");
    const added = peers.filter((peer) => !this.peers.has(peer));
    const removed = this.peerList.filter((peer) => !peers.includes(peer));
    // An added peer has no cursor to have moved past anything: a since round reads its log from the start.
    const kept = peers.filter((peer) => this.peers.has(peer));
    for (const peer of removed) this.noteLost(peer, kept);
    this.peers.clear();
    for (const peer of peers) this.peers.add(peer);
    this.peerList = [...peers];
    if (added.length + removed.length > 0) this.event({ type: "peers-changed", added, removed });
    let cursorsDropped = false;
    for (const peer of removed) cursorsDropped = this.forgetPeer(peer) || cursorsDropped;
    if (cursorsDropped) this.saveCursors();
    this.startOwedDigests();
    this.assertInvariants();
  }

  /** Everything kept about a removed peer goes; true when it had a cursor. */
  private forgetPeer(peer: NodeId): boolean {
    const round = this.rounds.get(peer);
    if (round !== undefined) this.abandonRound(round, "peer removed");
    this.linksDown.delete(peer);
    this.linksUp.delete(peer);
    this.periodicRounds.delete(peer);
    this.lastRounds.delete(peer);
    this.heads.delete(peer);
    this.digestsOwed.delete(peer);
    for (const write of [...this.writes.values()]) {
      if (!write.hosts.includes(peer)) continue;
      write.hosts = write.hosts.filter((host) => host !== peer);
      write.hostsOk = write.hostsOk.filter((host) => host !== peer);
      write.chunksAcked.delete(peer);
      if (write.minAcks === "all") write.acksNeeded = write.hosts.length;
      this.progressWrite(write);
    }
    return this.cursors.delete(peer);
  }

  private stepMessage(from: NodeId, message: StoreSyncMessage): void {
    if (!this.peers.has(from)) {
      this.ignore(from, message, "not a peer");
      return;
    }
    switch (message.type) {
      case "apply":
        if (message.seqs !== null) this.noteHead(from, message.seqs.storeId, message.seqs.upToSeq);
        this.requestPersist(from, message.entries, {
          kind: "apply",
          from,
          writeId: message.writeId,
          chunk: message.chunk,
          seqs: message.seqs,
        });
        return;
      case "apply-ack":
        this.onApplyAck(from, message);
        return;
      case "since":
        this.onSince(from, message);
        return;
      case "changes":
        this.onChanges(from, message);
        return;
      case "digest":
        this.onDigest(from, message);
        return;
      case "stamps":
        this.onStamps(from, message);
        return;
      case "pull":
        this.onPull(from, message);
        return;
      case "entries":
        this.onEntries(from, message);
        return;
    }
  }

  private tickTimers(): void {
    let writeTimeoutTicksMin = Number.POSITIVE_INFINITY;
    for (const write of [...this.writes.values()]) {
      write.timer.tick();
      if (write.timer.fired()) this.finishWrite(write);
      else writeTimeoutTicksMin = Math.min(writeTimeoutTicksMin, ticksLeft(write.timer));
    }
    this.writeTimeoutTicksMin = writeTimeoutTicksMin;
    for (const round of [...this.rounds.values()]) {
      round.timer.tick();
      if (!round.timer.fired()) continue;
      this.abandonRound(round, `no answer within ${round.timer.afterTicks} ticks`);
      this.startOwedDigest(round.peer);
    }
    this.cursorSaveTimer.tick();
    if (this.cursorSaveTimer.fired()) {
      this.cursorSaveTimer.reset();
      if (this.cursorsMoved) this.saveCursors();
    }
    this.antiEntropyTimer.tick();
    if (this.antiEntropyTimer.fired()) {
      this.antiEntropyTimer.reset();
      this.startNextRound();
    }
  }

  /**
   * A lower bound on the ticks until tick() next does anything (a write times out, a round is abandoned,
   * cursors are saved, a periodic round starts): the ticks before it only count, so a shell may deliver
   * them later in one batch (before any other input) instead of waking for each. At least 1; Infinity when
   * no tick would ever act until the next input.
   */
  ticksUntilTimer(): number {
    let ticks = this.writes.size > 0 ? this.writeTimeoutTicksMin : Number.POSITIVE_INFINITY;
    for (const round of this.rounds.values()) ticks = Math.min(ticks, ticksLeft(round.timer));
    if (this.cursorsMoved) ticks = Math.min(ticks, ticksLeft(this.cursorSaveTimer));
    // The periodic round starts only with a peer whose link is up and that has no round in flight.
    if (this.peerList.some((peer) => !this.rounds.has(peer) && !this.linksDown.has(peer))) {
      ticks = Math.min(ticks, ticksLeft(this.antiEntropyTimer));
    }
    return Math.max(1, ticks);
  }

  // --- outputs -----------------------------------------------------------------------------------

  hasReady(): boolean {
    const r = this.ready_;
    const outputs = r.persist.length + r.messages.length + r.writeResults.length + r.events.length;
    return outputs > 0 || r.cursors !== null;
  }

  /** The pending outputs; call advance() with it before the next ready(). Inputs meanwhile queue. */
  ready(): StoreSyncReady {
    if (this.readyInFlight !== null) throw new Error("ready() called again before advance()");
    const ready = this.ready_;
    this.ready_ = emptyReady();
    this.readyInFlight = ready;
    return ready;
  }

  advance(ready: StoreSyncReady): void {
    if (ready !== this.readyInFlight) throw new Error("advance() with a Ready that ready() did not return");
    this.readyInFlight = null;
  }

  /** Writes still tracked and rounds in flight (tests and status). */
  status(): { writesInFlight: number; roundsInFlight: NodeId[]; persistsInFlight: number } {
    return {
      writesInFlight: this.writes.size,
      roundsInFlight: [...this.rounds.keys()],
      persistsInFlight: this.persistOrigins.size,
    };
  }

  /**
   * Whether this node has pulled everything `peer` showed it, for a learner's promotion: the latest round
   * with the peer that completed left nothing behind. A since round leaves nothing behind when the peer's
   * answer reached the head of its change log (not cut short by a bound) and everything it named that the
   * peer held newer was pulled and persisted: the cursor then stands at that head. A digest round, when it
   * compared every bucket that differed and pulled and persisted everything the peer held newer. Either
   * way, pulling nothing another round was already pulling. A since answer leaves out the writes of origins
   * this node reads directly (itself, linked peers it holds cursors into), so caught up with every peer means
   * holding everything they showed. False for a node that is not a peer, and after a restart until a round
   * completes; rounds abandoned (timeouts, links down) change nothing.
   */
  syncProgress(peer: NodeId): PeerSyncProgress {
    const lastRound = this.lastRounds.get(peer) ?? null;
    return {
      caughtUp: this.peers.has(peer) && lastRound !== null && !lastRound.leftBehind,
      cursorSeq: this.cursors.get(peer)?.seq ?? null,
      headSeq: this.heads.get(peer)?.seq ?? null,
      lastRound,
    };
  }

  // --- writes ------------------------------------------------------------------------------------

  private onApplyAck(from: NodeId, message: MessageOf<"apply-ack">): void {
    const write = this.writes.get(message.writeId);
    // Late (the write is done), unknown, or from a peer that was removed since (even if added back).
    if (write === undefined || message.chunk >= write.chunks || !write.hosts.includes(from)) return;
    const acked = write.chunksAcked.get(from) ?? new Set<number>();
    write.chunksAcked.set(from, acked);
    acked.add(message.chunk);
    if (acked.size === write.chunks && !write.hostsOk.includes(from)) {
      write.hostsOk.push(from);
      this.progressWrite(write);
    }
  }

  /** Resolves the write once enough peers acked; forgets it once every peer did. */
  private progressWrite(write: PendingWrite): void {
    const everyPeer = write.hostsOk.length === write.hosts.length;
    if (!write.resolved && write.hostsOk.length >= write.acksNeeded) {
      write.resolved = true;
      this.ready_.writeResults.push(this.writeResult(write, everyPeer, "acknowledgement pending"));
      if (everyPeer) this.forgetWrite(write);
    } else if (everyPeer) {
      this.finishWrite(write);
    }
  }

  /** The final result: every peer acked, or the timeout passed. */
  private finishWrite(write: PendingWrite): void {
    this.forgetWrite(write);
    const reason = `no acknowledgement within ${write.timer.afterTicks} ticks`;
    this.ready_.writeResults.push(this.writeResult(write, true, reason));
  }

  private forgetWrite(write: PendingWrite): void {
    this.writes.delete(write.writeId);
    this.invariants.noteWriteForgotten(write);
  }

  private writeResult(write: PendingWrite, done: boolean, missingReason: string): WriteResult {
    const hostsErr = write.hosts
      .filter((peer) => !write.hostsOk.includes(peer))
      .map((host) => ({ host, error: this.linksDown.has(host) ? "link down" : missingReason }));
    return {
      writeId: write.writeId,
      hostsOk: [...write.hostsOk],
      hostsErr,
      acked: write.hostsOk.length >= write.acksNeeded,
      done,
    };
  }

  // --- anti-entropy: initiator -------------------------------------------------------------------

  private startNextRound(): void {
    const peers = this.peerList;
    for (let tried = 0; tried < peers.length; tried++) {
      const peer = peers[this.roundRobinIndex % peers.length]!;
      this.roundRobinIndex = (this.roundRobinIndex + 1) % peers.length;
      if (!this.rounds.has(peer) && !this.linksDown.has(peer)) {
        const started = (this.periodicRounds.get(peer) ?? 0) + 1;
        this.periodicRounds.set(peer, started);
        this.startRound(peer, started % this.config.digestRoundEvery === 0 ? "digest" : "since", "periodic");
        return;
      }
    }
  }

  private startRound(peer: NodeId, kind: RoundKind, reason: string): void {
    const round: Round = {
      roundId: this.roundIdNext++,
      peer,
      kind,
      phase: "stamps",
      timer: new Timeout(`round with ${peer}`, this.config.roundTimeoutTicks),
      pulled: 0,
      more: false,
      leftToOthers: false,
      tokensPending: new Set(),
      pulling: new Map(),
      awaiting: new Set(),
      lastEntriesSeen: false,
      cursorAfter: null,
    };
    this.rounds.set(peer, round);
    this.event({ type: "round-started", peer, roundId: round.roundId, kind, reason });
    if (kind === "since") {
      const cursor = this.cursors.get(peer);
      this.send(peer, {
        type: "since",
        roundId: round.roundId,
        storeId: cursor?.storeId ?? 0,
        afterSeq: cursor?.seq ?? 0,
        skip: this.originsToSkip(peer),
      });
      return;
    }
    const buckets = this.view
      .digest()
      .filter((d) => d.count > 0)
      .map((d) => ({ bucket: d.bucket, fingerprint: d.fingerprint }));
    this.send(peer, { type: "digest", roundId: round.roundId, buckets });
  }

  /** The round with `from` that awaits stamps of this kind, or undefined (the message is then ignored). */
  private roundAwaitingStamps(from: NodeId, message: MessageOf<"stamps" | "changes">): Round | undefined {
    const round = this.rounds.get(from);
    const kind: RoundKind = message.type === "changes" ? "since" : "digest";
    if (round?.roundId === message.roundId && round.kind === kind && round.phase === "stamps") return round;
    this.ignore(from, message, "no round awaits these stamps");
    return undefined;
  }

  private onChanges(from: NodeId, message: MessageOf<"changes">): void {
    const round = this.roundAwaitingStamps(from, message);
    if (round === undefined) return;
    const ours = this.view.stampsAt(message.stamps.map((s) => s.path));
    const { storeId, createdWallMs, upToSeq } = message;
    this.heads.set(from, { storeId, seq: upToSeq });
    this.pullNewer(round, ours, message.stamps, message.more, { storeId, createdWallMs, seq: upToSeq });
  }

  private onStamps(from: NodeId, message: MessageOf<"stamps">): void {
    const round = this.roundAwaitingStamps(from, message);
    if (round === undefined) return;
    this.pullNewer(round, this.view.stampsInBuckets(message.buckets), message.stamps, message.more, null);
  }

  /**
   * Pulls what the peer holds newer than `ours`: only that, since what we hold newer the peer pulls in its
   * own rounds. A path another round is already pulling at the same version or a newer one is left to it:
   * after a partition every peer holds the same missing entries, and each would otherwise send all of them.
   * Only a pull that covers everything newer lets the cursor move to `cursorAfter` when the round completes;
   * otherwise the next round reads these changes again (what this one pulled then compares equal).
   */
  private pullNewer(
    round: Round,
    ours: EntryStamp[],
    theirs: EntryStamp[],
    more: boolean,
    cursorAfter: Cursor | null,
  ): void {
    const newer = newerStamps(ours, theirs);
    const wanted = newer.filter((s) => !this.pulledElsewhere(s, round));
    round.leftToOthers = wanted.length < newer.length;
    const pulling = wanted.slice(0, this.config.limits.pathsPerPullMax);
    const complete = pulling.length === wanted.length;
    round.more = more || !complete;
    round.pulled = pulling.length;
    round.cursorAfter = complete ? cursorAfter : null;
    for (const stamp of pulling) {
      round.pulling.set(stamp.path, stamp.version);
      round.awaiting.add(stamp.path);
    }
    round.phase = "pull";
    if (pulling.length > 0) {
      this.send(round.peer, { type: "pull", roundId: round.roundId, paths: pulling.map((s) => s.path) });
    } else {
      round.lastEntriesSeen = true;
    }
    this.completeRoundIfDone(round);
  }

  private onEntries(from: NodeId, message: MessageOf<"entries">): void {
    const round = this.rounds.get(from);
    const current = round !== undefined && round.roundId === message.roundId && round.phase === "pull";
    // Entries of a stale round are still good data: LWW merge makes them harmless either way.
    const token = this.requestPersist(from, message.entries, current ? { kind: "round" } : null);
    if (!current) return;
    if (token !== null) {
      round.tokensPending.add(token);
      this.roundsByToken.set(token, round);
    }
    for (const entry of message.entries) round.awaiting.delete(entry.path);
    if (message.last) {
      round.lastEntriesSeen = true;
      // Left out by the answer's byte bound (or gone meanwhile): read these changes again at once.
      if (round.awaiting.size > 0) {
        round.more = true;
        round.cursorAfter = null;
      }
    }
    this.completeRoundIfDone(round);
  }

  /**
   * What a since round with `peer` need not be offered: this node's own writes, and those of every other peer
   * whose change log it reads itself (a cursor, a link reported up). Those reach it from their writer; what a
   * writer can no longer deliver (its link went down later) the digest rounds still compare (noteLost). Without
   * this, under one writer each follower would be offered every write again by the other follower.
   */
  private originsToSkip(peer: NodeId): OriginSkip[] {
    const skip: OriginSkip[] = [
      { nodeId: this.config.selfId, fromWallMs: this.view.identity().createdWallMs },
    ];
    for (const [other, cursor] of this.cursors) {
      if (other !== peer && this.linksUp.has(other)) {
        skip.push({ nodeId: other, fromWallMs: cursor.createdWallMs });
      }
    }
    return skip;
  }

  /**
   * `lost` goes (link down, or removed). If since answers left out its writes (its link was up and we read its
   * log) while we did not hold them all, others may hold them behind our cursors into their logs, where no since
   * round looks again: each of `others` owes a digest round.
   */
  private noteLost(lost: NodeId, others: readonly NodeId[]): void {
    if (!this.linksUp.has(lost) || !this.cursors.has(lost) || this.holdsWritesOf(lost)) return;
    for (const peer of others) {
      if (peer !== lost) this.digestsOwed.set(peer, `${lost} lost before we held its writes`);
    }
  }

  /**
   * Whether we hold every write of `peer` that we have heard of: the latest round with it left nothing behind
   * (syncProgress), and no apply or since answer since named a seq of its log past our cursor. A write whose
   * apply to us was lost and which nothing after it revealed stays unknown: the periodic digest round covers it.
   */
  private holdsWritesOf(peer: NodeId): boolean {
    const cursor = this.cursors.get(peer);
    const head = this.heads.get(peer);
    const atHead = head === undefined || (cursor?.storeId === head.storeId && cursor.seq >= head.seq);
    return atHead && this.syncProgress(peer).caughtUp;
  }

  /** `peer`'s change log reaches `seq` of store `storeId`. */
  private noteHead(peer: NodeId, storeId: number, seq: number): void {
    const head = this.heads.get(peer);
    if (head?.storeId !== storeId || head.seq < seq) this.heads.set(peer, { storeId, seq });
  }

  private startOwedDigests(): void {
    for (const peer of this.digestsOwed.keys()) this.startOwedDigest(peer);
  }

  /** Starts the digest round `peer` is owed once its round slot is free and its link reported up. */
  private startOwedDigest(peer: NodeId): void {
    const reason = this.digestsOwed.get(peer);
    if (reason !== undefined && !this.rounds.has(peer) && this.linksUp.has(peer)) {
      this.startRound(peer, "digest", reason);
    }
  }

  /**
   * A persisted apply that continues the peer's change log right where our cursor stands moves the cursor
   * past it. Applies persist in the order they were sent (one link, in order), so a gap (a lost apply, a
   * chunk overtaken) leaves the cursor where it is, for the next since round.
   */
  private advanceCursorPast(peer: NodeId, seqs: SeqSpan | null): void {
    const cursor = this.cursors.get(peer);
    if (cursor === undefined || seqs === null || cursor.storeId !== seqs.storeId) return;
    if (seqs.upToSeq < seqs.afterSeq) return;
    if (cursor.seq === seqs.afterSeq) this.setCursor(peer, { ...cursor, seq: seqs.upToSeq });
  }

  /** An unchanged cursor is not saved again: every idle round ends where the last one did. */
  private setCursor(peer: NodeId, cursor: Cursor): void {
    const held = this.cursors.get(peer);
    if (
      held?.storeId === cursor.storeId &&
      held.createdWallMs === cursor.createdWallMs &&
      held.seq === cursor.seq
    ) {
      return;
    }
    this.cursors.set(peer, cursor);
    this.cursorsMoved = true;
  }

  private pulledElsewhere(stamp: EntryStamp, except: Round): boolean {
    for (const round of this.rounds.values()) {
      if (round === except) continue;
      const pulling = round.pulling.get(stamp.path);
      if (pulling !== undefined && compareVersions(pulling, stamp.version) >= 0) return true;
    }
    return false;
  }

  private completeRoundIfDone(round: Round): void {
    if (round.phase !== "pull" || !round.lastEntriesSeen || round.tokensPending.size > 0) return;
    this.rounds.delete(round.peer);
    this.invariants.noteRoundCompleted(round);
    const { peer, roundId, pulled, more } = round;
    this.lastRounds.set(peer, { kind: round.kind, leftBehind: more || round.leftToOthers });
    // Applies may have moved the cursor past what this round read meanwhile: it never goes back.
    const cursor = this.cursors.get(peer);
    const after = round.cursorAfter;
    if (after !== null && !(cursor?.storeId === after.storeId && cursor.seq > after.seq)) {
      this.setCursor(peer, after);
    }
    this.event({ type: "round-completed", peer, roundId, pulled, more });
    if (more && (round.kind === "since" || pulled > 0)) {
      this.startRound(peer, round.kind, "continuing a bounded round");
      return;
    }
    // A digest round that ran to its end did what an owed one is for; after any other, the owed one starts.
    if (round.kind === "digest") this.digestsOwed.delete(peer);
    this.startOwedDigest(peer);
  }

  private abandonRound(round: Round, reason: string): void {
    this.rounds.delete(round.peer);
    for (const token of round.tokensPending) this.roundsByToken.delete(token);
    this.event({ type: "round-abandoned", peer: round.peer, roundId: round.roundId, reason });
  }

  // --- anti-entropy: responder (stateless) -------------------------------------------------------

  private onSince(from: NodeId, message: MessageOf<"since">): void {
    const { storeId, createdWallMs } = this.view.identity();
    // A cursor into another store (wiped, replaced) or past our last seq (restored from a copy) is stale.
    const valid = message.storeId === storeId && message.afterSeq <= this.view.lastSeq();
    const limit = Math.min(this.config.limits.stampsPerMessageMax, this.config.limits.pathsPerPullMax);
    const { stamps, upToSeq, more } = this.view.stampsSince(valid ? message.afterSeq : 0, {
      limit,
      seqSpanMax: limit * sinceSeqSpanPerStamp,
      skip: message.skip,
    });
    this.send(from, {
      type: "changes",
      roundId: message.roundId,
      storeId,
      createdWallMs,
      upToSeq,
      stamps,
      more,
    });
  }

  private onDigest(from: NodeId, message: MessageOf<"digest">): void {
    const ours = this.view.digest();
    const differing = differingBuckets(
      ours,
      message.buckets.map((b) => ({ ...b, count: 0 })),
    );
    // Start at a bucket that moves with the round, so that a bucket that cannot be repaired (say its
    // entries keep failing to persist) never starves the ones after it.
    const offset = differing.length > 0 ? message.roundId % differing.length : 0;
    differing.push(...differing.splice(0, offset));
    const buckets = bucketsThatFit(differing, ours, this.config.limits.stampsPerMessageMax);
    const stamps = buckets.length > 0 ? this.view.stampsInBuckets(buckets) : [];
    const more = buckets.length < differing.length;
    this.send(from, { type: "stamps", roundId: message.roundId, buckets, stamps, more });
  }

  private onPull(from: NodeId, message: MessageOf<"pull">): void {
    const { pathsPerPullMax, valueBytesPerPullMax } = this.config.limits;
    const entries: StoreEntry[] = [];
    let valueBytes = 0;
    // One path at a time, so that the byte bound also bounds what is loaded.
    for (const path of message.paths.slice(0, pathsPerPullMax)) {
      if (entries.length > 0 && valueBytes >= valueBytesPerPullMax) break;
      for (const entry of this.view.getMany([path])) {
        entries.push(entry);
        valueBytes += entry.value.byteLength;
      }
    }
    const chunks = chunkEntries(entries, this.config.limits);
    if (chunks.length === 0) chunks.push([]);
    chunks.forEach((entries, index) => {
      const last = index === chunks.length - 1;
      this.send(from, { type: "entries", roundId: message.roundId, entries, last });
    });
  }

  // --- helpers -----------------------------------------------------------------------------------

  /** Every cursor goes out in this Ready, replacing the saved ones. */
  private saveCursors(): void {
    this.cursorsMoved = false;
    this.ready_.cursors = [...this.cursors].map(([peer, cursor]) => ({ peer, ...cursor }));
  }

  /** Queues remote entries for durable merge; null when there is nothing to persist. */
  private requestPersist(from: NodeId, entries: StoreEntry[], origin: PersistOrigin | null): number | null {
    if (entries.length === 0 && origin?.kind !== "apply") return null;
    const token = this.persistTokenNext++;
    if (origin !== null) this.persistOrigins.set(token, origin);
    this.ready_.persist.push({ token, from, entries });
    return token;
  }

  private takeOrigin(token: number): PersistOrigin | undefined {
    const origin = this.persistOrigins.get(token);
    this.persistOrigins.delete(token);
    return origin;
  }

  private beginInput(input: StoreSyncInput): void {
    this.invariants.begin(input, this.ready_, this.checkedState);
  }

  private assertInvariants(): void {
    const violations = this.invariants.check(this.checkedState, this.ready_);
    if (violations.length > 0) throw new StoreSyncInvariantError(this.config.selfId, violations);
  }

  private send(to: NodeId, message: StoreSyncMessage): void {
    this.ready_.messages.push({ from: this.config.selfId, to, message } satisfies Envelope<StoreSyncMessage>);
  }

  private event(event: StoreSyncEvent): void {
    this.ready_.events.push(event);
  }

  private ignore(peer: NodeId, message: StoreSyncMessage, reason: string): void {
    this.event({ type: "message-ignored", peer, messageType: message.type, reason });
  }
}

/** Ticks until `timer` fires (0 once it has). */
function ticksLeft(timer: Timeout): number {
  return timer.afterTicks - timer.elapsedTicks;
}

function emptyReady(): StoreSyncReady {
  return { persist: [], cursors: null, messages: [], writeResults: [], events: [] };
}
