// Health heartbeats on the mesh channel "health": a ping carries the sender's sequence number and monotonic
// send time; the pong echoes both so the sender measures the round trip with its own clock only.
// JSON, size-capped and schema-checked before use.
import { z } from "zod";
import { decodeJsonPayload, encodeJsonPayload } from "../mesh/index.ts";

export const HEALTH_CHANNEL = "health";

/** Both messages encode to well under this; anything larger is garbage and is not parsed. */
export const healthMessageBytesMax = 256;

const seq = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
/** The pinging node's performance.now(): only that node interprets it. */
const sentAtMs = z.number().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const healthMessageSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("ping"), seq, sentAtMs }),
  z.strictObject({ type: z.literal("pong"), seq, sentAtMs }),
]);

export type HealthMessage = z.infer<typeof healthMessageSchema>;

export type HealthDecodeResult = { ok: true; message: HealthMessage } | { ok: false; reason: string };

export function encodeHealthMessage(message: HealthMessage): Uint8Array {
  return encodeJsonPayload(message);
}

/** Never throws: hostile bytes from a peer become a reason to log. */
export function decodeHealthMessage(payload: Uint8Array): HealthDecodeResult {
  const decoded = decodeJsonPayload(payload, healthMessageSchema, healthMessageBytesMax);
  return decoded.ok
    ? { ok: true, message: decoded.value }
    : { ok: false, reason: `invalid health message: ${decoded.reason}` };
}
