// What travels on a queue: a batch of one origin's entries, in recording order. In the clear, what a queue
// and a receiver route and de-duplicate by (the origin, the entries' ids); then the entries themselves,
// sealed together to the cluster's replication key. One seal per batch, not per entry: a seal or an open
// costs an X25519 exchange (about a millisecond here), which per entry would cap the journal at a few
// hundred entries a second. A receiver opens the seal, and the entries inside must agree with the clear
// fields: a message whose seal does not open (altered, or sealed to another key), whose clear fields were
// changed, or whose content is malformed is refused whole, and nothing of it is applied.
//
//   {"v":1,"origin":"n1","ids":["…","…"]}\n<age ciphertext of the entries as a JSON array>
import { z } from "zod";
import { entryTypePattern, nodeIdPattern } from "../core/types.ts";
import type { JournalEntry } from "./journal_db.ts";
import { type JournalKey, SealedPayloadError } from "./journal_key.ts";

export const orderingKeyMax = 256;
export const entryIdPattern = /^[A-Za-z0-9-]{1,64}$/;
/** Entries in one message at most. */
export const batchEntriesMax = 256;

const headerSchema = z.strictObject({
  v: z.literal(1),
  origin: z.string().regex(nodeIdPattern),
  ids: z.array(z.string().regex(entryIdPattern)).min(1).max(batchEntriesMax),
});
export type MessageHeader = z.infer<typeof headerSchema>;

const entrySchema = z.strictObject({
  id: z.string().regex(entryIdPattern),
  origin: z.string().regex(nodeIdPattern),
  hlc: z.string().regex(/^\d+\.\d+$/),
  type: z.string().regex(entryTypePattern),
  key: z.string().min(1).max(orderingKeyMax).nullable(),
  keySeq: z.number().int().min(0),
  keyFloor: z.number().int().min(1).optional(),
  data: z.string(),
  files: z.array(z.string().min(1).max(4096)).max(1000),
});
const entriesSchema = z.array(entrySchema).min(1).max(batchEntriesMax);

export type OpenResult =
  | { ok: true; origin: string; entries: JournalEntry[] }
  | { ok: false; reason: string; header: MessageHeader | null };

const newline = 0x0a;
/** 256 ids of up to 64 characters, quoted, plus the rest. */
const headerBytesMax = 20_000;

/** Seals `entries` (one origin's, 1 to batchEntriesMax, in recording order) into one message. */
export async function sealBatch(entries: readonly JournalEntry[], key: JournalKey): Promise<Uint8Array> {
  const first = entries[0];
  if (
    first === undefined ||
    entries.length > batchEntriesMax ||
    entries.some((e) => e.origin !== first.origin)
  ) {
    throw new RangeError(`a batch holds 1 to ${batchEntriesMax} entries of one origin`);
  }
  const header: MessageHeader = { v: 1, origin: first.origin, ids: entries.map((e) => e.id) };
  // keyFloor only when a lane was pruned: a receiver of an older version refuses a field it does not know.
  const inner = entries.map((e) => ({
    id: e.id,
    origin: e.origin,
    hlc: e.hlc,
    type: e.type,
    key: e.key,
    keySeq: e.keySeq,
    ...(e.keyFloor !== undefined && e.keyFloor > 0 && e.key !== null ? { keyFloor: e.keyFloor } : {}),
    data: e.data,
    files: e.files,
  }));
  const headerBytes = new TextEncoder().encode(`${JSON.stringify(header)}\n`);
  const sealed = await key.seal(new TextEncoder().encode(JSON.stringify(inner)));
  const message = new Uint8Array(headerBytes.length + sealed.length);
  message.set(headerBytes, 0);
  message.set(sealed, headerBytes.length);
  return message;
}

/** The clear header alone, or null when malformed. */
export function readHeader(message: Uint8Array): MessageHeader | null {
  const end = message.subarray(0, headerBytesMax + 1).indexOf(newline);
  if (end < 0) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(message.subarray(0, end)));
  } catch {
    return null;
  }
  const header = headerSchema.safeParse(parsed);
  return header.success ? header.data : null;
}

/** Opens a message; `header` is its readHeader() when the caller read it already. */
export async function openBatch(
  message: Uint8Array,
  key: JournalKey,
  header: MessageHeader | null = readHeader(message),
): Promise<OpenResult> {
  if (header === null) return { ok: false, reason: "malformed header", header: null };
  const sealed = message.subarray(message.indexOf(newline) + 1);
  let plaintext: Uint8Array;
  try {
    plaintext = await key.open(sealed);
  } catch (error) {
    if (error instanceof SealedPayloadError) return { ok: false, reason: error.message, header };
    throw error;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(plaintext));
  } catch {
    return { ok: false, reason: "sealed content is not JSON", header };
  }
  const inner = entriesSchema.safeParse(parsed);
  if (!inner.success)
    return { ok: false, reason: `sealed content: ${inner.error.issues[0]?.message}`, header };
  const entries = inner.data;
  const agrees =
    entries.length === header.ids.length &&
    entries.every((entry, i) => entry.id === header.ids[i] && entry.origin === header.origin);
  if (!agrees)
    return { ok: false, reason: "the clear fields disagree with the sealed entries (altered)", header };
  return { ok: true, origin: header.origin, entries };
}
