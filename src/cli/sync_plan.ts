// `tandem sync DIR PREFIX` decides here, without I/O: which files to upload (new or different content),
// which store entries to delete (gone from the folder, only with --delete) and which are unchanged, by
// SHA-256 of the contents; then how to cut the uploads into bounded batches.

export interface ContentStamp {
  /** Store path. */
  path: string;
  sha256: string;
  size: number;
}

export interface SyncPlan {
  upload: ContentStamp[];
  remove: string[];
  unchanged: string[];
}

/** Both sides in path order in, everything in path order out. */
export function planSync(
  local: readonly ContentStamp[],
  remote: readonly ContentStamp[],
  options: { deleteMissing: boolean },
): SyncPlan {
  const held = new Map(remote.map((stamp) => [stamp.path, stamp]));
  const plan: SyncPlan = { upload: [], remove: [], unchanged: [] };
  for (const file of [...local].sort(byPath)) {
    const stored = held.get(file.path);
    held.delete(file.path);
    if (stored !== undefined && stored.sha256 === file.sha256 && stored.size === file.size) {
      plan.unchanged.push(file.path);
    } else {
      plan.upload.push(file);
    }
  }
  if (options.deleteMissing) plan.remove = [...held.keys()].sort();
  return plan;
}

function byPath(a: { path: string }, b: { path: string }): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

/**
 * Consecutive batches of at most `writesMax` items and `bytesMax` bytes; an item bigger than `bytesMax`
 * travels alone (the server judges it against its own value bound).
 */
export function batchesOf<T extends { size: number }>(
  items: readonly T[],
  limits: { writesMax: number; bytesMax: number },
): T[][] {
  const batches: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    if (current.length > 0 && (current.length >= limits.writesMax || bytes + item.size > limits.bytesMax)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += item.size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** The store path of a file at `relativePath` (slash-separated) under the folder mirrored to `prefix`. */
export function storePathOf(prefix: string, relativePath: string): string {
  const base = prefix.replace(/\/+$/, "");
  return base === "" ? relativePath : `${base}/${relativePath}`;
}

/** The listing prefix that covers exactly the entries a sync to `prefix` owns. */
export function listingPrefixOf(prefix: string): string {
  const base = prefix.replace(/\/+$/, "");
  return base === "" ? "" : `${base}/`;
}
