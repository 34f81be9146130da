// Requests on the mesh channel "membership": a change forwarded to the leader (from the API or a joining
// node) and the leader's question to a learner, "have you caught up?". JSON, schema-checked on receipt.
import { z } from "zod";
import type { MembershipChange } from "../core/membership.ts";
import { nodeIdPattern } from "../core/types.ts";

export const MEMBERSHIP_CHANNEL = "membership";

const nodeId = z.string().regex(nodeIdPattern);
const address = z.string().min(1).max(300);
const role = z.enum(["member", "witness"]);
const priority = z.number().finite();

export const membershipChangeSchema: z.ZodType<MembershipChange> = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("add"),
    node: z.strictObject({ id: nodeId, address, role, priority, autoPromote: z.boolean() }),
  }),
  z.strictObject({ type: z.literal("promote"), id: nodeId }),
  z.strictObject({ type: z.literal("demote"), id: nodeId }),
  z.strictObject({ type: z.literal("remove"), id: nodeId }),
  z.strictObject({
    type: z.literal("update"),
    id: nodeId,
    address: address.optional(),
    priority: priority.optional(),
    role: role.optional(),
  }),
]) as z.ZodType<MembershipChange>;

export const membershipRequestSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("change"), change: membershipChangeSchema, force: z.boolean() }),
  /** From a node with no membership, to any member: add me as a learner that is promoted once caught up. */
  z.strictObject({ kind: z.literal("join"), address, role, priority }),
  z.strictObject({ kind: z.literal("catch-up") }),
]);
export type MembershipRequest = z.infer<typeof membershipRequestSchema>;

/** Why a change was not made, for the API's status code and the operator's next step. */
export type ChangeRefusal = "not-leader" | "no-leader" | "refused" | "unsafe" | "uncertain";

export const changeOutcomeSchema = z.discriminatedUnion("ok", [
  z.strictObject({ ok: z.literal(true), version: z.number().int().min(1) }),
  z.strictObject({
    ok: z.literal(false),
    refusal: z.enum(["not-leader", "no-leader", "refused", "unsafe", "uncertain"]),
    reason: z.string().max(2000),
  }),
]);
export type ChangeOutcome = z.infer<typeof changeOutcomeSchema>;

export const catchUpSchema = z.strictObject({
  caughtUp: z.boolean(),
  /** One line per capability that is still behind. */
  behind: z.array(z.string().max(500)).max(32),
});
export type CatchUpAnswer = z.infer<typeof catchUpSchema>;
