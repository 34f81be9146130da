// One put of bench/blob.ts, in a process of its own: bench/blob.ts starts it with the agent's V8 flags and
// malloc tunables, so its peak RSS (VmHWM, read at the end) is the put's plus a Node process's baseline.
// The store is opened through BlobStores, as the agent opens it, before the clock starts (an SFTP login is
// not the put). The timed part is the agent's upload path (src/blob/offload.ts): the file's read stream →
// ageEncryptStream (which hashes the plaintext on its thread) → PassThrough → store.put, or without
// encryption: the read stream → HashingCounter → PassThrough → store.put. Then,
// untimed: the stored object's size is checked against what put() reported, and the object is removed.
// With "idle": the store is opened and an encrypter made, nothing is put (the baseline of the RSS figure).
// Prints one JSON line on stdout: {bytes, storedBytes, seconds, peakRssMiB}.
//
//   node <agent flags> bench/support/blob_put_worker.ts JOB_JSON
import { createReadStream, readFileSync } from "node:fs";
import { PassThrough } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ageEncryptStream } from "../../src/blob/age_stream.ts";
import { BLOB_STREAM_BYTES, HashingCounter, type PutResult } from "../../src/blob/blob_store.ts";
import { BlobStores } from "../../src/blob/blob_stores.ts";
import type { BlobStoreConfig } from "../../src/config/index.ts";

export interface PutJob {
  store: BlobStoreConfig;
  file: string;
  key: string;
  /** age recipients (age1...); null: the same path without ageEncryptStream. */
  recipients: string[] | null;
  idle: boolean;
}

export interface PutReport {
  /** Plaintext bytes read from the file. */
  bytes: number;
  /** Bytes the store holds (ciphertext when encrypted). */
  storedBytes: number;
  /** The put alone: from opening the file to put() resolving. */
  seconds: number;
  /** VmHWM: the process's peak resident set, start-up included. */
  peakRssMiB: number;
}

function peakRssMiB(): number {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"));
  if (match === null) throw new Error("no VmHWM in /proc/self/status");
  return Number(match[1]) / 1024;
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? "") as PutJob;
  const stores = new BlobStores([job.store]);
  try {
    const store = await stores.get(job.store.name);
    if (job.idle) {
      // Made (its thread started) and stopped again: a thread left running would keep this process up.
      if (job.recipients !== null) (await ageEncryptStream(job.recipients)).destroy();
      const report: PutReport = { bytes: 0, storedBytes: 0, seconds: 0, peakRssMiB: peakRssMiB() };
      process.stdout.write(`${JSON.stringify(report)}\n`);
      return;
    }
    const startedAt = performance.now();
    const body = new PassThrough({ highWaterMark: BLOB_STREAM_BYTES });
    const read = createReadStream(job.file, { highWaterMark: BLOB_STREAM_BYTES });
    let plain: () => PutResult;
    let feeding: Promise<void>;
    if (job.recipients === null) {
      const counter = new HashingCounter();
      plain = () => counter.result();
      feeding = pipeline(read, counter, body);
    } else {
      const encrypter = await ageEncryptStream(job.recipients);
      plain = () => encrypter.plaintext();
      feeding = pipeline(read, encrypter, body);
    }
    const [, put] = await Promise.all([feeding, store.put(job.key, body)]);
    const seconds = (performance.now() - startedAt) / 1000;
    const peak = peakRssMiB();
    const stored = await store.stat(job.key);
    if (stored?.size !== put.size) {
      throw new Error(`stored ${stored?.size ?? "nothing"} bytes, put() reported ${put.size}`);
    }
    await store.delete(job.key);
    const report: PutReport = { bytes: plain().size, storedBytes: put.size, seconds, peakRssMiB: peak };
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } finally {
    await stores.close();
  }
}

await main();
