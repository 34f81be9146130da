// The virtual network: every message gets its own delay (minimum plus an exponential tail, so messages
// overtake each other: that is the reordering), may be lost or duplicated, waits while its path is
// clogged, and is dropped if its path is cut by a partition when it arrives. Each directed path holds at
// most pathCapacityMax messages in flight; the rest are dropped, as a full socket buffer would.
// All randomness comes from the Prng the network is given (a fork of the history's seed).
import type { Prng } from "../../src/core/prng.ts";
import type { Envelope, NodeId } from "../../src/core/types.ts";
import { EventQueue } from "./event_queue.ts";

export const PartitionMode = {
  None: "none",
  IsolateSingle: "isolate-single",
  UniformSplit: "uniform-split",
} as const;
export type PartitionMode = (typeof PartitionMode)[keyof typeof PartitionMode];

export const PartitionSymmetry = { Symmetric: "symmetric", OneWay: "one-way" } as const;
export type PartitionSymmetry = (typeof PartitionSymmetry)[keyof typeof PartitionSymmetry];

export interface NetworkOptions {
  delayMinUnits: number;
  delayMeanUnits: number;
  lossProbability: number;
  duplicateProbability: number;
  pathCapacityMax: number;
  /** Per path, per nominal tick: chance that an open path clogs (holds its messages). */
  clogProbability: number;
  clogTicksMean: number;
  partitionMode: PartitionMode;
  partitionSymmetry: PartitionSymmetry;
  /** Per nominal tick: chance that a whole network splits, and that a split network heals. */
  partitionProbability: number;
  unpartitionProbability: number;
}

/** Delays only: what the named scenarios start from and what the swarm heals to. */
export function quietNetworkOptions(delayMinUnits: number, delayMeanUnits: number): NetworkOptions {
  return {
    delayMinUnits,
    delayMeanUnits,
    lossProbability: 0,
    duplicateProbability: 0,
    pathCapacityMax: 64,
    clogProbability: 0,
    clogTicksMean: 0,
    partitionMode: PartitionMode.None,
    partitionSymmetry: PartitionSymmetry.Symmetric,
    partitionProbability: 0,
    unpartitionProbability: 0,
  };
}

export interface NetworkStats {
  sent: number;
  delivered: number;
  duplicated: number;
  droppedLoss: number;
  droppedPartition: number;
  droppedCapacity: number;
}

interface Path {
  inflight: number;
  /** Latest arrival time of anything sent on this path. */
  lastArrivalUnits: number;
  clogUntilUnits: number;
  cut: boolean;
}

interface InFlight<M> {
  envelope: Envelope<M>;
  path: Path;
}

export class Network<M> {
  readonly stats: NetworkStats = {
    sent: 0,
    delivered: 0,
    duplicated: 0,
    droppedLoss: 0,
    droppedPartition: 0,
    droppedCapacity: 0,
  };
  private options: NetworkOptions;
  private readonly rng: Prng;
  private readonly nodeIds: readonly NodeId[];
  private readonly paths = new Map<string, Path>();
  private readonly queue = new EventQueue<InFlight<M>>();
  private partitioned = false;

  constructor(nodeIds: readonly NodeId[], options: NetworkOptions, rng: Prng) {
    if (options.delayMeanUnits < options.delayMinUnits) throw new RangeError("delay mean < delay min");
    this.nodeIds = nodeIds;
    this.options = options;
    this.rng = rng;
    for (const from of nodeIds) {
      for (const to of nodeIds) {
        if (from !== to)
          this.paths.set(pathKey(from, to), {
            inflight: 0,
            lastArrivalUnits: 0,
            clogUntilUnits: 0,
            cut: false,
          });
      }
    }
  }

  get inflight(): number {
    return this.queue.size;
  }

  send(envelope: Envelope<M>, nowUnits: number): void {
    const path = this.path(envelope.from, envelope.to);
    this.stats.sent++;
    if (path.cut) {
      this.stats.droppedPartition++;
      return;
    }
    if (this.rng.chance(this.options.lossProbability)) {
      this.stats.droppedLoss++;
      return;
    }
    this.enqueue(envelope, path, nowUnits);
    if (this.rng.chance(this.options.duplicateProbability)) {
      this.stats.duplicated++;
      this.enqueue(envelope, path, nowUnits);
    }
  }

  /** Global time of the next arrival, or Infinity. */
  peekUnits(): number {
    return this.queue.peekUnits();
  }

