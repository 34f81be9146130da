// members [1 2 ...]: the membership each named (default: every) node holds: its standing, version, the
// term of the leader it took the list from, the committed and pending versions, and the list itself.
import type { Membership } from "../../../src/core/membership.ts";
import type { Command } from "./command.ts";
import type { InteractionEnv } from "./env.ts";
import { printPerNode } from "./handle_status.ts";

export function handleMembers(env: InteractionEnv, command: Command): void {
  printPerNode(env, command, ({ membership: m }) => {
    const held = m.config === null ? "no list" : `v${m.summary.version} term=${m.summary.term}`;
    const pending = m.pendingVersion === null ? "" : ` pending=v${m.pendingVersion}`;
    return `${m.standing} ${held} committed=v${m.committedVersion}${pending}${formatList(m.config)}`;
  });
}

/** " [n1 n2 n3:witness n4:learner]": voting members plain, others with what they are. */
function formatList(list: Membership | null): string {
  if (list === null) return "";
  const nodes = list.nodes.map((n) => {
    const kind = [n.voting ? "" : "learner", n.role === "witness" ? "witness" : ""].filter((k) => k !== "");
    const priority = n.priority === 0 ? "" : `:p${n.priority}`;
    return `${n.id}${kind.length > 0 ? `:${kind.join(":")}` : ""}${priority}`;
  });
  return ` [${nodes.join(" ")}]`;
}
