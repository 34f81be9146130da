// Last-write-wins order and merge for store entries: the highest version wins; versions are totally
// ordered by (wallMs, counter, nodeId), so every replica picks the same winner whatever the arrival order.
// Merge is commutative, associative and idempotent (property-tested in test/unit/core/lww.test.ts).
import { compareHlc } from "./hlc.ts";
import type { StoreEntry, Version } from "./store_types.ts";

export function compareVersions(a: Version, b: Version): -1 | 0 | 1 {
  const byClock = compareHlc(a, b);
  if (byClock !== 0) return byClock;
  if (a.nodeId === b.nodeId) return 0;
  return a.nodeId < b.nodeId ? -1 : 1;
}

/** The winner of two entries for the same path (the local one when versions are equal). */
export function mergeEntry(local: StoreEntry | undefined, incoming: StoreEntry): StoreEntry {
  if (local && local.path !== incoming.path) throw new RangeError("mergeEntry: different paths");
  if (!local) return incoming;
  return compareVersions(incoming.version, local.version) > 0 ? incoming : local;
}

/** True when `incoming` would replace what a replica holds (nothing, or an older version). */
export function supersedes(incoming: Version, held: Version | undefined): boolean {
  return held === undefined || compareVersions(incoming, held) > 0;
}

const wallDigits = 15;
const counterDigits = 10;
/** The largest wallMs and counter a version key can hold (wire schemas bound peer input by these). */
export const versionWallMsMax = 10 ** wallDigits - 1;
export const versionCounterMax = 10 ** counterDigits - 1;

function isFixedWidth(n: number, digits: number): boolean {
  return Number.isSafeInteger(n) && n >= 0 && n < 10 ** digits;
}

/**
 * A string whose byte order equals the version order (fixed-width digits, then the node id), for indexes
 * and for SQL `ORDER BY`. Node ids are [a-z0-9._-], so no separator ambiguity.
 */
export function versionKey(v: Version): string {
  // Wider numbers would break the byte order silently; such a version is a bug (wire input is schema-checked).
  if (!isFixedWidth(v.wallMs, wallDigits) || !isFixedWidth(v.counter, counterDigits)) {
    throw new RangeError(`versionKey: wallMs ${v.wallMs} or counter ${v.counter} out of range`);
  }
  return `${String(v.wallMs).padStart(wallDigits, "0")}.${String(v.counter).padStart(counterDigits, "0")}.${v.nodeId}`;
}

export function parseVersionKey(key: string): Version | null {
  const match = /^(\d{15})\.(\d{10})\.([a-z0-9][a-z0-9._-]{0,62})$/.exec(key);
  if (!match) return null;
  return { wallMs: Number(match[1]), counter: Number(match[2]), nodeId: match[3]! };
}
