// The shell around the pure store sync core (src/core/store_sync.ts): owns the core, a monotonic ticker and
// the drain loop, and is the StoreService the API and CLI use. Drain order (see store_sync_types.ts): merge
// each persist batch durably (LocalStore.applyRemote commits before it returns) → send messages → settle
// writes → log → advance, then report the persisted tokens so that acks leave in the next turn. Everything
// is synchronous, so inputs from the mesh are stepped in turn and nothing interleaves with a drain.
// Group commit: local writes queue and commit together on the next turn of the event loop, one SQLite
// transaction (and one flush) for every request that arrived meanwhile; requests asking the same min_acks and
// timeout share one replicated write (one apply message per peer), and each gets its own entries back.
// Messages: one-way, on the channels of store_wire.ts, bounds-checked; garbage is logged and dropped.
// Durability: a commit returns before its fsync (LocalStore.flushed, src/store/wal_flusher.ts). Nothing claims
// it durable before the flush: a client's answer waits for it (and for min_acks peers, whose acks may come
// first), a peer's entries are reported persisted to the core (so acked, and cursors moved) only after it,
// and the change feed (onChange, changesSince, lastSeq: watch and the materialiser) stops at the last
// flushed seq. Peers are sent a write at once, while it is being flushed here.
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { compareVersions } from "../core/lww.ts";
import { StoreSync } from "../core/store_sync.ts";
import { DEFAULT_STORE_SYNC_LIMITS } from "../core/store_sync_config.ts";
import type {
  PeerCursor,
  PeerSyncProgress,
  PersistRequest,
  StoreSyncEvent,
  StoreSyncLimits,
  StoreSyncMessage,
  StoreSyncReady,
  WriteResult,
} from "../core/store_sync_types.ts";
import type { NodeId } from "../core/types.ts";
import { DEFAULT_MESH_LIMITS, type MeshApi } from "../mesh/index.ts";
import { DrainLoop, type MonotonicTicker, Ticker } from "../shell/index.ts";
import {
  channelOf,
  encodeStoreMessage,
  STORE_APPLY_CHANNEL,
  STORE_SYNC_CHANNEL,
  type StoreMessageDecoder,
  storeMessageDecoder,
} from "./store_wire.ts";
import {
  type LocalStore,
  type MinAcks,
  ReadOnlyReplicaError,
  type StoreChange,
  type StoreEntry,
  type StoreService,
  type StoreWrite,
  type WriteOutcome,
} from "./types.ts";

export interface ReplicatorOptions {
  selfId: NodeId;
  /**
   * Every other node (read-only replicas included): writes go to all of them, "all" counts all of them.
   * setPeers changes them when the cluster's membership does.
   */
  peers: readonly NodeId[];
  /** Serve and receive replication, refuse writes. */
  readOnly: boolean;
  store: LocalStore;
  mesh: Pick<MeshApi, "send" | "onMessage" | "on" | "peers">;
  logger: Logger;
  /** A write that has not reached minAcks by then resolves with acked=false (per-write timeoutMs overrides). */
  writeTimeoutMs: number;
  antiEntropyIntervalMs: number;
  /** An anti-entropy round without an answer for this long is abandoned (default 5 s). */
  roundTimeoutMs?: number;
  /** Every this many periodic rounds with a peer, one compares digests instead of change logs (default 12). */
  digestRoundEvery?: number;
  /** Resolution of the core's timers (default 20 ms); acks are handled as they arrive, not per tick. */
  tickMs?: number;
  /** Largest value a peer may send (the API's bound). */
  valueBytesMax: number;
  bucketCount?: number;
  limits?: Partial<StoreSyncLimits>;
  /** Wall clock for HLC versions (default Date.now). */
  nowWallMs?: () => number;
  /** The agent's shared ticker; one of its own by default. */
  ticker?: Ticker;
}

/** Timer resolution for write timeouts and anti-entropy rounds; acks are handled as they arrive, so a coarse
 * tick costs no latency, and an idle agent wakes up rarely. */
