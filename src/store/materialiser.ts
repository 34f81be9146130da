// Writes the store under a directory as plain files, so ordinary programs (nginx, apt) read them.
//
// - Atomic: every file is replaced through a temp file in the same directory (fsync, chmod/chown, rename,
//   directory fsync); readers never see a partial file. Temp files left by a crash are swept before the
//   first batch runs.
// - Owned: the manifest (materialise_manifest.ts) lists what the materialiser created; it deletes only
//   those files and the directories it made, never anything else in `dir`.
// - Contained: a path whose parents are not plain directories (a symlink, a file) is refused and logged,
//   so nothing is written or deleted outside `dir` (parents are checked with lstat before each batch).
// - Resumable: the manifest keeps lastAppliedSeq (saved with every new or removed name, at close, and
//   otherwise at most once per seqSaveIntervalMs); after a restart the caller feeds changesSince(it).
// - Cheap when unchanged: the manifest keeps the version each file holds, so a resync reads neither the
//   value nor the file of an entry whose version matches and whose file the directory listing shows; such
//   a file edited in place by hand is restored when its entry next changes (or its mode/owner config does).
// - Serialised: one batch at a time, in seq order; applies queued while a batch runs join one batch.
//
// Caller's loop (MaterialiseFeed in materialise_feed.ts runs it): open() → resync(all entries, {seq}),
// or after a restart apply(changesSince(lastAppliedSeq)) and the resync behind it → apply(changes) on every
// commit → close().
// After an I/O failure apply() refuses until a resync() succeeds (the disk no longer matches the seq).
import type { Stats } from "node:fs";
import { chmod, chown, mkdir, rmdir, stat, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { setImmediate } from "node:timers/promises";
import type { Logger } from "pino";
import { isUnderPrefix, validateStorePath } from "../core/store_path.ts";
import type { StoreEntry } from "../core/store_types.ts";
import { type HookConfig, HookRunner } from "./hook_runner.ts";
import {
  type FileOwnership,
  fileMatches,
  isErrnoException,
  isTempName,
  lstatOrNull,
  replaceFile,
  sweepTempFiles,
  syncDirectory,
  type TreeListing,
} from "./materialise_fs.ts";
import { Manifest, manifestFileName, versionKey } from "./materialise_manifest.ts";
import { type MaterialiseTimers, realTimers } from "./materialise_timers.ts";
import type { StoreChange } from "./types.ts";

export interface MaterialiserOptions {
  /** Directory the store is written under (created when missing). Store paths keep their full name in it. */
  dir: string;
  /** Only store paths under this prefix (isUnderPrefix) are materialised; "" = all. */
  prefix?: string;
  fileMode?: number;
  dirMode?: number;
  /** chown files and created directories when given. */
  uid?: number;
  gid?: number;
  logger: Logger;
  hooks?: readonly HookConfig[];
  /** Timers for hook debounce and timeout; tests pass a manual scheduler. */
  timers?: MaterialiseTimers;
}

export const fileModeDefault = 0o644;
export const dirModeDefault = 0o755;
/** Entries per resync batch: bounds memory (values) and the work between two manifest saves. */
export const resyncBatchEntriesMax = 256;
/** How often lastAppliedSeq alone is saved (new or removed names are saved at once). */
export const seqSaveIntervalMs = 1000;
/** File-system operations in flight at once within a batch (checks, writes and fsyncs overlap). */
export const fsOperationsInFlightMax = 16;

/** What one batch did. */
export interface MaterialiseResult {
  /** Paths whose file was created or replaced. */
  written: string[];
  /** Paths whose file was removed. */
  removed: string[];
  /** Paths left alone, with the reason (also logged). */
  refused: Array<{ path: string; reason: string }>;
}

/** The disk could not be brought to the store's state (I/O error); `cause` holds the error. */
export class MaterialiseError extends Error {
  override readonly name = "MaterialiseError";
}

type DirState = "dir" | "missing" | "blocked";

/** What one path should look like on disk: this value (of this version key), or no file (null). */
type FileIntent = { path: string; value: Uint8Array; version: string } | { path: string; value: null };

/** Reads the current entries at these paths (tombstones included; unknown paths left out). */
export type EntriesAt = (paths: readonly string[]) => StoreEntry[];

/** A path's state as a resync lists it without its value: its version as a versionKey; deleted 0/1 or boolean. */
export interface ResyncStamp {
  path: string;
  versionKey: string;
  deleted: boolean | number;
}

/** What a resync lists per path: the entry with its value, or only its stamp (the value is read if needed). */
export type ResyncItem = StoreEntry | ResyncStamp;

export class Materialiser {
  readonly dir: string;
  readonly prefix: string;
  private readonly ownership: FileOwnership;
  private readonly dirMode: number;
  private readonly logger: Logger;
  private readonly manifest: Manifest;
  private readonly hooks: HookRunner[];
  private tail: Promise<unknown> = Promise.resolve();
  private openBatch: { changes: StoreChange[]; done: Promise<MaterialiseResult> } | null = null;
  private needsResync = false;
  private seqSavedAtMs = Number.NEGATIVE_INFINITY;
  private closed = false;
  /** The files the sweep found; the first resync uses it instead of listing the directory again. */
  private listing: TreeListing | null = null;

  private constructor(options: MaterialiserOptions, manifest: Manifest) {
    this.dir = options.dir;
    this.prefix = options.prefix ?? "";
    this.ownership = ownershipOf(options);
    this.dirMode = options.dirMode ?? dirModeDefault;
    this.logger = options.logger;
    this.manifest = manifest;
    const env = { TANDEM_DIR: options.dir };
    this.hooks = (options.hooks ?? []).map(
      (hook) =>
        new HookRunner(hook, {
          logger: options.logger,
          timers: options.timers ?? realTimers,
          env: { ...env, TANDEM_HOOK_PREFIX: hook.prefix },
        }),
    );
  }

  /**
   * Creates `dir` if needed and loads the manifest. Temp files a crash left behind are swept by the first
   * job, before any batch runs (a walk of the whole tree: start-up need not wait for it).
   */
  static async open(options: MaterialiserOptions): Promise<Materialiser> {
    validateOptions(options);
    await mkdir(options.dir, { recursive: true, mode: options.dirMode ?? dirModeDefault });
    if (!(await stat(options.dir)).isDirectory())
      throw new MaterialiseError(`${options.dir} is not a directory`);
    const manifest = await Manifest.load(options.dir, ownershipOf(options));
    const materialiser = new Materialiser(options, manifest);
    // A failure is logged and makes later batches wait for a resync (guarded).
    materialiser.exclusive(() => materialiser.sweep()).catch(() => undefined);
    return materialiser;
  }

  /** The seq of the last change written to disk; resume with changesSince(lastAppliedSeq). */
  get lastAppliedSeq(): number {
    return this.manifest.lastAppliedSeq;
  }

  /** The store whose seqs lastAppliedSeq counts, as the last complete resync named it (null: unknown). */
  get storeId(): number | null {
    return this.manifest.storeId;
  }

  /** Brings the files in line with committed changes (latest per path wins; older seqs are skipped). */
  apply(changes: readonly StoreChange[]): Promise<MaterialiseResult> {
    if (this.openBatch) {
      this.openBatch.changes.push(...changes);
      return this.openBatch.done;
    }
    const batch = { changes: [...changes], done: Promise.resolve(emptyResult()) };
    this.openBatch = batch;
    batch.done = this.exclusive(async () => {
      if (this.openBatch === batch) this.openBatch = null;
      if (this.needsResync) throw new MaterialiseError("an earlier batch failed: resync() first");
      return this.applyChanges(batch.changes);
    });
    return batch.done;
  }

  /**
   * A full pass: writes every entry that differs on disk, removes owned files the entries do not name.
   * `entries` must be the whole store (tombstones may be included), in any order, each path once or with
   * later stamps after earlier ones; `seq` is the change seq it reflects. Stamps without a value are read
   * through `entriesAt` only when their file must be written. `storeId` names the store `seq` belongs to.
   */
  resync(
    entries: Iterable<ResyncItem> | AsyncIterable<ResyncItem>,
    options: { seq?: number; storeId?: number; entriesAt?: EntriesAt } = {},
  ): Promise<MaterialiseResult> {
    this.openBatch = null;
    return this.exclusive(() => this.resyncAll(entries, options));
  }

  /** Waits for queued batches, runs hooks still owed, and stops. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.openBatch = null;
    await this.tail.catch(() => undefined);
    if (!this.needsResync && !this.manifest.isSeqSaved)
      await this.guarded(() => this.saveManifest()).catch(() => undefined);
    await Promise.all(this.hooks.map((hook) => hook.close()));
  }

  private exclusive<T>(job: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new MaterialiseError("materialiser is closed"));
    const run = this.tail.then(job, job);
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async applyChanges(changes: readonly StoreChange[]): Promise<MaterialiseResult> {
    const latest = new Map<string, StoreChange>();
    let seqMax = this.manifest.lastAppliedSeq;
    for (const change of changes) {
      if (change.seq <= this.manifest.lastAppliedSeq) continue;
      seqMax = Math.max(seqMax, change.seq);
      if (!isUnderPrefix(change.entry.path, this.prefix)) continue;
      const held = latest.get(change.entry.path);
      if (!held || held.seq < change.seq) latest.set(change.entry.path, change);
    }
    const result = await this.guarded(() =>
      this.materialise([...latest.values()].map((c) => intentOf(c.entry))),
    );
    this.manifest.lastAppliedSeq = seqMax;
    // The seq is saved at most once per interval: after a crash the changes replayed since the saved seq
    // are already on disk, so they write nothing and trigger no hook; a full manifest per batch would.
    const seqDue = performance.now() - this.seqSavedAtMs >= seqSaveIntervalMs;
    if (this.manifest.isDirty || (seqDue && !this.manifest.isSeqSaved))
      await this.guarded(() => this.saveManifest());
    this.runHooks(result);
    return result;
  }

  private async resyncAll(
    entries: Iterable<ResyncItem> | AsyncIterable<ResyncItem>,
    { seq, storeId, entriesAt }: { seq?: number; storeId?: number; entriesAt?: EntriesAt },
  ): Promise<MaterialiseResult> {
    const total = emptyResult();
    // Owned files in place: open()'s listing for the first resync, a fresh one for a later (retry) resync.
    const listing = this.listing ?? (await this.guarded(() => sweepTempFiles(this.dir))).listing;
    this.listing = null;
    const live = new Set<string>();
    let pending: ResyncItem[] = [];
    const flush = async (intents: FileIntent[]) => {
      merge(total, await this.guarded(() => this.materialise(intents)));
    };
    const flushPending = async () => {
      const intents = intentsOf(pending, live, entriesAt);
      pending = [];
      await flush(intents);
    };
    /** Queues `item` unless its file is known to be right; true when the batch is full. */
    const take = (item: ResyncItem): boolean => {
      const path = item.path;
      if (!isUnderPrefix(path, this.prefix)) return false;
      if (item.deleted) {
        live.delete(path);
        if (!this.manifest.ownsPath(path)) return false;
      } else {
        live.add(path);
        // Unchanged since the file was written, and the file is still there: nothing to read or write.
        const key = "versionKey" in item ? item.versionKey : versionKey(item.version);
        if (listing.files.has(path) && this.manifest.versionOf(path) === key) return false;
      }
      pending.push(item);
      return pending.length >= resyncBatchEntriesMax;
    };
    // A sync iterable is walked without an await per item (a microtask each, 100k of them at start-up), but
    // with a turn of the event loop every batch, so heartbeats are not held up by a long unchanged run.
    let taken = 0;
    if (Symbol.iterator in entries) {
      for (const item of entries) {
        if (taken++ % resyncBatchEntriesMax === 0) await setImmediate();
        if (take(item)) await flushPending();
      }
    } else for await (const item of entries) if (take(item)) await flushPending();
    await flushPending();
    let orphans: FileIntent[] = [];
    for (const path of this.manifest.ownedPaths().filter((p) => !live.has(p))) {
      orphans.push({ path, value: null });
      if (orphans.length >= resyncBatchEntriesMax) {
        await flush(orphans);
        orphans = [];
      }
    }
    await flush(orphans);
    await this.guarded(() => this.pruneEmptyDirs());
    if (storeId !== undefined && storeId !== this.manifest.storeId) {
      // Another store's seqs: the one just reflected replaces them, even when lower.
      this.manifest.storeId = storeId;
      if (seq !== undefined) this.manifest.lastAppliedSeq = seq;
    } else if (seq !== undefined) this.manifest.lastAppliedSeq = Math.max(this.manifest.lastAppliedSeq, seq);
    // Names were saved before they appeared; the seq and versions are saved lazily, like an apply's.
    if (this.manifest.isDirty) await this.guarded(() => this.saveManifest());
    this.needsResync = false;
    this.runHooks(total);
    return total;
  }

  /** Removes crash leftovers; keeps the listing for the first resync. */
  private async sweep(): Promise<void> {
    const swept = await this.guarded(() => sweepTempFiles(this.dir));
    if (swept.removed.length > 0)
      this.logger.info({ dir: this.dir, count: swept.removed.length }, "removed leftover temp files");
    this.listing = swept.listing;
  }

  private async saveManifest(): Promise<void> {
    await this.manifest.save();
    this.seqSavedAtMs = performance.now();
  }

  /** Runs an I/O step; a failure makes every later apply() wait for a resync. */
  private async guarded<T>(step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (error) {
      this.needsResync = true;
      this.logger.error({ dir: this.dir, err: error }, "materialise failed; a resync is needed");
      throw error instanceof MaterialiseError
        ? error
        : new MaterialiseError("materialise failed", { cause: error });
    }
  }

  /**
   * One batch (one entry per path): deletes first, then writes, so a directory emptied by a delete can
   * become a file and the reverse. New names go into the manifest before they exist on disk.
   */
  private async materialise(intents: readonly FileIntent[]): Promise<MaterialiseResult> {
    const result = emptyResult();
    const touchedDirs = new Set<string>();
    const accepted = intents.filter((intent) => {
      const reason = refusalReason(intent.path);
      if (reason !== null) this.refuse(result, intent.path, reason);
      return reason === null;
    });
    for (const { path, value } of accepted) if (value === null) await this.remove(path, result, touchedDirs);
    const states = new Map<string, DirState>();
    const writes: Array<{ path: string; value: Uint8Array; version: string }> = [];
    await inParallel(accepted, async (intent) => {
      if (intent.value === null) return;
      const { path, value, version } = intent;
      const reason = await this.writeBlocker(path, states);
      if (reason !== null) this.refuse(result, path, reason);
      else if (await fileMatches(this.absolute(path), value, this.ownership)) {
        this.manifest.addPath(path);
        this.manifest.setVersion(path, version);
      } else writes.push({ path, value, version });
    });
    const newDirs = [...states].filter(([, state]) => state === "missing").map(([dir]) => dir);
    const conflicts = new Set(newDirs);
    for (const { path } of writes.filter((w) => conflicts.has(w.path))) {
      this.refuse(result, path, "another store path in this batch needs a directory here");
    }
    const files = writes.filter((w) => !conflicts.has(w.path));
    for (const dir of newDirs) this.manifest.addDir(dir);
    for (const { path } of files) this.manifest.addPath(path);
    if (this.manifest.isDirty) await this.saveManifest();
    for (const dir of newDirs.sort()) await this.createDir(dir, touchedDirs);
    await inParallel(files, async ({ path, value, version }) => {
      await replaceFile(this.absolute(path), value, this.ownership);
      this.manifest.setVersion(path, version);
      touchedDirs.add(dirname(this.absolute(path)));
      result.written.push(path);
    });
    await inParallel([...touchedDirs], syncDirectory);
    return result;
  }

  /** Why `path` cannot be written now (a parent is a symlink or a file, the target a directory), or null. */
  private async writeBlocker(path: string, states: Map<string, DirState>): Promise<string | null> {
    const blocked = await this.blockedParent(path, states);
    if (blocked !== null) return blocked;
    const target = await lstatOrNull(this.absolute(path));
    if (target?.isDirectory()) return "a directory is in the way";
    if (target?.isSymbolicLink()) return "the target is a symlink (not followed, not replaced)";
    return null;
  }

  /** Checks every parent directory with lstat (cached per batch); records the missing ones. */
  private async blockedParent(path: string, states: Map<string, DirState>): Promise<string | null> {
    const segments = path.split("/");
    let missing = false;
    for (let depth = 1; depth < segments.length; depth++) {
      const parent = segments.slice(0, depth).join("/");
      let state: DirState | undefined = states.get(parent);
      if (state === undefined) {
        const stats: Stats | null = missing ? null : await lstatOrNull(this.absolute(parent));
        state = stats === null ? "missing" : stats.isDirectory() ? "dir" : "blocked";
        states.set(parent, state);
      }
      if (state === "blocked") return `parent "${parent}" is not a plain directory (symlink or file)`;
      missing = state === "missing";
    }
    return null;
  }

  private async createDir(dir: string, touchedDirs: Set<string>): Promise<void> {
    const absolute = this.absolute(dir);
    try {
      await mkdir(absolute, { mode: this.dirMode });
    } catch (error) {
      if (!(isErrnoException(error) && error.code === "EEXIST")) throw error;
      // Someone else made it meanwhile: not ours to remove later.
      this.manifest.removeDir(dir);
      if (!(await lstatOrNull(absolute))?.isDirectory())
        throw new MaterialiseError(`${absolute} appeared as a non-directory`);
      return;
    }
    await chmodChown(absolute, this.dirMode, this.ownership);
    touchedDirs.add(dirname(absolute));
  }

  /** Removes an owned file (never a foreign one) and the now-empty directories the materialiser made. */
  private async remove(path: string, result: MaterialiseResult, touchedDirs: Set<string>): Promise<void> {
    if (!this.manifest.ownsPath(path)) return;
    const blocked = await this.blockedParent(path, new Map());
    if (blocked !== null) return this.refuse(result, path, blocked);
    const target = await lstatOrNull(this.absolute(path));
    if (target && !target.isDirectory()) {
      await unlink(this.absolute(path));
      touchedDirs.add(dirname(this.absolute(path)));
      result.removed.push(path);
    }
    this.manifest.removePath(path);
    const segments = path.split("/");
    for (let depth = segments.length - 1; depth >= 1; depth--) {
      const parent = segments.slice(0, depth).join("/");
      if (!this.manifest.ownsDir(parent) || !(await this.removeDirIfEmpty(parent))) return;
      touchedDirs.delete(this.absolute(parent));
      touchedDirs.add(dirname(this.absolute(parent)));
    }
  }

  /** rmdir an owned directory; false when it still holds something. */
  private async removeDirIfEmpty(dir: string): Promise<boolean> {
    try {
      await rmdir(this.absolute(dir));
    } catch (error) {
      if (isErrnoException(error) && (error.code === "ENOTEMPTY" || error.code === "EEXIST")) return false;
      if (!(isErrnoException(error) && error.code === "ENOENT")) throw error;
    }
    this.manifest.removeDir(dir);
    return true;
  }

  /** After a resync: owned directories left empty (e.g. by a crash between mkdir and rename) go away. */
  private async pruneEmptyDirs(): Promise<void> {
    const deepestFirst = this.manifest.ownedDirs().sort((a, b) => b.split("/").length - a.split("/").length);
    for (const dir of deepestFirst) {
      const stats = await lstatOrNull(this.absolute(dir));
      if (stats === null) this.manifest.removeDir(dir);
      else if (stats.isDirectory() && (await this.removeDirIfEmpty(dir)))
        await syncDirectory(dirname(this.absolute(dir)));
    }
  }

  private refuse(result: MaterialiseResult, path: string, reason: string): void {
    result.refused.push({ path, reason });
    this.logger.warn({ dir: this.dir, path, reason }, "materialise refused path");
  }

  private runHooks(result: MaterialiseResult): void {
    const changed = [...result.written, ...result.removed];
    for (const hook of this.hooks) {
      if (changed.some((path) => isUnderPrefix(path, hook.prefix))) hook.trigger();
    }
  }

  private absolute(path: string): string {
    return join(this.dir, ...path.split("/"));
  }
}

