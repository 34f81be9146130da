// Election messages on the mesh channel "election": JSON, schema-checked before the core sees them.
import { z } from "zod";
import type { ElectionMessage } from "../core/election_types.ts";
import { decodeJsonPayload, encodeJsonPayload } from "../mesh/index.ts";

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

export function encodeElectionMessage(message: ElectionMessage): Uint8Array {
  return encodeJsonPayload(message);
}

export type DecodeResult = { ok: true; message: ElectionMessage } | { ok: false; reason: string };

/** Election messages are tiny; anything larger is garbage and is not parsed. */
export const electionMessageBytesMax = 1024;

/** Never throws: hostile bytes from a peer become a reason to log. */
export function decodeElectionMessage(payload: Uint8Array): DecodeResult {
  const decoded = decodeJsonPayload(payload, electionMessageSchema, electionMessageBytesMax);
  return decoded.ok
    ? { ok: true, message: decoded.value }
    : { ok: false, reason: `invalid election message: ${decoded.reason}` };
}
