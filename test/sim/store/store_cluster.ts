// N real store sync cores on one virtual clock and one virtual network (test/sim/clock.ts, network.ts).
// Each node keeps an in-memory LocalStore that loses nothing committed, and is drained as the shell drains
// it (src/store/replicator.ts): merge each persist batch, send, hand out write results, advance, then
// report the batches persisted once they are flushed: at once, or after a random flush delay (the
// replicator's fsync on the thread pool), with other inputs stepped meanwhile. A crash drops the core (writes
// in flight, rounds, unsent acks) and keeps the store, and its peers see its link go down; a torn crash
// strikes inside a drain, between two persist batches. A restart builds a
// new core over the same store, and the mesh reports the links up on both sides. Membership may change:
// setPeers gives one node its new peers (a node outside the cluster has none), and the mesh reports the
// link to each added peer up, on both sides when that peer lists it too. Each node's wall clock
// (for HLC versions) is the global time plus its own skew. The simulator ticks every core on every tick,
// and checks the sleep the shell would take: no tick before the one ticksUntilTimer() named does anything.
import type { Prng } from "../../../src/core/prng.ts";
import { StoreSync } from "../../../src/core/store_sync.ts";
import type {
  StoreSyncConfig,
  StoreSyncEvent,
  StoreSyncLimits,
  StoreSyncMessage,
  StoreView,
  SyncMinAcks,
} from "../../../src/core/store_sync_types.ts";
import type { Envelope, NodeId } from "../../../src/core/types.ts";
import type { StoreWrite } from "../../../src/store/types.ts";
import { MemoryLocalStore } from "../../support/memory_local_store.ts";
import { NodeClock, unitsPerTick } from "../clock.ts";
import { Network, type NetworkOptions } from "../network.ts";
import { AckedWriteChecker, StoreViolationError } from "./store_checkers.ts";

/** The surface of src/core/store_sync.ts the simulator drives (tests swap in deliberately broken cores). */
export type SyncCore = Pick<
  StoreSync,
  | "localCommitted"
  | "step"
  | "tick"
  | "persisted"
  | "persistFailed"
  | "linkUp"
  | "linkDown"
  | "hasReady"
  | "ready"
  | "advance"
  | "status"
  | "ticksUntilTimer"
  | "setPeers"
  | "syncProgress"
>;

export type SyncFactory = (config: StoreSyncConfig, view: StoreView) => SyncCore;

export const realSync: SyncFactory = (config, view) => new StoreSync(config, view);

/** Wall clock of the simulation's start: any plausible epoch works, the HLC only needs it positive. */
const epochWallMs = 1_700_000_000_000;

/** One input yields a Ready or two; a core that keeps producing them is stuck in a loop. */
const readiesPerDrainMax = 64;

export interface StoreNodeSpec {
  id: NodeId;
  /** Clock rate error, see clock.ts. */
  drift: number;
  firstTickUnits: number;
  /** This node's wall clock minus true time, in ms (HLC input). */
  skewMs: number;
}

export interface StoreClusterOptions {
  rng: Prng;
  nodes: readonly StoreNodeSpec[];
  /** The nodes in the cluster at start (default: all); the others start with no peers, to join later. */
  members?: readonly NodeId[];
  /** Wall milliseconds per nominal tick. */
  tickMs: number;
  writeTimeoutTicks: number;
  antiEntropyIntervalTicks: number;
  roundTimeoutTicks: number;
  digestRoundEvery: number;
  limits: StoreSyncLimits;
  bucketCount: number;
  clockSkewMsMax: number;
  network: NetworkOptions;
  /** Merged batches are reported persisted after 0..this many units (0: in the same drain). */
  flushDelayUnitsMax?: number;
  createSync?: SyncFactory;
  log?: (line: string) => void;
  logMessages?: boolean;
}

interface SimNode {
  readonly spec: StoreNodeSpec;
  /** Its peers are the node's current view of the cluster: a restart boots with them. */
  config: StoreSyncConfig;
  readonly clock: NodeClock;
  readonly store: MemoryLocalStore;
  /** null while crashed. */
  core: SyncCore | null;
  boots: number;
  writeSeq: number;
  /** Persist batches left before a torn crash inside a drain; null when none is armed. */
  crashAfterPersists: number | null;
  /** Merged batches waiting for their flush, by due time (a crash drops them with the core). */
  flushes: Array<{ atUnits: number; tokens: number[] }>;
  /** Ticks the core said would do nothing (ticksUntilTimer() - 1 after its last drain), still to come. */
  quietTicks: number;
}

