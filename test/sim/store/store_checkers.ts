// Store invariants for the simulator:
//   noAckedWriteLost — every write reported acknowledged by a host is held there (or superseded by a newer
//     version), checked at the moment the ack is reported and again, for every host and the writer, at the
//     end of the history: "acknowledged" must mean durable on that host;
//   storeConverged — after healing, every live node holds identical entries: digests first (cheap), then
//     the full sets, value bytes included;
//   ticksUntilTimer (store_cluster.ts) — no tick before the one a core's ticksUntilTimer() named acts.
import { compareVersions, versionKey } from "../../../src/core/lww.ts";
import type { WriteResult } from "../../../src/core/store_sync_types.ts";
import type { StoreEntry } from "../../../src/core/store_types.ts";
import type { NodeId } from "../../../src/core/types.ts";
import type { MemoryLocalStore } from "../../support/memory_local_store.ts";

export class StoreViolationError extends Error {
  override name = "StoreViolationError";
  readonly invariant: string;

  constructor(invariant: string, detail: string) {
    super(`${invariant}: ${detail}`);
    this.invariant = invariant;
  }
}

interface TrackedWrite {
  writer: NodeId;
  entries: StoreEntry[];
  ackedBy: Set<NodeId>;
}

export class AckedWriteChecker {
  /** Writes reported acknowledged by at least one host, and acks reported in all. */
  writesAcked = 0;
  acks = 0;
  private readonly writes = new Map<string, TrackedWrite>();
  private readonly storeOf: (id: NodeId) => MemoryLocalStore;

  constructor(storeOf: (id: NodeId) => MemoryLocalStore) {
    this.storeOf = storeOf;
  }

  recordWrite(writeId: string, writer: NodeId, entries: readonly StoreEntry[]): void {
    if (this.writes.has(writeId)) throw new Error(`write id ${writeId} reused`);
    this.writes.set(writeId, { writer, entries: [...entries], ackedBy: new Set() });
  }

  /** A write result as the writer's shell sees it: each newly reported host must hold the write now. */
  observeResult(result: WriteResult): void {
    const write = this.writes.get(result.writeId);
    if (write === undefined)
      throw new StoreViolationError("no-acked-write-lost", `unknown write ${result.writeId}`);
    for (const host of result.hostsOk) {
      if (write.ackedBy.has(host)) continue;
      if (write.ackedBy.size === 0) this.writesAcked++;
      write.ackedBy.add(host);
      this.acks++;
      this.checkHeld(result.writeId, write, host);
    }
  }

  /** Every acknowledged write on every host that acknowledged it, and every write on its writer. */
  checkAll(): void {
    for (const [writeId, write] of this.writes) {
      this.checkHeld(writeId, write, write.writer);
      for (const host of write.ackedBy) this.checkHeld(writeId, write, host);
    }
  }

  private checkHeld(writeId: string, write: TrackedWrite, host: NodeId): void {
    const store = this.storeOf(host);
    for (const entry of write.entries) {
      const held = store.get(entry.path);
      if (held === null || compareVersions(held.version, entry.version) < 0) {
        const has = held === null ? "nothing" : versionKey(held.version);
        throw new StoreViolationError(
          "no-acked-write-lost",
          `${host} acknowledged write ${writeId} (${entry.path}@${versionKey(entry.version)}) but holds ${has}`,
        );
      }
    }
  }
}

/** null when every store holds identical entries; otherwise the first difference found. */
export function storeDifference(stores: ReadonlyMap<NodeId, MemoryLocalStore>): string | null {
  const [first, ...rest] = [...stores];
  if (first === undefined) return null;
  const [firstId, firstStore] = first;
  const digest = JSON.stringify(firstStore.digest());
  const entries = describeEntries(firstStore);
  for (const [id, store] of rest) {
    if (JSON.stringify(store.digest()) !== digest) return `${id} and ${firstId} differ in their digests`;
    const theirs = describeEntries(store);
    if (theirs.length !== entries.length)
      return `${id} holds ${theirs.length} entries, ${firstId} ${entries.length}`;
    const index = theirs.findIndex((line, i) => line !== entries[i]);
    if (index >= 0) return `${id} holds ${theirs[index]} where ${firstId} holds ${entries[index]}`;
  }
  return null;
}

/** The digest comparison alone: what the simulator runs every tick while waiting for convergence. */
export function digestsAgree(stores: ReadonlyMap<NodeId, MemoryLocalStore>): boolean {
  const digests = [...stores.values()].map((s) => JSON.stringify(s.digest()));
  return digests.every((d) => d === digests[0]);
}

function describeEntries(store: MemoryLocalStore): string[] {
  return store
    .all()
    .map(
      (e) =>
        `${e.path}@${versionKey(e.version)}${e.deleted ? ":deleted" : `=${Buffer.from(e.value).toString("hex")}`}`,
    )
    .sort();
}
