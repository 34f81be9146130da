// The store sync core tests' harness: nodes with a real core over a memory store, one shared FIFO of
// messages that a test delivers (or drops, duplicates, reorders) explicitly.
import assert from "node:assert/strict";
import { StoreSync } from "../../../src/core/store_sync.ts";
import { DEFAULT_STORE_SYNC_LIMITS } from "../../../src/core/store_sync_config.ts";
import type {
  Envelope,
  PersistRequest,
  StoreSyncConfig,
  StoreSyncEvent,
  StoreSyncMessage,
  WriteResult,
} from "../../../src/core/store_sync_types.ts";
import type { NodeId } from "../../../src/core/types.ts";
import { MemoryLocalStore } from "../../support/memory_local_store.ts";

// Wall time is fixed: these tests are about the protocol, not the clock.
export const nowWallMs = 1_700_000_000_000;
const encoder = new TextEncoder();

export interface Node {
  id: NodeId;
  core: StoreSync;
  store: MemoryLocalStore;
  /** false: persist requests wait in `held` until persistHeld(). */
  autoPersist: boolean;
  held: PersistRequest[];
  results: WriteResult[];
  events: StoreSyncEvent[];
}

export class Harness {
  readonly nodes = new Map<NodeId, Node>();
  queue: Envelope<StoreSyncMessage>[] = [];
  readonly sent: Envelope<StoreSyncMessage>[] = [];
  private writeIdNext = 1;
  private readonly overrides: Partial<StoreSyncConfig>;

  constructor(ids: readonly NodeId[], overrides: Partial<StoreSyncConfig> = {}, bucketCount = 256) {
    this.overrides = overrides;
    for (const id of ids) {
      const store = new MemoryLocalStore({ nodeId: id, bucketCount });
      const core = new StoreSync(this.config(id, ids), store);
      this.nodes.set(id, { id, store, core, autoPersist: true, held: [], results: [], events: [] });
    }
  }

  /** A crash and restart: a new core over the same store, with `peers`, and nothing in flight kept. */
  restart(id: NodeId, peers: readonly NodeId[]): void {
    const node = this.node(id);
    node.core = new StoreSync(this.config(id, peers), node.store);
    node.held.length = 0;
    this.queue = this.queue.filter((e) => e.from !== id && e.to !== id);
    this.drain(node);
  }

  private config(id: NodeId, peers: readonly NodeId[]): StoreSyncConfig {
    return {
      selfId: id,
      peers: peers.filter((p) => p !== id),
      writeTimeoutTicks: 10,
      antiEntropyIntervalTicks: 1000,
      roundTimeoutTicks: 5,
      digestRoundEvery: 4,
      limits: DEFAULT_STORE_SYNC_LIMITS,
      ...this.overrides,
    };
  }

  node(id: NodeId): Node {
    const node = this.nodes.get(id);
    assert.ok(node, `no node ${id}`);
    return node;
  }

  /** Commits locally, then feeds the core as the shell does; returns the write id. */
  write(
    id: NodeId,
    paths: Record<string, string | null>,
    minAcks: number | "all" = 1,
    timeoutTicks?: number,
  ): string {
    const node = this.node(id);
    const writes = Object.entries(paths).map(([path, v]) => ({
      path,
      value: v === null ? null : encoder.encode(v),
    }));
    const firstSeq = node.store.lastSeq() + 1;
    const entries = node.store.writeLocal(writes, nowWallMs);
    const writeId = `${id}.${this.writeIdNext++}`;
    node.core.localCommitted(writeId, entries, minAcks, timeoutTicks, firstSeq);
    this.drain(node);
    return writeId;
  }

  drain(node: Node): void {
    while (node.core.hasReady()) {
      const ready = node.core.ready();
      for (const request of ready.persist) {
        if (node.autoPersist) this.persist(node, request);
        else node.held.push(request);
      }
      if (ready.cursors !== null) node.store.saveSyncCursors(ready.cursors);
      this.queue.push(...ready.messages);
      this.sent.push(...ready.messages);
      node.results.push(...ready.writeResults);
      node.events.push(...ready.events);
      node.core.advance(ready);
    }
  }

  persistHeld(id: NodeId): void {
    const node = this.node(id);
    for (const request of node.held.splice(0)) this.persist(node, request);
    this.drain(node);
  }

  /** Delivers queued messages (and what they cause) until none are left; `drop` loses some. */
  deliverAll(drop: (e: Envelope<StoreSyncMessage>) => boolean = () => false, stepsMax = 10_000): void {
    for (let steps = 0; this.queue.length > 0; steps++) {
      assert.ok(steps < stepsMax, "messages kept flowing");
      const envelope = this.queue.shift()!;
      if (!drop(envelope)) this.deliver(envelope);
    }
  }

  deliver(envelope: Envelope<StoreSyncMessage>): void {
    const node = this.node(envelope.to);
    node.core.step(envelope.from, envelope.message);
    this.drain(node);
  }

  tick(id: NodeId, ticks = 1): void {
    const node = this.node(id);
    for (let i = 0; i < ticks; i++) node.core.tick();
    this.drain(node);
  }

  linkUp(id: NodeId, peer: NodeId): void {
    this.node(id).core.linkUp(peer);
    this.drain(this.node(id));
  }

  linkDown(id: NodeId, peer: NodeId): void {
    this.node(id).core.linkDown(peer);
    this.drain(this.node(id));
  }

  /**
   * One tick of a clock on which every message takes a tick: delivers what was queued before it (losing what
   * goes to or comes from a node in `dead`), then ticks every other node once.
   */
  runTick(dead: ReadonlySet<NodeId> = new Set()): void {
    for (const envelope of this.queue.splice(0)) {
      if (!dead.has(envelope.from) && !dead.has(envelope.to)) this.deliver(envelope);
    }
    for (const id of this.nodes.keys()) if (!dead.has(id)) this.tick(id);
  }

  setPeers(id: NodeId, peers: readonly NodeId[]): void {
    this.node(id).core.setPeers(peers);
    this.drain(this.node(id));
  }

  /** Paths offered in the `changes` answers sent so far (by `from`, when given). */
  offered(from?: NodeId): string[] {
    return this.sent.flatMap((e) =>
      e.message.type === "changes" && (from === undefined || e.from === from)
        ? e.message.stamps.map((s) => s.path)
        : [],
    );
  }

  /** The first message of this type sent so far; fails the test when there is none. */
  firstSent<T extends StoreSyncMessage["type"]>(type: T): Extract<StoreSyncMessage, { type: T }> {
    const message = this.sent.find((e) => e.message.type === type)?.message;
    assert.ok(message !== undefined, `no ${type} message was sent`);
    return message as Extract<StoreSyncMessage, { type: T }>;
  }

  /** Path → "value@version" of every entry (tombstones included) on a node. */
  contents(id: NodeId): Map<string, string> {
    const entries = this.node(id).store.all();
    const describe = (e: (typeof entries)[number]) =>
      `${e.deleted ? "<deleted>" : new TextDecoder().decode(e.value)}@${e.version.wallMs}.${e.version.counter}.${e.version.nodeId}`;
    const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : 1));
    return new Map(sorted.map((e) => [e.path, describe(e)]));
  }

  private persist(node: Node, request: PersistRequest): void {
    node.store.applyRemote(request.entries, nowWallMs);
    node.core.persisted(request.token);
  }
}

export function completedRounds(node: Node): number {
  return node.events.filter((e) => e.type === "round-completed").length;
}
