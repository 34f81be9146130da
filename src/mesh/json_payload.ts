// JSON payloads on the mesh: the one place where bytes from a peer become a typed, schema-checked value.
// Never throws on hostile input; the reason comes back to be logged.
import type { z } from "zod";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export type JsonPayloadResult<T> = { ok: true; value: T } | { ok: false; reason: string };

export function encodeJsonPayload(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

/** `bytesMax` refuses oversize input before parsing it. */
export function decodeJsonPayload<T>(
  payload: Uint8Array,
  schema: z.ZodType<T>,
  bytesMax = Number.POSITIVE_INFINITY,
): JsonPayloadResult<T> {
  if (payload.byteLength > bytesMax) {
    return { ok: false, reason: `${payload.byteLength} bytes exceeds ${bytesMax}` };
  }
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(payload));
  } catch {
    return { ok: false, reason: "not UTF-8 JSON" };
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? `${issue.path.join(".")}: ` : "";
    return { ok: false, reason: `${where}${issue?.message ?? "schema mismatch"}` };
  }
  return { ok: true, value: parsed.data };
}
