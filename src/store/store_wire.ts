// Store sync messages on the mesh: JSON with values as base64, schema-checked and bounded before the core
// sees them. One-way messages on two channels: "store.apply" carries the write path (apply, apply-ack),
// "store.sync" the anti-entropy rounds (digest, stamps, pull, push, entries). The core matches answers to
// requests and owns every timeout itself, so mesh request/response would only add a second timer.

import { z } from "zod";
import { decodeBase64Strict } from "../core/base64.ts";
import { versionCounterMax, versionWallMsMax } from "../core/lww.ts";
import { validateStorePath } from "../core/store_path.ts";
import type { StoreSyncLimits, StoreSyncMessage } from "../core/store_sync_types.ts";
import type { StoreEntry } from "../core/store_types.ts";
import { decodeJsonPayload, encodeJsonPayload } from "../mesh/index.ts";

export const STORE_APPLY_CHANNEL = "store.apply";
export const STORE_SYNC_CHANNEL = "store.sync";

export type StoreChannel = typeof STORE_APPLY_CHANNEL | typeof STORE_SYNC_CHANNEL;

export function channelOf(message: StoreSyncMessage): StoreChannel {
  return message.type === "apply" || message.type === "apply-ack" ? STORE_APPLY_CHANNEL : STORE_SYNC_CHANNEL;
}

/** What the receiver accepts: the sync limits (both sides run the defaults) plus the value size bound. */
export interface StoreWireLimits {
  sync: StoreSyncLimits;
  valueBytesMax: number;
  /** A whole message; the mesh frame bound. */
  messageBytesMax: number;
  bucketCount: number;
}

const counter = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const nodeId = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/);
const version = z.strictObject({
  wallMs: z.number().int().nonnegative().max(versionWallMsMax),
  counter: z.number().int().nonnegative().max(versionCounterMax),
  nodeId,
});
const path = z.string().refine((p) => validateStorePath(p).ok, { message: "invalid store path" });

function schemaFor(limits: StoreWireLimits) {
  const value = z
    .string()
    .max(Math.ceil(limits.valueBytesMax / 3) * 4)
    .transform((text, ctx) => {
      const bytes = decodeBase64Strict(text);
      if (bytes === null) {
        ctx.addIssue({ code: "custom", message: "invalid base64" });
        return z.NEVER;
      }
      return new Uint8Array(bytes);
    });
  const entry = z.strictObject({ path, value, version, deleted: z.boolean() });
  const entries = z.array(entry).max(limits.sync.entriesPerMessageMax);
  const bucket = z
    .number()
    .int()
    .nonnegative()
    .max(limits.bucketCount - 1);
  const roundId = counter;
  const writeId = z.string().min(1).max(128);
  return z.discriminatedUnion("type", [
    z.strictObject({ type: z.literal("apply"), writeId, chunk: counter, entries }),
    z.strictObject({ type: z.literal("apply-ack"), writeId, chunk: counter }),
    z.strictObject({
      type: z.literal("digest"),
      roundId,
      buckets: z
        .array(z.strictObject({ bucket, fingerprint: z.string().regex(/^[0-9a-f]{16}$/) }))
        .max(limits.bucketCount),
    }),
    z.strictObject({
      type: z.literal("stamps"),
      roundId,
      buckets: z.array(bucket).max(limits.bucketCount),
      // One bucket may exceed stampsPerMessageMax (it travels alone); the message byte bound caps it.
      stamps: z.array(z.strictObject({ path, version, deleted: z.boolean() })),
      more: z.boolean(),
    }),
    z.strictObject({
      type: z.literal("pull"),
      roundId,
      paths: z.array(path).max(limits.sync.pathsPerPullMax),
    }),
    z.strictObject({ type: z.literal("push"), roundId, entries }),
    z.strictObject({ type: z.literal("entries"), roundId, entries, last: z.boolean() }),
  ]) satisfies z.ZodType<StoreSyncMessage>;
}

export type StoreMessageDecoder = (payload: Uint8Array) => StoreDecodeResult;
export type StoreDecodeResult = { ok: true; message: StoreSyncMessage } | { ok: false; reason: string };

/** A decoder for these limits. Never throws: hostile bytes from a peer become a reason to log. */
export function storeMessageDecoder(limits: StoreWireLimits): StoreMessageDecoder {
  const schema = schemaFor(limits);
  return (payload) => {
    const decoded = decodeJsonPayload(payload, schema, limits.messageBytesMax);
    return decoded.ok
      ? { ok: true, message: decoded.value }
      : { ok: false, reason: `invalid store message: ${decoded.reason}` };
  };
}

function entryJson(entry: StoreEntry) {
  const value = Buffer.from(entry.value.buffer, entry.value.byteOffset, entry.value.byteLength);
  return { ...entry, value: value.toString("base64") };
}

export function encodeStoreMessage(message: StoreSyncMessage): Uint8Array {
  switch (message.type) {
    case "apply":
    case "push":
    case "entries":
      return encodeJsonPayload({ ...message, entries: message.entries.map(entryJson) });
    default:
      return encodeJsonPayload(message);
  }
}
