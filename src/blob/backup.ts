// A backup of a node's state, taken while it runs: every SQLite database in the data directory copied as a
// consistent snapshot (VACUUM INTO on a read-only connection, in a worker thread: it reads one WAL snapshot,
// so writers go on and the event loop stays free), the JSON state files beside them, and key material only
// when asked; packed as tar with a manifest of sizes and SHA-256, gzipped, encrypted with age and uploaded
// to a configured target. The key names the node and the time: PREFIX/NODE/NODE-YYYYMMDDTHHMMSSZ.tar.gz.age.
import { createReadStream } from "node:fs";
import { copyFile, mkdir, readdir, rm, stat } from "node:fs/promises";
import { createRequire } from "node:module";
import { basename, join } from "node:path";
import { PassThrough } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Worker } from "node:worker_threads";
import { createGzip } from "node:zlib";
import { pack as tarPack } from "tar-stream";
import { ageEncryptStream } from "./age_stream.ts";
import { BLOB_STREAM_BYTES, type BlobStore, hashOf } from "./blob_store.ts";

export const BACKUP_FORMAT = 1;
export const MANIFEST_NAME = "manifest.json";
/** The data directory's own files that are not state: the lock, SQLite's side files, our temporary folders. */
const SKIPPED = /^(agent\.lock|.*\.db-(wal|shm|journal)|backup-tmp.*|\..*)$/;

export interface BackupManifest {
  format: number;
  node: string;
  cluster: string;
  createdAt: string;
  version: string;
  files: Array<{ name: string; size: number; sha256: string }>;
}

export interface BackupProgress {
  phase: "snapshot" | "upload";
  bytesDone: number;
  bytesTotal: number;
}

export interface BackupRequest {
  dataDir: string;
  nodeId: string;
  clusterName: string;
  version: string;
  store: BlobStore;
  /** The target's folder in the store. */
  prefix: string;
  recipients: readonly string[];
  /** Key files to include (under keys/ in the archive); empty unless the operator asked. */
  keyFiles: readonly string[];
  now?: Date;
  onProgress?: (progress: BackupProgress) => void;
}

export interface BackupResult {
  id: string;
  key: string;
  /** The uploaded object's size (encrypted, compressed). */
  size: number;
  manifest: BackupManifest;
}

/** NODE-YYYYMMDDTHHMMSSZ: sorts by time, names its node. */
export function backupId(nodeId: string, at: Date): string {
  return `${nodeId}-${at
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z")}`;
}

export function backupKey(prefix: string, nodeId: string, id: string): string {
  return `${prefix}/${nodeId}/${id}.tar.gz.age`;
}

/** The id and its time back from a key; null for an object that is not one of ours. */
export function parseBackupKey(key: string): { id: string; node: string; createdMs: number } | null {
  const match = /\/([^/]+)\/(\1-(\d{8})T(\d{6})Z)\.tar\.gz\.age$/.exec(key);
  if (match === null) return null;
  const [, node = "", id = "", d = "", t = ""] = match;
  const createdMs = backupStampMs(d, t);
  return Number.isNaN(createdMs) ? null : { id, node, createdMs };
}

/** The time of a backup id's stamp, its date (YYYYMMDD) and time (HHMMSS) parts; NaN if not a time. */
export function backupStampMs(date: string, time: string): number {
  const [y, mo, d] = [date.slice(0, 4), date.slice(4, 6), date.slice(6)];
  return Date.parse(`${y}-${mo}-${d}T${time.slice(0, 2)}:${time.slice(2, 4)}:${time.slice(4)}Z`);
}

