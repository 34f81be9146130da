// Election messages on the mesh channel "election": JSON, schema-checked before the core sees them.
import { z } from "zod";
import type { ElectionMessage } from "../core/election_types.ts";

export const ELECTION_CHANNEL = "election";

const term = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const seq = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const electionMessageSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("pre-vote"), term }),
  z.strictObject({ type: z.literal("pre-vote-response"), term, granted: z.boolean() }),
  z.strictObject({ type: z.literal("vote"), term, transfer: z.boolean() }),
  z.strictObject({ type: z.literal("vote-response"), term, granted: z.boolean() }),
  z.strictObject({ type: z.literal("heartbeat"), term, seq }),
  z.strictObject({ type: z.literal("heartbeat-response"), term, seq }),
  z.strictObject({ type: z.literal("timeout-now"), term }),
]) satisfies z.ZodType<ElectionMessage>;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export function encodeElectionMessage(message: ElectionMessage): Uint8Array {
  return encoder.encode(JSON.stringify(message));
}

export type DecodeResult = { ok: true; message: ElectionMessage } | { ok: false; reason: string };

/** Never throws: hostile bytes from a peer become a reason to log. */
export function decodeElectionMessage(payload: Uint8Array): DecodeResult {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(payload));
  } catch {
    return { ok: false, reason: "election message is not UTF-8 JSON" };
  }
  const parsed = electionMessageSchema.safeParse(value);
  if (!parsed.success)
    return { ok: false, reason: `invalid election message: ${parsed.error.issues[0]?.message}` };
  return { ok: true, message: parsed.data };
}
