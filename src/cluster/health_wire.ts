// Health heartbeats on the mesh channel "health": a ping carries the sender's sequence number and monotonic
// send time; the pong echoes both so the sender measures the round trip with its own clock only.
// JSON, size-capped and schema-checked before use.
import { z } from "zod";

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

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export function encodeHealthMessage(message: HealthMessage): Uint8Array {
  return encoder.encode(JSON.stringify(message));
}

/** Never throws: hostile bytes from a peer become a reason to log. */
export function decodeHealthMessage(payload: Uint8Array): HealthDecodeResult {
  if (payload.byteLength > healthMessageBytesMax) {
    return {
      ok: false,
      reason: `health message of ${payload.byteLength} bytes exceeds ${healthMessageBytesMax}`,
    };
  }
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(payload));
  } catch {
    return { ok: false, reason: "health message is not UTF-8 JSON" };
  }
  const parsed = healthMessageSchema.safeParse(value);
  if (!parsed.success)
    return { ok: false, reason: `invalid health message: ${parsed.error.issues[0]?.message}` };
  return { ok: true, message: parsed.data };
}