export async function takeBackup(request: BackupRequest): Promise<BackupResult> {
  const at = request.now ?? new Date();
  const id = backupId(request.nodeId, at);
  const work = join(request.dataDir, `backup-tmp-${id}`);
  await rm(work, { recursive: true, force: true });
  await mkdir(join(work, "keys"), { recursive: true, mode: 0o700 });
  try {
    const files = await snapshotState(request, work);
    const manifest: BackupManifest = {
      format: BACKUP_FORMAT,
      node: request.nodeId,
      cluster: request.clusterName,
      createdAt: at.toISOString(),
      version: request.version,
      files: await Promise.all(
        files.map(async (name) => ({
          name,
          ...(await hashOf(createReadStream(join(work, name), { highWaterMark: BLOB_STREAM_BYTES }))),
        })),
      ),
    };
    const key = backupKey(request.prefix, request.nodeId, id);
    const put = await upload(request, work, manifest, key);
    return { id, key, size: put.size, manifest };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Removes what an interrupted backup left in the data directory (called when the capability starts). */
export async function clearBackupLeftovers(dataDir: string): Promise<void> {
  const names = await readdir(dataDir).catch(() => []);
  await Promise.all(
    names
      .filter((name) => name.startsWith("backup-tmp"))
      .map((name) => rm(join(dataDir, name), { recursive: true, force: true })),
  );
}

/** Copies the state into `work`; returns the archive names (keys under keys/). */
async function snapshotState(request: BackupRequest, work: string): Promise<string[]> {
  const names: string[] = [];
  const entries = await readdir(request.dataDir, { withFileTypes: true });
  const dbs = entries.filter((e) => e.isFile() && e.name.endsWith(".db") && !SKIPPED.test(e.name));
  const states = entries.filter((e) => e.isFile() && e.name.endsWith(".json") && !SKIPPED.test(e.name));
  const total = (await Promise.all(dbs.map((e) => stat(join(request.dataDir, e.name))))).reduce(
    (sum, s) => sum + s.size,
    0,
  );
  let done = 0;
  request.onProgress?.({ phase: "snapshot", bytesDone: 0, bytesTotal: total });
  for (const db of dbs) {
    await vacuumInto(join(request.dataDir, db.name), join(work, db.name));
    done += (await stat(join(request.dataDir, db.name))).size;
    request.onProgress?.({ phase: "snapshot", bytesDone: Math.min(done, total), bytesTotal: total });
    names.push(db.name);
  }
  // JSON state files are replaced whole (write, fsync, rename): a copy is one version or the other.
  for (const state of states) {
    await copyFile(join(request.dataDir, state.name), join(work, state.name));
    names.push(state.name);
  }
  for (const file of request.keyFiles) {
    const name = `keys/${basename(file)}`;
    await copyFile(file, join(work, name));
    names.push(name);
  }
  return names;
}

const vacuumWorkerSource = `
const { workerData } = require("node:worker_threads");
const Database = require(workerData.module);
const db = new Database(workerData.source, { readonly: true, fileMustExist: true });
try {
  db.pragma("busy_timeout = 10000");
  db.prepare("VACUUM INTO ?").run(workerData.target);
} finally {
  db.close();
}
`;

/**
 * A consistent copy of a live SQLite database. The module path is resolved here, where it resolves both
 * from the sources and from the bundle (better-sqlite3 stays outside it), and handed to the worker.
 */
function vacuumInto(source: string, target: string): Promise<void> {
  const module = createRequire(import.meta.url).resolve("better-sqlite3");
  return new Promise((resolve, reject) => {
    const worker = new Worker(vacuumWorkerSource, { eval: true, workerData: { module, source, target } });
    worker.once("error", reject);
    worker.once("exit", (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`snapshot of ${basename(source)} failed (worker exit ${code})`)),
    );
  });
}

/** tar (manifest first) → gzip → age → the store, reporting the bytes packed. */
async function upload(request: BackupRequest, work: string, manifest: BackupManifest, key: string) {
  const total = manifest.files.reduce((sum, f) => sum + f.size, 0);
  let done = 0;
  request.onProgress?.({ phase: "upload", bytesDone: 0, bytesTotal: total });
  const tar = tarPack();
  const packing = (async () => {
    const text = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
    tar.entry({ name: MANIFEST_NAME, size: text.length, mode: 0o600 }, text);
    for (const file of manifest.files) {
      const entry = tar.entry({ name: file.name, size: file.size, mode: 0o600 });
      const read = createReadStream(join(work, file.name), { highWaterMark: BLOB_STREAM_BYTES });
      read.on("data", (chunk) => {
        done += chunk.length;
        request.onProgress?.({ phase: "upload", bytesDone: done, bytesTotal: total });
      });
      await pipeline(read, entry);
    }
    tar.finalize();
  })();
  // A file that cannot be read ends the archive with its error, so the upload fails (and is not kept).
  packing.catch((error: Error) => tar.destroy(error));
  const body = new PassThrough({ highWaterMark: BLOB_STREAM_BYTES });
  const [, , put] = await Promise.all([
    packing,
    pipeline(tar, createGzip({ level: 1 }), await ageEncryptStream(request.recipients), body),
    request.store.put(key, body),
  ]);
  return put;
}