const tickMsDefault = 250;
const roundTimeoutMsDefault = 5000;
/** With the default 5 s interval and two peers: a digest round with each peer every two minutes. */
const digestRoundEveryDefault = 12;
/** Changes handed to onChange listeners per call; a larger commit arrives in several calls. */
const changesPerNotificationMax = 4096;
/** Received messages waiting for the next turn; a peer flooding past this loses messages, not memory. */
const inboxMessagesMax = 16_384;
/** Longest sleep between timer wake-ups (the core may need none while idle): within the catch-up bound. */
const sleepTicksMax = 1_000;

/** One caller of write(), waiting for its entries. */
interface WriteRequest {
  entries: StoreEntry[];
  resolve: (outcome: WriteOutcome) => void;
  reject: (error: unknown) => void;
}

/** A write() call waiting for the next group commit. */
interface QueuedWrite {
  writes: readonly StoreWrite[];
  minAcks: MinAcks;
  timeoutTicks: number | undefined;
  resolve: (outcome: WriteOutcome) => void;
  reject: (error: unknown) => void;
}

/** The requests of one group commit that share a replicated write (same min_acks and timeout). */
interface PendingWrite {
  minAcks: MinAcks;
  timeoutTicks: number | undefined;
  requests: WriteRequest[];
  /** The local commit is on disk. */
  flushed: boolean;
  /** The core's latest result, held until the flush. */
  result: WriteResult | null;
}

export class Replicator implements StoreService {
  readonly readOnly: boolean;
  private readonly selfId: NodeId;
  /** The current peers (setPeers): link events of other nodes are not the core's business. */
  private readonly peers: Set<NodeId>;
  private readonly store: LocalStore;
  private readonly mesh: Pick<MeshApi, "send" | "onMessage" | "on" | "peers">;
  private readonly logger: Logger;
  private readonly core: StoreSync;
  private readonly ticker: MonotonicTicker;
  private readonly tickMs: number;
  private readonly decode: StoreMessageDecoder;
  private readonly nowWallMs: () => number;
  /** Write ids stay unique across restarts: an ack meant for an earlier process never counts. */
  private readonly bootId = randomBytes(6).toString("hex");
  private writeSeq = 0;
  private readonly pending = new Map<string, PendingWrite>();
  private readonly queued: QueuedWrite[] = [];
  private commitScheduled: NodeJS.Immediate | null = null;
  private readonly listeners = new Set<(changes: readonly StoreChange[]) => void>();
  /** The change feed's end: every commit up to it is flushed and was handed to the listeners. */
  private feedSeq: number;
  /** The highest seq the feed already waits for a flush of. */
  private feedAsked: number;
  private flushFailureLogged = false;
  private readonly drainLoop: DrainLoop<StoreSyncReady>;
  /** Mesh subscriptions, released at stop(). */
  private unsubscribes: Array<() => void> = [];
  /** Merged remote batches of the current drain, reported persisted once flushed. */
  private merged: number[] = [];
  private readonly inbox: Array<{ from: NodeId; message: StoreSyncMessage }> = [];
  private flushScheduled: NodeJS.Immediate | null = null;
  private stopped = false;

  get peerCount(): number {
    return this.peers.size;
  }

  constructor(options: ReplicatorOptions) {
    this.readOnly = options.readOnly;
    this.selfId = options.selfId;
    this.peers = new Set(options.peers);
    this.store = options.store;
    this.mesh = options.mesh;
    this.logger = options.logger;
    this.nowWallMs = options.nowWallMs ?? Date.now;
    this.tickMs = options.tickMs ?? tickMsDefault;
    this.feedSeq = this.store.lastSeq();
    this.feedAsked = this.feedSeq;
    const limits: StoreSyncLimits = { ...DEFAULT_STORE_SYNC_LIMITS, ...options.limits };
    this.core = new StoreSync(
      {
        selfId: options.selfId,
        peers: options.peers,
        writeTimeoutTicks: this.ticksOf(options.writeTimeoutMs),
        antiEntropyIntervalTicks: this.ticksOf(options.antiEntropyIntervalMs),
        roundTimeoutTicks: this.ticksOf(options.roundTimeoutMs ?? roundTimeoutMsDefault),
        digestRoundEvery: options.digestRoundEvery ?? digestRoundEveryDefault,
        limits,
      },
      this.store,
    );
    this.decode = storeMessageDecoder({
      sync: limits,
      valueBytesMax: options.valueBytesMax,
      messageBytesMax: DEFAULT_MESH_LIMITS.frameBytesMax,
      bucketCount: options.bucketCount ?? 256,
    });
    this.ticker = (options.ticker ?? new Ticker()).every(this.tickMs, (count) => {
      for (let i = 0; i < count; i++) this.core.tick();
      this.drain();
    });
    this.drainLoop = new DrainLoop(this.core, (ready) => this.handleReady(ready));
  }

