// Requests on the mesh channel "grants", from a node to the leader: a service's grant (or its renewal, or a
// claim of an earlier leader's grant after a leader change) and the report that a service stopped. JSON,
// schema-checked on receipt.
import { z } from "zod";
import { nodeIdPattern, serviceNamePattern } from "../core/types.ts";

export const GRANTS_CHANNEL = "grants";

const serviceName = z.string().regex(serviceNamePattern);
const fence = z.strictObject({
  term: z.number().int().min(0),
  seq: z.number().int().min(0),
});

export const grantRequestSchema = z.discriminatedUnion("kind", [
  /**
   * `current`: the grant the asker holds (a renewal, or a claim when of an earlier term); none: a fresh one.
   * `leaseMs`: how long the asker wants it to last (the leader caps it); none: the leader's longest.
   */
  z.strictObject({
    kind: z.literal("acquire"),
    service: serviceName,
    current: fence.optional(),
    leaseMs: z.number().int().min(1).optional(),
  }),
  z.strictObject({ kind: z.literal("release"), service: serviceName, fence }),
]);
export type GrantRequest = z.infer<typeof grantRequestSchema>;

const grant = z.strictObject({
  service: serviceName,
  owner: z.string().regex(nodeIdPattern),
  fence,
  leaseMs: z.number().int().min(1),
});

/**
 * The leader's answer: the grant; the report of a stop taken (also when that grant was gone already); or a
 * refusal: "not-leader" (ask `leaderId`), "unavailable" (not yet: ask again, keep what is held) or "refused"
 * (retry after `retryInMs`, if any).
 */
export const grantAnswerSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("granted"), grant, continueOnly: z.boolean() }),
  z.strictObject({ kind: z.literal("released") }),
  z.strictObject({
    kind: z.literal("refused"),
    refusal: z.enum(["not-leader", "unavailable", "refused"]),
    reason: z.string().max(2000),
    leaderId: z.string().regex(nodeIdPattern).nullable(),
    retryInMs: z.number().min(0).nullable(),
  }),
]);
export type GrantWireAnswer = z.infer<typeof grantAnswerSchema>;
export type GrantWireRefusal = Extract<GrantWireAnswer, { kind: "refused" }>;