export class StoreCluster {
  readonly network: Network<StoreSyncMessage>;
  readonly checker: AckedWriteChecker;
  readonly ids: readonly NodeId[];
  nowUnits = 0;
  eventsProcessed = 0;
  writesIssued = 0;
  private readonly options: StoreClusterOptions;
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly createSync: SyncFactory;
  private readonly flushRng: Prng;

  constructor(options: StoreClusterOptions) {
    this.options = options;
    this.createSync = options.createSync ?? realSync;
    this.flushRng = options.rng.fork("flush");
    this.ids = options.nodes.map((n) => n.id);
    this.network = new Network(this.ids, options.network, options.rng.fork("network"));
    this.checker = new AckedWriteChecker((id) => this.node(id).store);
    const members = options.members ?? this.ids;
    for (const spec of options.nodes) {
      const store = new MemoryLocalStore({
        nodeId: spec.id,
        bucketCount: options.bucketCount,
        clockSkewMsMax: options.clockSkewMsMax,
      });
      const config: StoreSyncConfig = {
        selfId: spec.id,
        peers: members.includes(spec.id) ? members.filter((id) => id !== spec.id) : [],
        writeTimeoutTicks: options.writeTimeoutTicks,
        antiEntropyIntervalTicks: options.antiEntropyIntervalTicks,
        roundTimeoutTicks: options.roundTimeoutTicks,
        digestRoundEvery: options.digestRoundEvery,
        limits: options.limits,
      };
      const clock = new NodeClock({ drift: spec.drift, firstTickUnits: spec.firstTickUnits });
      const node: SimNode = {
        spec,
        config,
        clock,
        store,
        core: null,
        boots: 0,
        writeSeq: 0,
        crashAfterPersists: null,
        flushes: [],
        quietTicks: 0,
      };
      this.nodes.set(spec.id, node);
    }
    for (const node of this.nodes.values()) this.boot(node);
  }

  /** Processes every event due up to and including `untilUnits`, then sets the clock there. */
  runUntil(untilUnits: number): void {
    for (;;) {
      const next = this.nextEvent();
      if (next.atUnits > untilUnits) break;
      this.nowUnits = next.atUnits;
      if (next.node === null) this.deliver(this.network.popDue(this.nowUnits));
      else if (next.flush) this.flush(next.node);
      else this.wake(next.node);
      this.eventsProcessed++;
    }
    this.nowUnits = untilUnits;
  }

  runTicks(ticks: number): void {
    this.runUntil(this.nowUnits + ticks * unitsPerTick);
  }

  isAlive(id: NodeId): boolean {
    return this.node(id).core !== null;
  }

  store(id: NodeId): MemoryLocalStore {
    return this.node(id).store;
  }

  /** Stores of the live nodes. */
  liveStores(): Map<NodeId, MemoryLocalStore> {
    return new Map([...this.nodes].filter(([, n]) => n.core !== null).map(([id, n]) => [id, n.store]));
  }

  core(id: NodeId): SyncCore | null {
    return this.node(id).core;
  }

  /** A client write on `id`: commit locally, then hand it to the core, as Replicator.write does. */
  write(id: NodeId, writes: readonly StoreWrite[], minAcks: SyncMinAcks): void {
    const node = this.live(id);
    const firstSeq = node.store.lastSeq() + 1;
    const entries = node.store.writeLocal(writes, this.wallMs(node));
    const writeId = `${id}#${node.boots}.${++node.writeSeq}`;
    this.writesIssued++;
    this.checker.recordWrite(writeId, id, entries);
    const described = writes.map((w) => `${w.path}${w.value === null ? " (delete)" : ""}`).join(", ");
    this.line(`${id} write ${writeId} [${described}] minAcks=${minAcks}`);
    node.core.localCommitted(writeId, entries, minAcks, undefined, firstSeq);
    this.drain(node);
  }

  crash(id: NodeId): void {
    const node = this.node(id);
    if (node.core === null) return;
    node.core = null;
    node.crashAfterPersists = null;
    node.flushes.length = 0;
    this.line(`${id} crash (store keeps ${node.store.all().length} entries)`);
    // Its peers' links to it drop at once, as a kill -9 closes its sockets.
    for (const other of this.nodes.values()) {
      if (other.config.peers.includes(id)) {
        other.core?.linkDown(id);
        this.drain(other);
      }
    }
  }

