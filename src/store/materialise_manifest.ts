// The materialiser's manifest, `.tandem-manifest.json` at the top of its directory: the files and
// directories it created (so it deletes only what it owns, never an operator's file), the last change seq it
// applied and the store whose seq that is (so a restart resumes with changesSince(lastAppliedSeq) from the
// same store), and per file the version of the value it
// holds (so a resync skips an unchanged entry without reading it or its file). Written atomically; paths are
// recorded BEFORE the file or directory is created and versions only AFTER the file holding them is in
// place, so a crash can leave an owned name that is missing or a version that lags, never an existing file
// that is not owned or a version the file does not hold.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { validateStorePath } from "../core/store_path.ts";
import type { Version } from "../core/store_types.ts";
import { type FileOwnership, isErrnoException, replaceFile, syncDirectory } from "./materialise_fs.ts";

export const manifestFileName = ".tandem-manifest.json";
/** 2 added `versions` (parallel to `paths`) and `ownership`; a format 1 manifest loads with no versions. */
const manifestFormat = 2;

const ownershipSchema = z.object({
  fileMode: z.number().int(),
  uid: z.number().int().nullable(),
  gid: z.number().int().nullable(),
});
// Paths are checked in a loop after parsing: a schema refinement per path costs ~1 µs each at 100k files.
const manifestSchema = z.object({
  format: z.union([z.literal(1), z.literal(manifestFormat)]),
  lastAppliedSeq: z.number().int().nonnegative(),
  paths: z.array(z.string()),
  dirs: z.array(z.string()),
  versions: z.array(z.string()).optional(),
  ownership: ownershipSchema.optional(),
  storeId: z.number().int().nullable().optional(),
});
type OwnershipRecord = z.infer<typeof ownershipSchema>;

/** A manifest that exists but cannot be used: the materialiser refuses to start rather than guess. */
export class ManifestError extends Error {
  override readonly name = "ManifestError";
}

/** How a manifest records the version a file holds: unique per write, so equal keys mean equal values. */
export function versionKey(version: Version): string {
  return `${version.wallMs}.${version.counter}.${version.nodeId}`;
}

function ownershipRecord(ownership: FileOwnership): OwnershipRecord {
  return { fileMode: ownership.fileMode, uid: ownership.uid ?? null, gid: ownership.gid ?? null };
}

export class Manifest {
  readonly dir: string;
  readonly file: string;
  /** Persisted lazily: a seq that lags on disk only replays changes that are already on disk. */
  lastAppliedSeq = 0;
  /** The lastAppliedSeq the file on disk holds. */
  private savedSeq = 0;
  /** The store (StoreIdentity.storeId) whose seqs lastAppliedSeq counts; null until a resync names it. */
  private store: number | null = null;
  /** Store paths of files the materialiser wrote, each with the version key it holds ("" = unknown). */
  private readonly paths = new Map<string, string>();
  /** Directories (relative) the materialiser created, removed again when they become empty. */
  private readonly dirs = new Set<string>();
  /** The mode and owner files are written with: versions recorded under other ones are not trusted. */
  private readonly ownership: OwnershipRecord;
  /** The owned sets differ from what is on disk. */
  private dirty = false;
  /** Versions, the ownership or the store differ from what is on disk; saved lazily, like the seq. */
  private lazyDirty = false;

  private constructor(dir: string, ownership: FileOwnership) {
    this.dir = dir;
    this.file = join(dir, manifestFileName);
    this.ownership = ownershipRecord(ownership);
  }

