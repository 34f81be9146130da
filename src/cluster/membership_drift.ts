// How a node's configured peer list differs from the membership it holds. The file only bootstraps a new
// cluster; afterwards an operator who edits it expecting a change must hear that it changed nothing.
import type { Membership } from "../core/membership.ts";
import type { NodeId } from "../core/types.ts";

export interface ConfiguredNode {
  id: NodeId;
  role: "member" | "witness";
  priority: number;
  /** "" or absent when not configured (self). */
  address?: string;
}

/** One line per difference; [] when the file and the membership agree. */
export function configDrift(
  configured: readonly ConfiguredNode[],
  held: Membership,
  selfId: NodeId,
): string[] {
  const drift: string[] = [];
  const heldById = new Map(held.nodes.map((n) => [n.id, n]));
  const configuredIds = new Set(configured.map((n) => n.id));
  for (const node of configured) {
    const member = heldById.get(node.id);
    if (member === undefined) {
      drift.push(`${node.id} is configured but not in membership v${held.version}`);
      continue;
    }
    if (member.role !== node.role)
      drift.push(`${node.id}: role ${node.role} configured, ${member.role} in the membership`);
    if (member.priority !== node.priority) {
      drift.push(`${node.id}: priority ${node.priority} configured, ${member.priority} in the membership`);
    }
    const address = node.address ?? "";
    if (node.id !== selfId && address !== "" && member.address !== address) {
      drift.push(`${node.id}: address ${address} configured, ${member.address} in the membership`);
    }
  }
  for (const member of held.nodes) {
    if (!configuredIds.has(member.id))
      drift.push(`${member.id} is in membership v${held.version} but not configured`);
  }
  return drift;
}