  /** Arms a crash inside this node's next drain, before its `persists`+1-th persist batch. */
  crashAtPersist(id: NodeId, persists: number): void {
    const node = this.node(id);
    if (node.core !== null) node.crashAfterPersists = persists;
  }

  disarmTornCrash(id: NodeId): void {
    this.node(id).crashAfterPersists = null;
  }

  restart(id: NodeId): void {
    const node = this.node(id);
    if (node.core !== null) return;
    node.clock.restartAt(this.nowUnits);
    this.boot(node);
  }

  /** The peers `id` knows now; a crashed node boots with them. */
  peersOf(id: NodeId): readonly NodeId[] {
    return this.node(id).config.peers;
  }

  /** Node `id` learns the cluster's new membership: `peers` are every other member (none if it is out). */
  setPeers(id: NodeId, peers: readonly NodeId[]): void {
    const node = this.node(id);
    const added = peers.filter((peer) => !node.config.peers.includes(peer));
    node.config = { ...node.config, peers: [...peers] };
    this.line(`${id} peers [${peers.join(",")}]`);
    if (node.core === null) return;
    node.core.setPeers(peers);
    this.drain(node);
    for (const peer of added) {
      const other = this.node(peer);
      if (other.core === null) continue;
      this.linkUp(node, peer);
      if (other.config.peers.includes(id)) this.linkUp(other, id);
    }
  }

  /** The mesh reconnects every pair of live nodes (the network healed): both sides see link up. */
  linksUp(): void {
    for (const node of this.nodes.values()) {
      for (const peer of node.config.peers) {
        if (node.core !== null && this.isAlive(peer)) this.linkUp(node, peer);
      }
    }
  }

  /** Writes a line to the transcript (faults decided outside the cluster use it too). */
  line(text: string): void {
    this.options.log?.(`[${(this.nowUnits / unitsPerTick).toFixed(3).padStart(9)}] ${text}`);
  }

  private boot(node: SimNode): void {
    node.boots++;
    node.core = this.createSync(node.config, node.store);
    this.line(`${node.spec.id} boot #${node.boots} (${node.store.all().length} entries)`);
    this.drain(node);
    for (const peer of node.config.peers) {
      const other = this.node(peer);
      if (other.core === null) continue;
      this.linkUp(node, peer);
      this.linkUp(other, node.spec.id);
    }
  }

  private linkUp(node: SimNode, peer: NodeId): void {
    node.core?.linkUp(peer);
    this.drain(node);
  }

  private wallMs(node: SimNode): number {
    return epochWallMs + Math.floor((this.nowUnits / unitsPerTick) * this.options.tickMs) + node.spec.skewMs;
  }

  private nextEvent(): { atUnits: number; node: SimNode | null; flush: boolean } {
    let best = { atUnits: this.network.peekUnits(), node: null as SimNode | null, flush: false };
    for (const node of this.nodes.values()) {
      if (node.core === null) continue;
      if (node.clock.nextTickUnits < best.atUnits) {
        best = { atUnits: node.clock.nextTickUnits, node, flush: false };
      }
      const flushAt = node.flushes[0]?.atUnits;
      if (flushAt !== undefined && flushAt < best.atUnits) best = { atUnits: flushAt, node, flush: true };
    }
    return best;
  }

  /** The node's oldest waiting flush ended: its batches are persisted (flushes end in order, as fsyncs do). */
  private flush(node: SimNode): void {
    const due = node.flushes.shift();
    if (due === undefined || node.core === null) return;
    for (const token of due.tokens) node.core.persisted(token);
    this.drain(node);
  }

  private wake(node: SimNode): void {
    const due = node.clock.takeDue(this.nowUnits);
    for (let i = 0; i < due && node.core !== null; i++) {
      node.core.tick();
      if (node.quietTicks === 0) continue;
      if (node.core.hasReady()) {
        throw new StoreViolationError(
          "ticks-until-timer",
          `${node.spec.id} acted on a tick its ticksUntilTimer() said would do nothing`,
        );
      }
      node.quietTicks--;
    }
    this.drain(node);
  }

  private deliver(envelope: Envelope<StoreSyncMessage> | undefined): void {
    if (envelope === undefined) return;
    const node = this.node(envelope.to);
    if (node.core === null) return;
    if (this.options.log && this.options.logMessages) {
      this.line(`${envelope.from}->${envelope.to} ${formatMessage(envelope.message)}`);
    }
    node.core.step(envelope.from, envelope.message);
    this.drain(node);
  }