  /** The mesh channels this replicator listens on. */
  static readonly channels = [STORE_APPLY_CHANNEL, STORE_SYNC_CHANNEL] as const;

  start(): void {
    if (this.unsubscribes.length > 0) return;
    this.stopped = false;
    const peers = this.peers;
    const mesh = this.mesh;
    this.unsubscribes = [
      ...Replicator.channels.map((channel) =>
        mesh.onMessage(channel, (from, payload) => this.receive(from, payload)),
      ),
      mesh.on("link:up", (peer) => this.input(() => peers.has(peer) && this.core.linkUp(peer))),
      // A renewed link replaced one that may have lost messages (see Mesh.renew): catch up as on link-up.
      mesh.on("link:renewed", (peer) => this.input(() => peers.has(peer) && this.core.linkUp(peer))),
      mesh.on("link:down", (peer) => this.input(() => peers.has(peer) && this.core.linkDown(peer))),
    ];
    this.ticker.start();
    // Links that came up before this replicator existed get their first round now, not a period later.
    for (const link of this.mesh.peers()) {
      if (link.connected && this.peers.has(link.id)) this.input(() => this.core.linkUp(link.id));
    }
  }

  /** Stops the timers and leaves the mesh; writes still waiting resolve as not acknowledged. */
  stop(): void {
    this.stopped = true;
    this.ticker.stop();
    for (const unsubscribe of this.unsubscribes.splice(0)) unsubscribe();
    if (this.flushScheduled !== null) clearImmediate(this.flushScheduled);
    this.flushScheduled = null;
    if (this.commitScheduled !== null) clearImmediate(this.commitScheduled);
    this.commitScheduled = null;
    this.inbox.length = 0;
    for (const queued of this.queued.splice(0)) queued.reject(new Error("replicator is stopped"));
    for (const [writeId, write] of this.pending) {
      this.pending.delete(writeId);
      for (const request of write.requests) {
        request.resolve({ entries: request.entries, hostsOk: [], hostsErr: [], acked: false });
      }
    }
  }

  write(
    writes: readonly StoreWrite[],
    options: { minAcks: MinAcks; timeoutMs?: number },
  ): Promise<WriteOutcome> {
    if (this.readOnly) {
      return Promise.reject(new ReadOnlyReplicaError(`node ${this.selfId} is a read-only replica`));
    }
    if (this.stopped) return Promise.reject(new Error("replicator is stopped"));
    let timeoutTicks: number | undefined;
    try {
      timeoutTicks = options.timeoutMs === undefined ? undefined : this.ticksOf(options.timeoutMs);
    } catch (error) {
      return Promise.reject(error);
    }
    const { minAcks } = options;
    return new Promise<WriteOutcome>((resolve, reject) => {
      this.queued.push({ writes, minAcks, timeoutTicks, resolve, reject });
      this.commitScheduled ??= setImmediate(() => this.commitQueued());
    });
  }

  get(path: string): StoreEntry | null {
    return this.store.get(path);
  }

  list(prefix: string, options: { after?: string; limit: number }): StoreEntry[] {
    return this.store.list(prefix, options);
  }

