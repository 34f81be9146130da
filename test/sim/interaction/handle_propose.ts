// propose 1 add 4 [witness] [priority=N] [auto-promote] | promote 4 | demote 4 | remove 3 |
// update 3 [priority=N] [role=member|witness]: node 1 (the leader) is asked for one membership change.
import type { MembershipChange } from "../../../src/core/membership.ts";
import { formatChange } from "../cluster.ts";
import { type Command, CommandError, intKey, nodeId } from "./command.ts";
import type { InteractionEnv } from "./env.ts";

export function handlePropose(env: InteractionEnv, command: Command): void {
  const id = nodeId(command.args[0] ?? "");
  const change = parseChange(command);
  env.apply(id, `${id} propose ${formatChange(change)}`, (core) => {
    const result = core.proposeMembership(change);
    env.print(result.ok ? `  ok v${result.version}` : `  refused: ${result.reason}`);
  });
}

function parseChange(command: Command): MembershipChange {
  const [, type, target, ...flags] = command.args;
  const id = nodeId(target ?? "");
  switch (type) {
    case "add":
      return {
        type,
        node: {
          id,
          address: "",
          role: flags.includes("witness") ? "witness" : "member",
          priority: intKey(command, "priority", 0),
          autoPromote: flags.includes("auto-promote"),
        },
      };
    case "promote":
    case "demote":
    case "remove":
      return { type, id };
    case "update": {
      const role = command.keys.get("role");
      if (role !== undefined && role !== "member" && role !== "witness") {
        throw new CommandError(`role must be member or witness, got ${role}`);
      }
      const priority = command.keys.get("priority");
      return {
        type,
        id,
        ...(role === undefined ? {} : { role }),
        ...(priority === undefined ? {} : { priority: intKey(command, "priority", 0) }),
      };
    }
    default:
      throw new CommandError(`propose wants add, promote, demote, remove or update, got ${type}`);
  }
}
