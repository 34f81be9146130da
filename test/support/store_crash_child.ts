// Crash-test child (test/integration/store_crash.test.ts): writes random batches into a SqliteLocalStore
// until killed, local writes and remote ones from a fake peer, with tombstone collection now and then. A batch
// is printed to stdout (one JSON line of its committed stamps) only AFTER the store returned, so every
// printed line is an acknowledged write that must survive the parent's kill -9. Between batches the event
// loop turns, as in the agent: the store's fsyncs end and its WAL checkpoints (wal_checkpointer.ts) run, so
// kills also land while the WAL is copied, synced or restarted.
// Usage: node store_crash_child.ts DB_PATH SEED DEADLINE_MS
import { writeSync } from "node:fs";
import { setImmediate as nextTurn } from "node:timers/promises";
import { Prng } from "../../src/core/prng.ts";
import type { StoreEntry } from "../../src/core/store_types.ts";
import { SqliteLocalStore } from "../../src/store/sqlite_store.ts";
import type { StoreWrite } from "../../src/store/types.ts";

export const crashNodeId = "n1";
export const crashPeerId = "n2";
export const crashValueBytesMax = 16 * 1024;
const pathCount = 300;
/** Tombstones older than this are collected, so collection races with writes that are still arriving. */
const tombstoneHorizonMs = 200;

/** One acknowledged change as printed: [path, wallMs, counter, nodeId, deleted]. */
export type AckedStamp = [path: string, wallMs: number, counter: number, nodeId: string, deleted: boolean];

/**
 * A value that names its own content: "nonce\n", then bytes derived from the path and the nonce, up to a
 * length derived from the nonce (some span several SQLite pages). A torn or mixed-up value fails
 * crashValueIsIntact.
 */
export function crashValue(path: string, nonce: number): Uint8Array {
  const head = new TextEncoder().encode(`${nonce}\n`);
  const value = new Uint8Array(head.length + (nonce % (crashValueBytesMax - 64)));
  value.set(head);
  const rng = new Prng(`${path}/${nonce}`);
  for (let i = head.length; i < value.length; i++) value[i] = rng.nextUint32() & 0xff;
  return value;
}

export function crashValueIsIntact(path: string, value: Uint8Array): boolean {
  const newline = value.indexOf(10);
  const nonce = Number(new TextDecoder().decode(value.subarray(0, newline)));
  if (newline < 1 || !Number.isSafeInteger(nonce)) return false;
  return Buffer.from(crashValue(path, nonce)).equals(Buffer.from(value));
}

function randomPath(rng: Prng): string {
  return `k/${rng.intBetween(0, pathCount - 1)}`;
}

function randomWrites(rng: Prng): StoreWrite[] {
  return Array.from({ length: rng.intBetween(1, 40) }, () => {
    const path = randomPath(rng);
    return { path, value: rng.chance(0.15) ? null : crashValue(path, rng.nextUint32()) };
  });
}

/** Entries from the fake peer, slightly in the past so they race with local writes under last-write-wins. */
function randomRemoteEntries(rng: Prng, nowWallMs: number): StoreEntry[] {
  return Array.from({ length: rng.intBetween(1, 20) }, () => {
    const path = randomPath(rng);
    const deleted = rng.chance(0.15);
    const version = {
      wallMs: nowWallMs - rng.intBetween(0, 50),
      counter: rng.intBetween(0, 5),
      nodeId: crashPeerId,
    };
    return {
      path,
      value: deleted ? new Uint8Array(0) : crashValue(path, rng.nextUint32()),
      version,
      deleted,
    };
  });
}

function print(entries: readonly StoreEntry[]): void {
  const stamps: AckedStamp[] = entries.map((e) => [
    e.path,
    e.version.wallMs,
    e.version.counter,
    e.version.nodeId,
    e.deleted,
  ]);
  // A synchronous write: the line is in the pipe before the next batch starts.
  writeSync(1, `${JSON.stringify(stamps)}\n`);
}

async function run(dbPath: string, seed: string, deadlineMs: number): Promise<void> {
  const rng = new Prng(seed);
  const store = SqliteLocalStore.open({
    path: dbPath,
    nodeId: crashNodeId,
    valueBytesMax: crashValueBytesMax,
  });
  // Bounded even if the parent never kills us.
  while (Date.now() < deadlineMs) {
    const roll = rng.next();
    if (roll < 0.7) print(store.writeLocal(randomWrites(rng), Date.now()));
    else if (roll < 0.95) print(store.applyRemote(randomRemoteEntries(rng, Date.now()), Date.now()));
    else store.collectTombstones(Date.now() - tombstoneHorizonMs);
    await nextTurn();
  }
  store.close();
}

if (import.meta.main) {
  const [dbPath, seed, deadlineMs] = process.argv.slice(2);
  if (!dbPath || !seed || !deadlineMs)
    throw new Error("usage: store_crash_child.ts DB_PATH SEED DEADLINE_MS");
  await run(dbPath, seed, Number(deadlineMs));
}