  /** The next message due by `nowUnits` whose path is still open; cut paths swallow what arrives. */
  popDue(nowUnits: number): Envelope<M> | undefined {
    while (this.queue.peekUnits() <= nowUnits) {
      const next = this.queue.pop()!;
      next.path.inflight--;
      if (next.path.cut) {
        this.stats.droppedPartition++;
        continue;
      }
      this.stats.delivered++;
      return next.envelope;
    }
    return undefined;
  }

  /**
   * When a connection on this path that closes now is seen closed at the far end: after what was sent on it,
   * as TCP delivers a killed process's last writes before its FIN.
   */
  closeArrivalUnits(from: NodeId, to: NodeId, nowUnits: number): number {
    return Math.max(nowUnits, this.path(from, to).lastArrivalUnits) + this.options.delayMinUnits + 1;
  }

  /** Rolls the dice for clogs and partitions once per nominal tick (no-op with quiet options). */
  tickFaults(nowUnits: number, tickUnits: number): void {
    const o = this.options;
    if (o.clogProbability > 0) {
      for (const path of this.paths.values()) {
        if (path.clogUntilUnits > nowUnits || !this.rng.chance(o.clogProbability)) continue;
        path.clogUntilUnits = nowUnits + Math.round(exponential(this.rng, o.clogTicksMean) * tickUnits);
      }
    }
    // Any partition heals at this rate, also one a scenario or the swarm cut by hand.
    if (this.partitioned) {
      if (this.rng.chance(o.unpartitionProbability)) this.heal();
    } else if (o.partitionMode !== PartitionMode.None && this.nodeIds.length > 1) {
      if (this.rng.chance(o.partitionProbability))
        this.partition(this.drawSide(o.partitionMode), o.partitionSymmetry);
    }
  }

  /**
   * Cuts the paths between `side` and the other nodes: both ways, or (one-way) only from `side` to the
   * others, so `side` still hears them but nobody hears `side`.
   */
  partition(side: readonly NodeId[], symmetry: PartitionSymmetry): void {
    const inside = new Set(side);
    for (const from of this.nodeIds) {
      for (const to of this.nodeIds) {
        if (from === to || inside.has(from) === inside.has(to)) continue;
        if (symmetry === PartitionSymmetry.OneWay && !inside.has(from)) continue;
        this.path(from, to).cut = true;
      }
    }
    this.partitioned = true;
  }

  /** Cuts one directed path (named scenarios: "n2 cannot reach n1"). */
  cut(from: NodeId, to: NodeId): void {
    this.path(from, to).cut = true;
    this.partitioned = true;
  }

  /** Clogs one directed path until `untilUnits`: messages wait, none are lost. */
  clog(from: NodeId, to: NodeId, untilUnits: number): void {
    this.path(from, to).clogUntilUnits = untilUnits;
  }

  /** Reconnects every path and unclogs it; messages already in flight keep their arrival times. */
  heal(): void {
    for (const path of this.paths.values()) {
      path.cut = false;
      path.clogUntilUnits = 0;
    }
    this.partitioned = false;
  }

  /** Replaces the fault rates (the swarm turns faults off after its fault phase). */
  setOptions(options: NetworkOptions): void {
    this.options = options;
  }

  private enqueue(envelope: Envelope<M>, path: Path, nowUnits: number): void {
    if (path.inflight >= this.options.pathCapacityMax) {
      this.stats.droppedCapacity++;
      return;
    }
    const o = this.options;
    const delayUnits =
      o.delayMinUnits + Math.round(exponential(this.rng, o.delayMeanUnits - o.delayMinUnits));
    path.inflight++;
    const atUnits = Math.max(nowUnits + delayUnits, path.clogUntilUnits);
    path.lastArrivalUnits = Math.max(path.lastArrivalUnits, atUnits);
    this.queue.push(atUnits, { envelope, path });
  }

  private drawSide(mode: PartitionMode): NodeId[] {
    if (mode === PartitionMode.IsolateSingle) return [this.rng.pick(this.nodeIds)];
    const side = this.nodeIds.filter(() => this.rng.chance(0.5));
    // An empty or full side cuts nothing: move one node across.
    if (side.length === 0) return [this.rng.pick(this.nodeIds)];
    if (side.length === this.nodeIds.length) return side.slice(1);
    return side;
  }

  private path(from: NodeId, to: NodeId): Path {
    const path = this.paths.get(pathKey(from, to));
    if (path === undefined) throw new Error(`no path ${from} -> ${to}`);
    return path;
  }
}

function pathKey(from: NodeId, to: NodeId): string {
  return `${from}>${to}`;
}

/** Exponentially distributed with the given mean (0 for mean 0). */
function exponential(rng: Prng, mean: number): number {
  return mean <= 0 ? 0 : -Math.log(1 - rng.next()) * mean;
}
