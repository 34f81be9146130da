// `tandem restore`: a backup (src/blob/backup.ts) fetched, decrypted, unpacked and checked against its
// manifest into a new data directory, written beside it and renamed into place only when every file checks
// out. Two things are not restored as they were: the store gets a fresh change-log identity (its peers
// then read it from the start, see src/store/renew_identity.ts), and the election state (term and vote) is
// left out, since a node that forgot a vote it gave after the backup could vote twice in one term: the
// node rejoins as a new member (docs/blob.md). Key material, when the backup holds it, goes to
// keys-from-backup/ for the operator to put where the config expects it.
import { createWriteStream } from "node:fs";
import { mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { extract as tarExtract } from "tar-stream";
import { fsyncPath } from "../shell/index.ts";
import { renewStoreIdentity } from "../store/index.ts";
import { ageDecryptStream } from "./age_stream.ts";
import { type BackupManifest, MANIFEST_NAME } from "./backup.ts";
import { type BlobStore, HashingCounter } from "./blob_store.ts";

export const ELECTION_STATE_FILE = "election-state.json";
export const RESTORED_KEYS_DIR = "keys-from-backup";

export class RestoreError extends Error {
  override readonly name = "RestoreError";
}

export interface RestoreRequest {
  store: BlobStore;
  key: string;
  identities: readonly string[];
  dataDir: string;
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
}

const namePattern = /^(keys\/)?[A-Za-z0-9_][A-Za-z0-9._-]*$/;

export async function restoreBackup(request: RestoreRequest): Promise<BackupManifest> {
  const existing = await readdir(request.dataDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return [];
    throw error;
  });
  if (existing.length > 0)
    throw new RestoreError(`${request.dataDir} is not empty: restore into a new or empty directory`);
  const stored = await request.store.stat(request.key);
  if (stored === null) throw new RestoreError(`no backup ${request.key} in store ${request.store.name}`);
  const partial = `${request.dataDir.replace(/\/+$/, "")}.restoring`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true, mode: 0o700 });
  await mkdir(join(partial, "keys"), { mode: 0o700 });
  try {
    const manifest = await unpack(request, partial, stored.size);
    await place(partial, manifest);
    await rm(request.dataDir, { recursive: true, force: true });
    await mkdir(dirname(request.dataDir), { recursive: true });
    await rename(partial, request.dataDir);
    await fsyncPath(dirname(request.dataDir));
    return manifest;
  } catch (error) {
    await rm(partial, { recursive: true, force: true });
    throw error;
  }
}

/** Streams the archive into `dir`, each file hashed on the way; checks every file against the manifest. */
async function unpack(request: RestoreRequest, dir: string, storedSize: number): Promise<BackupManifest> {
  let manifest: BackupManifest | null = null;
  const seen = new Map<string, { size: number; sha256: string }>();
  let read = 0;
  const source = await request.store.get(request.key);
  source.on("data", (chunk: Buffer) => {
    read += chunk.length;
    request.onProgress?.(read, storedSize);
  });
  const extract = tarExtract();
  extract.on("entry", (header, stream, next) => {
    const name = header.name;
    const fail = (message: string) => {
      stream.resume();
      next(new RestoreError(message));
    };
    if (header.type !== "file" || !namePattern.test(name))
      return fail(`unexpected entry ${JSON.stringify(name)} in the archive`);
    if (name === MANIFEST_NAME) {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk) => {
        chunks.push(chunk as Buffer);
      });
      stream.on("end", () => {
        try {
          manifest = JSON.parse(Buffer.concat(chunks).toString("utf8")) as BackupManifest;
          next();
        } catch {
          next(new RestoreError("the archive's manifest is not JSON"));
        }
      });
      return;
    }
    if (manifest === null) return fail("the archive does not start with its manifest");
    if (!manifest.files.some((f) => f.name === name))
      return fail(`${name} is in the archive but not in its manifest`);
    const counter = new HashingCounter();
    pipeline(stream, counter, createWriteStream(join(dir, name), { mode: 0o600 })).then(
      () => {
        seen.set(name, counter.result());
        next();
      },
      (error: Error) => next(error),
    );
  });
  await pipeline(source, ageDecryptStream(request.identities), createGunzip(), extract);
  const checked = manifest as BackupManifest | null;
  if (checked === null) throw new RestoreError("the archive has no manifest");
  for (const file of checked.files) {
    const got = seen.get(file.name);
    if (got === undefined) throw new RestoreError(`${file.name} is missing from the archive`);
    if (got.size !== file.size || got.sha256 !== file.sha256) {
      throw new RestoreError(`${file.name} does not match the manifest (${got.size} of ${file.size} bytes)`);
    }
  }
  return checked;
}

/** The restored directory as the agent will find it: a fresh store identity, no vote, keys set aside. */
async function place(dir: string, manifest: BackupManifest): Promise<void> {
  await rm(join(dir, ELECTION_STATE_FILE), { force: true });
  if (manifest.files.some((f) => f.name === "store.db")) renewStoreIdentity(join(dir, "store.db"));
  const keys = await readdir(join(dir, "keys"));
  if (keys.length > 0) await rename(join(dir, "keys"), join(dir, RESTORED_KEYS_DIR));
  else await rm(join(dir, "keys"), { recursive: true });
  for (const name of await readdir(dir)) {
    if ((await stat(join(dir, name))).isFile()) await fsyncPath(join(dir, name));
  }
  await fsyncPath(dir);
}