  private drain(node: SimNode): void {
    const id = node.spec.id;
    for (let readies = 0; node.core?.hasReady(); readies++) {
      if (readies === readiesPerDrainMax)
        throw new Error(`${id}: drain did not settle after ${readies} Readies`);
      const core = node.core;
      const ready = core.ready();
      const tokens: number[] = [];
      for (const request of ready.persist) {
        if (this.tornHere(node)) return;
        node.store.applyRemote(request.entries, this.wallMs(node));
        tokens.push(request.token);
      }
      if (ready.cursors !== null) node.store.saveSyncCursors(ready.cursors);
      for (const envelope of ready.messages) this.network.send(envelope, this.nowUnits);
      for (const result of ready.writeResults) {
        const ok = result.hostsOk.join(",") || "-";
        this.line(
          `${id} write ${result.writeId} ${result.acked ? "acked" : "NOT acked"} ok=${ok}${result.done ? " done" : ""}`,
        );
        this.checker.observeResult(result);
      }
      if (this.options.log) for (const event of ready.events) this.line(`${id} ${formatEvent(event)}`);
      core.advance(ready);
      const delayMax = this.options.flushDelayUnitsMax ?? 0;
      if (delayMax === 0 || tokens.length === 0) {
        for (const token of tokens) core.persisted(token);
      } else {
        // Never before an earlier flush of this node: one fsync covers every commit before it.
        const earliest = node.flushes.at(-1)?.atUnits ?? this.nowUnits;
        const atUnits = Math.max(earliest, this.nowUnits + this.flushRng.intBetween(0, delayMax));
        node.flushes.push({ atUnits, tokens });
      }
    }
    if (node.core !== null) node.quietTicks = node.core.ticksUntilTimer() - 1;
  }

  /** Counts one persist batch against an armed torn crash; true when the node just crashed. */
  private tornHere(node: SimNode): boolean {
    if (node.crashAfterPersists === null) return false;
    if (node.crashAfterPersists > 0) {
      node.crashAfterPersists--;
      return false;
    }
    this.line(`${node.spec.id} crash inside a drain`);
    this.crash(node.spec.id);
    return true;
  }

  private node(id: NodeId): SimNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`unknown node ${id}`);
    return node;
  }

  private live(id: NodeId): SimNode & { core: SyncCore } {
    const node = this.node(id);
    if (node.core === null) throw new Error(`node ${id} is down`);
    return node as SimNode & { core: SyncCore };
  }
}

export function formatMessage(m: StoreSyncMessage): string {
  switch (m.type) {
    case "apply":
      return `apply ${m.writeId}/${m.chunk} entries=${m.entries.length}`;
    case "apply-ack":
      return `apply-ack ${m.writeId}/${m.chunk}`;
    case "since":
      return `since round=${m.roundId} store=${m.storeId} after=${m.afterSeq}`;
    case "changes":
      return `changes round=${m.roundId} store=${m.storeId} upTo=${m.upToSeq} stamps=${m.stamps.length}${m.more ? " more" : ""}`;
    case "digest":
      return `digest round=${m.roundId} buckets=${m.buckets.length}`;
    case "stamps":
      return `stamps round=${m.roundId} buckets=${m.buckets.length} stamps=${m.stamps.length}${m.more ? " more" : ""}`;
    case "pull":
      return `pull round=${m.roundId} paths=${m.paths.length}`;
    case "entries":
      return `entries round=${m.roundId} entries=${m.entries.length}${m.last ? " last" : ""}`;
  }
}

export function formatEvent(e: StoreSyncEvent): string {
  switch (e.type) {
    case "round-started":
      return `${e.kind} round ${e.roundId} with ${e.peer} started (${e.reason})`;
    case "round-completed":
      return `round ${e.roundId} with ${e.peer} done: pulled=${e.pulled}${e.more ? " more" : ""}`;
    case "round-abandoned":
      return `round ${e.roundId} with ${e.peer} abandoned (${e.reason})`;
    case "message-ignored":
      return `ignored ${e.messageType} from ${e.peer} (${e.reason})`;
    case "peers-changed":
      return `peers changed: added [${e.added.join(",")}] removed [${e.removed.join(",")}]`;
  }
}
