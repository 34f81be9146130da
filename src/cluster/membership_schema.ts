// The membership list as it crosses a trust boundary (a peer's heartbeat, the election state file): the
// shape checked by zod, then the core's own rules (validateMembership) and the sorted order it relies on.
import { z } from "zod";
import { type Membership, validateMembership } from "../core/membership.ts";
import { nodeIdPattern } from "../core/types.ts";

export const membershipSchema = z.strictObject({
  version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  nodes: z
    .array(
      z.strictObject({
        id: z.string().regex(nodeIdPattern),
        address: z.string().max(300),
        role: z.enum(["member", "witness"]),
        priority: z.number().finite(),
        voting: z.boolean(),
        autoPromote: z.boolean(),
      }),
    )
    .max(4096),
});

/** The list, or why it is not one. */
export function checkMembership(
  value: unknown,
): { ok: true; membership: Membership } | { ok: false; reason: string } {
  const result = membershipSchema.safeParse(value);
  if (!result.success) return { ok: false, reason: result.error.issues[0]?.message ?? "invalid membership" };
  const problems = validateMembership(result.data);
  if (problems.length > 0)
    return { ok: false, reason: problems.map((p) => `${p.key} ${p.message}`).join("; ") };
  const ids = result.data.nodes.map((n) => n.id);
  if (ids.some((id, i) => i > 0 && (ids[i - 1] as string) >= id)) {
    return { ok: false, reason: "nodes are not sorted by id" };
  }
  return { ok: true, membership: result.data };
}
