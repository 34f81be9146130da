// The blob capability's running part: the configured stores, the records of offloaded files, and reading
// one back decrypted (what `tandem blob get` and GET /api/v1/blobs/{entry}/{n} serve), on any node.
import type { Readable } from "node:stream";
import { ageDecryptStream } from "./age_stream.ts";
import type { BlobRecord, BlobRecords } from "./blob_records.ts";
import type { BlobStores } from "./blob_stores.ts";

export interface BlobNodeOptions {
  stores: BlobStores;
  records: BlobRecords;
  /** The age identities objects are read with. */
  identities: readonly string[];
  /** Where offload sends files, if it runs here. */
  offloadStore: string | null;
}

export class BlobNode {
  private readonly options: BlobNodeOptions;

  constructor(options: BlobNodeOptions) {
    this.options = options;
  }

  /** Where an entry's files went (empty: none offloaded, or not yet replicated here). */
  recordsOf(entryId: string): BlobRecord[] {
    return this.options.records.ofEntry(entryId);
  }

  /**
   * The decrypted bytes of an entry's file, or null when no record says where it is. The stream fails
   * with AgeDecryptError if the object was altered, or sealed to a key this node does not hold.
   */
  async open(entryId: string, index: number): Promise<{ record: BlobRecord; stream: Readable } | null> {
    const record = this.options.records.get(entryId, index);
    if (record === null) return null;
    const store = await this.options.stores.get(record.store);
    const sealed = await store.get(record.key);
    const stream = sealed.pipe(ageDecryptStream(this.options.identities));
    sealed.on("error", (error) => stream.destroy(error));
    // A reader that goes away early (a client hanging up) must not leave the store's stream open.
    stream.on("close", () => sealed.destroy());
    return { record, stream };
  }

  status(): Record<string, unknown> {
    return {
      stores: this.options.stores.names().map((name) => ({ name, type: this.options.stores.kindOf(name) })),
      offload: this.options.offloadStore === null ? null : { store: this.options.offloadStore },
    };
  }

  close(): Promise<void> {
    return this.options.stores.close();
  }
}
