// Where each offloaded file went, recorded in the replicated store so that every node can find it (and
// fetch it with `tandem blob get`): one small JSON entry per file, at RECORDS_PREFIX/ENTRY_ID/INDEX.
import { z } from "zod";
import type { MinAcks, StoreEntry, StoreWrite, WriteOutcome } from "../store/index.ts";

export interface BlobRecord {
  /** The journal entry that carried the file, and the file's place in its list. */
  entryId: string;
  index: number;
  /** The node that recorded the entry (and uploaded the file). */
  origin: string;
  /** The file's name on that node (its base name: a hint for `tandem blob get`'s output). */
  name: string;
  /** Where the object is: a configured store's name and the key in it. */
  store: string;
  key: string;
  /** The object as stored (age ciphertext): its size and SHA-256, as read back after the upload. */
  size: number;
  sha256: string;
  /** The file itself. */
  plainSize: number;
  plainSha256: string;
  uploadedAtMs: number;
}

const recordSchema = z.strictObject({
  entryId: z.string(),
  index: z.int().min(0),
  origin: z.string(),
  name: z.string(),
  store: z.string(),
  key: z.string(),
  size: z.int().min(0),
  sha256: z.string(),
  plainSize: z.int().min(0),
  plainSha256: z.string(),
  uploadedAtMs: z.number(),
});

/** What the records use of the replicated store (the Replicator). */
export interface RecordStore {
  get(path: string): StoreEntry | null;
  list(prefix: string, options: { after?: string; limit: number }): StoreEntry[];
  write(
    writes: readonly StoreWrite[],
    options: { minAcks: MinAcks; timeoutMs?: number },
  ): Promise<WriteOutcome>;
}

export class BlobRecords {
  private readonly store: RecordStore;
  private readonly prefix: string;

  constructor(store: RecordStore, prefix: string) {
    this.store = store;
    this.prefix = prefix;
  }

  get(entryId: string, index: number): BlobRecord | null {
    const entry = this.store.get(this.pathOf(entryId, index));
    return entry === null || entry.deleted ? null : parse(entry.value);
  }

  /** The records of one entry's files, in their order. */
  ofEntry(entryId: string): BlobRecord[] {
    return this.store
      .list(`${this.prefix}/${entryId}/`, { limit: 10_000 })
      .map((entry) => parse(entry.value))
      .filter((record): record is BlobRecord => record !== null)
      .sort((a, b) => a.index - b.index);
  }

  /** Records it here (durably: the local commit), and to `minAcks` peers; false if they did not all answer. */
  async put(record: BlobRecord, minAcks: MinAcks): Promise<boolean> {
    const value = new TextEncoder().encode(JSON.stringify(record));
    const outcome = await this.store.write([{ path: this.pathOf(record.entryId, record.index), value }], {
      minAcks,
    });
    return outcome.acked;
  }

  private pathOf(entryId: string, index: number): string {
    return `${this.prefix}/${entryId}/${index}`;
  }
}

/** A record written by this version; anything else under the prefix (an operator's own entry) is skipped. */
function parse(value: Uint8Array): BlobRecord | null {
  try {
    const parsed = recordSchema.safeParse(JSON.parse(new TextDecoder().decode(value)));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
