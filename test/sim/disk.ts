// One node's durable HardState. A write lands in the page cache and becomes durable only at sync(); a
// crash drops whatever was written but not synced. The cluster drains a Ready exactly as the shell does
// (write, sync, then send), so a crash torn anywhere inside a drain loses only state nothing depends on.
import type { HardStateStore } from "../../src/cluster/hard_state_store.ts";
import { type ElectionConfig, emptyHardState, type HardState } from "../../src/core/election_types.ts";
import { sortedMembership } from "../../src/core/membership.ts";
import type { NodeId } from "../../src/core/types.ts";

export class SimDisk implements HardStateStore {
  /** fsyncs done: the simulator's stand-in for the cost of persisting. */
  syncs = 0;
  private durable: HardState;
  private written: HardState | null = null;

  constructor(initial: HardState = emptyHardState) {
    this.durable = initial;
  }

  /** What a booting node reads: only durable state survives a crash. */
  load(): HardState {
    if (this.written !== null) throw new Error("load() with unsynced writes: a restart must crash first");
    return this.durable;
  }

  /** The shell's save: write then fsync. */
  save(state: HardState): void {
    this.write(state);
    this.sync();
  }

  write(state: HardState): void {
    this.written = Object.freeze({ ...state });
  }

  sync(): void {
    if (this.written === null) return;
    this.durable = this.written;
    this.written = null;
    this.syncs++;
  }

  /** Power loss: the page cache is gone. */
  crash(): void {
    this.written = null;
  }

  get durableState(): HardState {
    return this.durable;
  }
}

/** Version 1 of the configured list, as a node that took part in the bootstrap exchange holds it. */
export function bootstrappedState(config: ElectionConfig): HardState {
  const node = (id: NodeId, role: "member" | "witness") => ({
    id,
    address: "",
    role,
    priority: config.priorities[id] ?? 0,
    voting: true,
    autoPromote: false,
  });
  const list = sortedMembership(1, [
    ...config.members.map((id) => node(id, "member")),
    ...config.witnesses.map((id) => node(id, "witness")),
  ]);
  return { term: 0, votedFor: null, membership: { config: list, term: 0 } };
}