/** Store paths the materialiser will not write: invalid ones and names it reserves for itself. */
function refusalReason(path: string): string | null {
  const valid = validateStorePath(path);
  if (!valid.ok) return `invalid store path: ${valid.reason}`;
  if (path === manifestFileName) return "reserved name (the materialiser's manifest)";
  if (path.split("/").some(isTempName)) return "reserved name (looks like a materialiser temp file)";
  return null;
}

async function chmodChown(path: string, mode: number, ownership: FileOwnership): Promise<void> {
  await chmod(path, mode);
  if (ownership.uid !== undefined || ownership.gid !== undefined)
    await chown(path, ownership.uid ?? -1, ownership.gid ?? -1);
}

function intentOf(entry: StoreEntry): FileIntent {
  return entry.deleted
    ? { path: entry.path, value: null }
    : { path: entry.path, value: entry.value, version: versionKey(entry.version) };
}

/**
 * Intents for a resync batch: values come with the entries or are read now. An entry read now may have
 * changed since its stamp was listed; what it holds now wins, and `live` follows it.
 */
function intentsOf(
  stamps: readonly ResyncItem[],
  live: Set<string>,
  entriesAt: EntriesAt | undefined,
): FileIntent[] {
  // A path changed during a seq-ordered listing comes twice: its latest stamp stands for both.
  const latest = [...new Map(stamps.map((s) => [s.path, s])).values()];
  const unread = latest.filter((s) => !s.deleted && !("value" in s)).map((s) => s.path);
  if (unread.length > 0 && entriesAt === undefined) throw new Error("resync of stamps without entriesAt");
  const read = new Map((unread.length > 0 ? entriesAt!(unread) : []).map((e) => [e.path, e]));
  return latest.map((stamp): FileIntent => {
    if (stamp.deleted) return { path: stamp.path, value: null };
    const entry = "value" in stamp ? stamp : read.get(stamp.path);
    if (entry === undefined || entry.deleted) {
      live.delete(stamp.path);
      return { path: stamp.path, value: null };
    }
    return intentOf(entry);
  });
}