  /**
   * Loads the manifest from `dir`; an absent manifest is an empty one (a fresh directory). Versions recorded
   * under another file mode or owner are dropped, so a resync compares (and rewrites) those files.
   */
  static async load(dir: string, ownership: FileOwnership): Promise<Manifest> {
    const manifest = new Manifest(dir, ownership);
    let text: string;
    try {
      text = await readFile(manifest.file, "utf8");
    } catch (error) {
      if (isErrnoException(error) && error.code === "ENOENT") return manifest;
      throw new ManifestError(`cannot read ${manifest.file}`, { cause: error });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new ManifestError(`${manifest.file} is not JSON`, { cause: error });
    }
    const parsed = manifestSchema.safeParse(json);
    if (!parsed.success) {
      throw new ManifestError(`${manifest.file} is malformed: ${z.prettifyError(parsed.error)}`);
    }
    const { paths, dirs, versions, ownership: recorded } = parsed.data;
    const badPath = [...paths, ...dirs].find((p) => !validateStorePath(p).ok);
    if (badPath !== undefined)
      throw new ManifestError(`${manifest.file} is malformed: "${badPath}" is not a store path`);
    if (versions !== undefined && versions.length !== paths.length)
      throw new ManifestError(
        `${manifest.file} is malformed: ${versions.length} versions for ${paths.length} paths`,
      );
    const trusted =
      versions !== undefined &&
      recorded !== undefined &&
      recorded.fileMode === manifest.ownership.fileMode &&
      recorded.uid === manifest.ownership.uid &&
      recorded.gid === manifest.ownership.gid;
    manifest.lastAppliedSeq = parsed.data.lastAppliedSeq;
    manifest.savedSeq = parsed.data.lastAppliedSeq;
    manifest.store = parsed.data.storeId ?? null;
    for (let i = 0; i < paths.length; i++)
      manifest.paths.set(paths[i] as string, trusted ? (versions[i] as string) : "");
    for (const dir of dirs) manifest.dirs.add(dir);
    manifest.lazyDirty = !trusted && paths.length > 0;
    return manifest;
  }

  get storeId(): number | null {
    return this.store;
  }

  set storeId(storeId: number | null) {
    if (storeId !== this.store) this.lazyDirty = true;
    this.store = storeId;
  }

  ownsPath(path: string): boolean {
    return this.paths.has(path);
  }

  ownsDir(dir: string): boolean {
    return this.dirs.has(dir);
  }

  ownedPaths(): string[] {
    return [...this.paths.keys()];
  }

  ownedDirs(): string[] {
    return [...this.dirs];
  }

  /** The version key of the value the file at `path` holds, or "" when not known. */
  versionOf(path: string): string {
    return this.paths.get(path) ?? "";
  }

  addPath(path: string): void {
    if (this.paths.has(path)) return;
    this.paths.set(path, "");
    this.dirty = true;
  }

  /** Records that the owned file at `path` holds this version; call only once the file is in place. */
  setVersion(path: string, key: string): void {
    const held = this.paths.get(path);
    if (held === undefined) throw new Error(`setVersion of an unowned path: ${path}`);
    if (held === key) return;
    this.paths.set(path, key);
    this.lazyDirty = true;
  }

  removePath(path: string): void {
    if (this.paths.delete(path)) this.dirty = true;
  }

  addDir(dir: string): void {
    if (!this.dirs.has(dir)) this.dirty = true;
    this.dirs.add(dir);
  }

  removeDir(dir: string): void {
    if (this.dirs.delete(dir)) this.dirty = true;
  }

  /** The owned sets changed since the last save (a save is needed before those names exist on disk). */
  get isDirty(): boolean {
    return this.dirty;
  }

  /** The seq, versions and store id on disk are current (when they lag, a restart only re-checks more). */
  get isSeqSaved(): boolean {
    return this.savedSeq === this.lastAppliedSeq && !this.lazyDirty;
  }

  /** Replaces the manifest atomically and durably. */
  async save(): Promise<void> {
    const seq = this.lastAppliedSeq;
    const paths = [...this.paths.keys()].sort();
    const body = {
      format: manifestFormat,
      lastAppliedSeq: seq,
      paths,
      versions: paths.map((path) => this.paths.get(path)),
      dirs: [...this.dirs].sort(),
      ownership: this.ownership,
      storeId: this.store,
    };
    this.dirty = false;
    this.lazyDirty = false;
    try {
      await replaceFile(this.file, new TextEncoder().encode(`${JSON.stringify(body)}\n`), {
        fileMode: 0o600,
      });
      await syncDirectory(this.dir);
    } catch (error) {
      this.dirty = true;
      this.lazyDirty = true;
      throw error;
    }
    this.savedSeq = seq;
  }
}
