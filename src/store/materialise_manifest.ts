// The materialiser's manifest, `.tandem-manifest.json` at the top of its directory: the files and
// directories it created (so it deletes only what it owns, never an operator's file) and the last change
// seq it applied (so a restart resumes with changesSince(lastAppliedSeq)). Written atomically; paths are
// recorded BEFORE the file or directory is created, so a crash can leave an owned name that is missing,
// never an existing one that is not owned.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { validateStorePath } from "../core/store_path.ts";
import { isErrnoException, replaceFile, syncDirectory } from "./materialise_fs.ts";

export const manifestFileName = ".tandem-manifest.json";
const manifestFormat = 1;

const storePathSchema = z.string().refine((p) => validateStorePath(p).ok, "not a store path");
const manifestSchema = z.object({
  format: z.literal(manifestFormat),
  lastAppliedSeq: z.number().int().nonnegative(),
  paths: z.array(storePathSchema),
  dirs: z.array(storePathSchema),
});

/** A manifest that exists but cannot be used: the materialiser refuses to start rather than guess. */
export class ManifestError extends Error {
  override readonly name = "ManifestError";
}

export class Manifest {
  readonly dir: string;
  readonly file: string;
  /** Persisted lazily: a seq that lags on disk only replays changes that are already on disk. */
  lastAppliedSeq = 0;
  /** The lastAppliedSeq the file on disk holds. */
  private savedSeq = 0;
  /** Store paths of files the materialiser wrote. */
  private readonly paths = new Set<string>();
  /** Directories (relative) the materialiser created, removed again when they become empty. */
  private readonly dirs = new Set<string>();
  /** The owned sets differ from what is on disk. */
  private dirty = false;

  private constructor(dir: string) {
    this.dir = dir;
    this.file = join(dir, manifestFileName);
  }

  /** Loads the manifest from `dir`; an absent manifest is an empty one (a fresh directory). */
  static async load(dir: string): Promise<Manifest> {
    const manifest = new Manifest(dir);
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
    manifest.lastAppliedSeq = parsed.data.lastAppliedSeq;
    manifest.savedSeq = parsed.data.lastAppliedSeq;
    for (const path of parsed.data.paths) manifest.paths.add(path);
    for (const dir of parsed.data.dirs) manifest.dirs.add(dir);
    return manifest;
  }

  ownsPath(path: string): boolean {
    return this.paths.has(path);
  }

  ownsDir(dir: string): boolean {
    return this.dirs.has(dir);
  }

  ownedPaths(): string[] {
    return [...this.paths];
  }

  ownedDirs(): string[] {
    return [...this.dirs];
  }

  addPath(path: string): void {
    if (!this.paths.has(path)) this.dirty = true;
    this.paths.add(path);
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

  get isSeqSaved(): boolean {
    return this.savedSeq === this.lastAppliedSeq;
  }

  /** Replaces the manifest atomically and durably. */
  async save(): Promise<void> {
    const seq = this.lastAppliedSeq;
    const body = {
      format: manifestFormat,
      lastAppliedSeq: seq,
      paths: [...this.paths].sort(),
      dirs: [...this.dirs].sort(),
    };
    await replaceFile(this.file, new TextEncoder().encode(`${JSON.stringify(body)}\n`), { fileMode: 0o600 });
    await syncDirectory(this.dir);
    this.dirty = false;
    this.savedSeq = seq;
  }
}