function ownershipOf(options: MaterialiserOptions): FileOwnership {
  return { fileMode: options.fileMode ?? fileModeDefault, uid: options.uid, gid: options.gid };
}

/** Runs `step` over `items` with at most fsOperationsInFlightMax running; rejects on the first failure. */
async function inParallel<T>(items: readonly T[], step: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await step(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(fsOperationsInFlightMax, items.length) }, worker));
}

function emptyResult(): MaterialiseResult {
  return { written: [], removed: [], refused: [] };
}

function merge(into: MaterialiseResult, from: MaterialiseResult): void {
  into.written.push(...from.written);
  into.removed.push(...from.removed);
  into.refused.push(...from.refused);
}

function validateOptions(options: MaterialiserOptions): void {
  for (const [key, mode] of [
    ["fileMode", options.fileMode],
    ["dirMode", options.dirMode],
  ] as const) {
    if (mode !== undefined && !(Number.isInteger(mode) && mode >= 0 && mode <= 0o7777)) {
      throw new RangeError(`materialiser ${key} must be a mode in 0..0o7777, got ${mode}`);
    }
  }
  for (const [key, id] of [
    ["uid", options.uid],
    ["gid", options.gid],
  ] as const) {
    if (id !== undefined && !(Number.isInteger(id) && id >= 0)) {
      throw new RangeError(`materialiser ${key} must be a non-negative integer, got ${id}`);
    }
  }
  const prefix = options.prefix ?? "";
  if (prefix !== "" && !validateStorePath(prefix.replace(/\/$/, "")).ok) {
    throw new RangeError(`materialiser prefix "${prefix}" is not a store path`);
  }
}
