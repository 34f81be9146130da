// One node's durable HardState. A write lands in the page cache and becomes durable only at sync(); a
// crash drops whatever was written but not synced. The cluster drains a Ready exactly as the shell does
// (write, sync, then send), so a crash torn anywhere inside a drain loses only state nothing depends on.
import type { HardStateStore } from "../../src/cluster/hard_state_store.ts";
import { emptyHardState, type HardState } from "../../src/core/election_types.ts";

export class SimDisk implements HardStateStore {
  /** fsyncs done: the simulator's stand-in for the cost of persisting. */
  syncs = 0;
  private durable: HardState = emptyHardState;
  private written: HardState | null = null;

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
    this.written = Object.freeze({ term: state.term, votedFor: state.votedFor });
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
