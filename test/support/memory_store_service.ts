// An in-memory StoreService for API and CLI tests: the contract of src/store/types.ts without SQLite or a
// mesh. Peers are names whose acknowledgement the test decides (`peersAcking`), so a test can produce an
// acknowledged write, an unacknowledged one, or a partial one.
import { HybridClock } from "../../src/core/hlc.ts";
import type { KeyedStamp } from "../../src/store/sqlite_store.ts";
import type {
  MinAcks,
  StoreChange,
  StoreEntry,
  StoreService,
  StoreWrite,
  WriteOutcome,
} from "../../src/store/types.ts";
import { ReadOnlyReplicaError } from "../../src/store/types.ts";

export interface MemoryStoreServiceOptions {
  nodeId?: string;
  readOnly?: boolean;
  peers?: string[];
  /** Peers that acknowledge writes; the others report an error. Default: all peers. */
  peersAcking?: Set<string>;
}

export class MemoryStoreService implements StoreService {
  readonly readOnly: boolean;
  readonly nodeId: string;
  readonly peers: string[];
  peersAcking: Set<string>;
  /** Every write() call, for tests that assert a rejected request reached nothing. */
  readonly writeCalls: StoreWrite[][] = [];
  private readonly entries = new Map<string, StoreEntry>();
  private readonly changes: StoreChange[] = [];
  private readonly listeners = new Set<(changes: readonly StoreChange[]) => void>();
  private readonly clock = new HybridClock({ skewMsMax: 60_000 });
  private readonly storeIdentity = {
    storeId: 1 + Math.floor(Math.random() * 2 ** 40),
    createdWallMs: Date.now(),
  };

  constructor(options: MemoryStoreServiceOptions = {}) {
    this.nodeId = options.nodeId ?? "n1";
    this.readOnly = options.readOnly ?? false;
    this.peers = options.peers ?? [];
    this.peersAcking = options.peersAcking ?? new Set(this.peers);
  }

  async write(writes: readonly StoreWrite[], options: { minAcks: MinAcks }): Promise<WriteOutcome> {
    if (this.readOnly) throw new ReadOnlyReplicaError("read-only replica");
    this.writeCalls.push([...writes]);
    const committed: StoreChange[] = writes.map((write, index) => {
      const entry: StoreEntry = {
        path: write.path,
        value: write.value ?? new Uint8Array(),
        version: { ...this.clock.now(Date.now()), nodeId: this.nodeId },
        deleted: write.value === null,
      };
      this.entries.set(entry.path, entry);
      return { seq: this.changes.length + 1 + index, entry };
    });
    for (const change of committed) this.changes.push(change);
    for (const listener of this.listeners) listener(committed);
    const hostsOk = this.peers.filter((peer) => this.peersAcking.has(peer));
    const hostsErr = this.peers
      .filter((peer) => !this.peersAcking.has(peer))
      .map((host) => ({ host, error: "timed out" }));
    const needed = options.minAcks === "all" ? this.peers.length : options.minAcks;
    return { entries: committed.map((c) => c.entry), hostsOk, hostsErr, acked: hostsOk.length >= needed };
  }

  get(path: string): StoreEntry | null {
    return this.entries.get(path) ?? null;
  }

  list(prefix: string, options: { after?: string; limit: number }): StoreEntry[] {
    return [...this.entries.values()]
      .filter(
        (e) =>
          !e.deleted && e.path.startsWith(prefix) && (options.after === undefined || e.path > options.after),
      )
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
      .slice(0, options.limit);
  }

  changesSince(afterSeq: number, limit: number): StoreChange[] {
    return this.changes.slice(afterSeq, afterSeq + limit);
  }

  lastSeq(): number {
    return this.changes.length;
  }

  /** What a materialiser's resync lists (as SqliteLocalStore's): the latest change of each path after a seq. */
  keyedStampsSince(afterSeq: number, limit: number): KeyedStamp[] {
    const stamps: KeyedStamp[] = [];
    for (const { seq, entry } of this.changes.slice(afterSeq)) {
      if (stamps.length >= limit) break;
      if (this.entries.get(entry.path) !== entry) continue;
      const { wallMs, counter, nodeId } = entry.version;
      stamps.push({
        path: entry.path,
        versionKey: `${wallMs}.${counter}.${nodeId}`,
        deleted: +entry.deleted,
        seq,
      });
    }
    return stamps;
  }

  /** A store id per instance, as a new database draws one. */
  identity(): { storeId: number; createdWallMs: number } {
    return this.storeIdentity;
  }

  getMany(paths: readonly string[]): StoreEntry[] {
    return paths.flatMap((path) => this.entries.get(path) ?? []);
  }

  onChange(listener: (changes: readonly StoreChange[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get peerCount(): number {
    return this.peers.length;
  }

  get listenerCount(): number {
    return this.listeners.size;
  }
}
