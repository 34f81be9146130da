// What travels on a queue for one entry: the fields a queue routes by, in the clear (the id, for its
// de-duplication; the origin and ordering key, for its ordering), then the whole entry sealed to the
// cluster's replication key. A receiver opens the seal and the entry inside must agree with the clear
// fields: a message whose seal does not open (altered, or sealed to another key), whose clear fields were
// changed, or whose content is malformed is refused, and never applied.
//
//   {"v":1,"id":...,"origin":...,"key":...}\n<age ciphertext>
import { z } from "zod";
import { nodeIdPattern } from "../core/types.ts";
import type { JournalEntry } from "./journal_db.ts";
import { type JournalKey, SealedPayloadError } from "./journal_key.ts";

/** An entry type: what its handler is chosen by. */
export const entryTypePattern = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const orderingKeyMax = 256;
export const entryIdPattern = /^[A-Za-z0-9-]{1,64}$/;

const headerSchema = z.strictObject({
  v: z.literal(1),
  id: z.string().regex(entryIdPattern),
  origin: z.string().regex(nodeIdPattern),
  key: z.string().min(1).max(orderingKeyMax).nullable(),
});
export type MessageHeader = z.infer<typeof headerSchema>;

const entrySchema = z.strictObject({
  id: z.string().regex(entryIdPattern),
  origin: z.string().regex(nodeIdPattern),
  hlc: z.string().regex(/^\d+\.\d+$/),
  type: z.string().regex(entryTypePattern),
  key: z.string().min(1).max(orderingKeyMax).nullable(),
  keySeq: z.number().int().min(0),
  data: z.string(),
  files: z.array(z.string().min(1).max(4096)).max(1000),
});

export type OpenResult =
  | { ok: true; entry: JournalEntry }
  | { ok: false; reason: string; header: MessageHeader | null };

const newline = 0x0a;
const headerBytesMax = 1024;

export async function sealMessage(entry: JournalEntry, key: JournalKey): Promise<Uint8Array> {
  const header: MessageHeader = { v: 1, id: entry.id, origin: entry.origin, key: entry.key };
  const inner: z.infer<typeof entrySchema> = {
    id: entry.id,
    origin: entry.origin,
    hlc: entry.hlc,
    type: entry.type,
    key: entry.key,
    keySeq: entry.keySeq,
    data: entry.data,
    files: entry.files,
  };
  const headerBytes = new TextEncoder().encode(`${JSON.stringify(header)}\n`);
  const sealed = await key.seal(new TextEncoder().encode(JSON.stringify(inner)));
  const message = new Uint8Array(headerBytes.length + sealed.length);
  message.set(headerBytes, 0);
  message.set(sealed, headerBytes.length);
  return message;
}

/** The clear header alone (what a queue adapter routes by), or null when malformed. */
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

export async function openMessage(message: Uint8Array, key: JournalKey): Promise<OpenResult> {
  const header = readHeader(message);
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
  const inner = entrySchema.safeParse(parsed);
  if (!inner.success)
    return { ok: false, reason: `sealed content: ${inner.error.issues[0]?.message}`, header };
  const entry = inner.data;
  if (entry.id !== header.id || entry.origin !== header.origin || entry.key !== header.key) {
    return { ok: false, reason: "the clear fields disagree with the sealed entry (altered)", header };
  }
  return { ok: true, entry };
}