  /** Only flushed changes: a page may stop short of `limit` while the rest is being flushed. */
  changesSince(afterSeq: number, limit: number): StoreChange[] {
    const end = this.feedSeq;
    return afterSeq >= end ? [] : this.store.changesSince(afterSeq, limit).filter((c) => c.seq <= end);
  }

  /** The last flushed seq (see changesSince). */
  lastSeq(): number {
    return this.feedSeq;
  }

  onChange(listener: (changes: readonly StoreChange[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Writes still tracked and anti-entropy rounds in flight. */
  status(): ReturnType<StoreSync["status"]> {
    return this.core.status();
  }

  /**
   * The cluster's membership changed: `peers` are every other node from now on (StoreSync.setPeers says
   * what becomes of writes in flight and of a removed peer's state). An added peer whose link is up
   * already gets its first round at once; one whose link comes up later, then. Throws on a set that names
   * this node or a peer twice.
   */
  setPeers(peers: readonly NodeId[]): void {
    const added = peers.filter((peer) => !this.peers.has(peer));
    this.input(() => {
      this.core.setPeers(peers);
      this.peers.clear();
      for (const peer of peers) this.peers.add(peer);
      for (const link of this.mesh.peers()) {
        if (link.connected && added.includes(link.id)) this.core.linkUp(link.id);
      }
    });
  }

  /**
   * How far this node has caught up with `peer` (StoreSync.syncProgress states the rule): a learner is
   * ready for promotion once it is caught up with every peer.
   */
  syncProgress(peer: NodeId): PeerSyncProgress {
    return this.core.syncProgress(peer);
  }

  /**
   * Commits every queued write in one transaction, in arrival order, and hands each request its own
   * entries. A failed commit changes nothing and fails every request of the group with its reason.
   */
  private commitQueued(): void {
    this.commitScheduled = null;
    const group = this.queued.splice(0);
    if (this.stopped || group.length === 0) return;
    this.ticker.catchUp();
    const seqBefore = this.store.lastSeq();
    let entries: StoreEntry[];
    try {
      entries = this.store.writeLocal(
        group.flatMap((queued) => queued.writes),
        this.nowWallMs(),
      );
    } catch (error) {
      for (const queued of group) queued.reject(error);
      return;
    }
    const shared = new Map<string, PendingWrite>();
    let offset = 0;
    for (const queued of group) {
      const request = {
        entries: entries.slice(offset, offset + queued.writes.length),
        resolve: queued.resolve,
        reject: queued.reject,
      };
      offset += queued.writes.length;
      const key = `${queued.minAcks}/${queued.timeoutTicks ?? ""}`;
      const write = shared.get(key);
      if (write === undefined) {
        const { minAcks, timeoutTicks } = queued;
        shared.set(key, { minAcks, timeoutTicks, requests: [request], flushed: false, result: null });
      } else write.requests.push(request);
    }
    // One write per distinct (minAcks, timeout); the usual single one holds the whole commit, whose entries
    // took the seqs after seqBefore in order, so peers can move their cursors into our change log with it.
    const firstSeq = shared.size === 1 ? seqBefore + 1 : null;
    const writeIds: string[] = [];
    for (const write of shared.values()) {
      const writeId = `${this.bootId}.${++this.writeSeq}`;
      writeIds.push(writeId);
      this.pending.set(writeId, write);
      const written = write.requests.flatMap((request) => request.entries);
      this.core.localCommitted(writeId, written, write.minAcks, write.timeoutTicks, firstSeq);
    }
    this.store.flushed((error) => this.localFlushed(writeIds, error));
    this.drain();
  }

  /** The group's commit is on disk (or never will be: its requests fail, whatever peers said). */
  private localFlushed(writeIds: readonly string[], error: Error | null): void {
    for (const writeId of writeIds) {
      const write = this.pending.get(writeId);
      if (write === undefined) continue;
      if (error !== null) {
        this.flushFailed(error);
        this.pending.delete(writeId);
        for (const request of write.requests) request.reject(error);
        continue;
      }
      write.flushed = true;
      if (write.result !== null) this.settle(write.result);
    }
  }

  private ticksOf(ms: number): number {
    if (!(ms > 0)) throw new RangeError(`durations must be > 0 ms, got ${ms}`);
    return Math.max(1, Math.ceil(ms / this.tickMs));
  }

  /**
   * Messages queue and are stepped together on the next turn of the event loop (own pace: a burst of
   * applies becomes one drain and one SQLite transaction and flush, not one per message).
   */
  private receive(from: NodeId, payload: Uint8Array): void {
    if (this.stopped) return;
    const decoded = this.decode(payload);
    if (!decoded.ok) {
      this.logger.warn({ peer: from, reason: decoded.reason }, "dropped store message");
      return;
    }
    if (this.inbox.length >= inboxMessagesMax) {
      // The sender's timeouts and anti-entropy cover what is dropped here.
      this.logger.warn({ peer: from, type: decoded.message.type }, "store inbox full, message dropped");
      return;
    }
    this.inbox.push({ from, message: decoded.message });
    this.flushScheduled ??= setImmediate(() => this.flushInbox());
  }

  private flushInbox(): void {
    this.flushScheduled = null;
    const inbox = this.inbox.splice(0);
    this.input(() => {
      for (const { from, message } of inbox) this.core.step(from, message);
    });
  }

  /** Time first (a stalled node must see its timeouts before it acts), then the input, then drain. */
  private input(feed: () => unknown): void {
    if (this.stopped) return;
    this.ticker.catchUp();
    feed();
    this.drain();
  }

  private drain(): void {
    if (!this.drainLoop.run()) return;
    const merged = this.merged;
    this.merged = [];
    if (merged.length > 0) this.store.flushed((error) => this.remoteFlushed(merged, error));
    this.feedAfterFlush();
    // Ticks before the core's next timer only count: sleep through them (every input catches up first).
    this.ticker.wakeAfter(Math.min(this.core.ticksUntilTimer(), sleepTicksMax));
  }

  /** Merge durably → save cursors → send → settle → log; failed merges are stepped after advance. */
  private handleReady(ready: StoreSyncReady): () => void {
    const outcomes = this.persist(ready.persist);
    if (ready.cursors !== null) this.saveCursors(ready.cursors);
    this.sendAll(ready.messages);
    for (const result of ready.writeResults) this.settle(result);
    for (const event of ready.events) this.logEvent(event);
    return () => {
      for (const { token, error } of outcomes) {
        if (error === null) this.merged.push(token);
        else this.core.persistFailed(token, error);
      }
    };
  }

  /** Merged remote entries are on disk: now they may be acked and count for cursors (or fail, if not). */
  private remoteFlushed(tokens: readonly number[], error: Error | null): void {
    if (error !== null) this.flushFailed(error);
    const reason = error?.message ?? "";
    this.input(() => {
      for (const token of tokens) {
        if (error === null) this.core.persisted(token);
        else this.core.persistFailed(token, reason);
      }
    });
  }

  /** Losing them only means re-reading peers' change logs after a restart: a failure is logged, not fatal. */
  private saveCursors(cursors: readonly PeerCursor[]): void {
    try {
      this.store.saveSyncCursors(cursors);
    } catch (error) {
      this.logger.warn({ err: error }, "store: cannot save anti-entropy cursors");
    }
  }

  /** A message addressed to several peers (an apply) is encoded once. */
  private sendAll(envelopes: StoreSyncReady["messages"]): void {
    const encoded = new Map<StoreSyncMessage, Uint8Array>();
    for (const { to, message } of envelopes) {
      let payload = encoded.get(message);
      if (payload === undefined) {
        payload = encodeStoreMessage(message);
        encoded.set(message, payload);
      }
      const sent = this.mesh.send(to, channelOf(message), payload);
      if (sent !== "sent")
        this.logger.debug({ peer: to, type: message.type, sent }, "store message not sent");
    }
  }

  /**
   * Merges the remote batches durably in one transaction. A batch counts as persisted only if we now hold
   * each of its entries' versions or a newer one: the store skips an entry whose clock is too far ahead,
   * and an ack must never claim it.
   */
  private persist(requests: readonly PersistRequest[]): Array<{ token: number; error: string | null }> {
    const entries = requests.flatMap((r) => r.entries);
    if (requests.length === 0) return [];
    let won: StoreEntry[];
    try {
      won = this.store.applyRemote(entries, this.nowWallMs());
    } catch (error) {
      this.logger.error({ err: error, entries: entries.length }, "could not persist remote entries");
      const reason = error instanceof Error ? error.message : String(error);
      return requests.map(({ token }) => ({ token, error: reason }));
    }
    if (won.length === entries.length) return requests.map(({ token }) => ({ token, error: null }));
    const held = new Map(this.store.getMany(entries.map((e) => e.path)).map((e) => [e.path, e.version]));
    return requests.map(({ token, from, entries }) => {
      const missing = entries.filter((e) => {
        const version = held.get(e.path);
        return version === undefined || compareVersions(version, e.version) < 0;
      });
      if (missing.length === 0) return { token, error: null };
      this.logger.warn(
        { peer: from, skipped: missing.length },
        "remote entries skipped (clock too far ahead)",
      );
      return { token, error: `${missing.length} entries skipped` };
    });
  }

  private settle(result: WriteResult): void {
    const write = this.pending.get(result.writeId);
    if (write !== undefined && !write.flushed) {
      write.result = result;
      return;
    }
    if (write === undefined) {
      // A later result of a resolved write: late acks or the final tally, for the log only.
      const level = result.hostsErr.length > 0 ? "info" : "debug";
      this.logger[level](
        { writeId: result.writeId, hostsOk: result.hostsOk, hostsErr: result.hostsErr },
        "write replication finished",
      );
      return;
    }
    this.pending.delete(result.writeId);
    const { hostsOk, hostsErr, acked } = result;
    for (const request of write.requests)
      request.resolve({ entries: request.entries, hostsOk, hostsErr, acked });
  }

  /** Logged once: from then on every write fails and nothing is acknowledged (see wal_flusher.ts). */
  private flushFailed(error: Error): void {
    if (this.flushFailureLogged) return;
    this.flushFailureLogged = true;
    this.logger.error(
      { err: error },
      "store: commits could not be flushed to disk; writes fail and nothing is acknowledged until the agent restarts (check the disk)",
    );
  }

  /** Moves the change feed to what is committed now, once that is flushed. */
  private feedAfterFlush(): void {
    const seqAfter = this.store.lastSeq();
    if (seqAfter <= this.feedAsked) return;
    this.feedAsked = seqAfter;
    this.store.flushed((error) => {
      // A failed flush is logged where it hurts (writes, acks); the feed stays where it was.
      if (error === null && !this.stopped) this.notify(seqAfter);
    });
  }

  /** Moves the feed to `seqAfter` and hands the changes up to it to the listeners; a throwing one is logged. */
  private notify(seqAfter: number): void {
    const seqBefore = this.feedSeq;
    if (seqAfter <= seqBefore) return;
    this.feedSeq = seqAfter;
    if (this.listeners.size === 0) return;
    for (let seq = seqBefore; seq < seqAfter; ) {
      // The feed's own view: it stops at seqAfter, later commits wait for their own flush.
      const changes = this.changesSince(seq, changesPerNotificationMax);
      if (changes.length === 0) break;
      seq = changes.length < changesPerNotificationMax ? seqAfter : changes[changes.length - 1]!.seq;
      for (const listener of [...this.listeners]) {
        try {
          listener(changes);
        } catch (error) {
          this.logger.error({ err: error }, "store change listener threw");
        }
      }
    }
  }

  private logEvent(event: StoreSyncEvent): void {
    const { type, ...fields } = event;
    // Abandoned rounds point at an unreachable or overloaded peer; ignored messages are mostly stale answers.
    if (type === "round-abandoned" || type === "peers-changed") this.logger.info(fields, `store ${type}`);
    else this.logger.debug(fields, `store ${type}`);
  }
}
