// `tandem status`: this node's view of the cluster, as a table or JSON.
import type { Command } from "commander";
import { registerShowCommand } from "../show_command.ts";
import { renderStatus, type StatusDocument } from "../status_table.ts";

export function registerStatusCommand(program: Command): void {
  registerShowCommand(program, {
    name: "status",
    description: "show this node's view of the cluster: leader, term, peers with state and round-trip time",
    path: "/api/v1/status",
    examples:
      "  tandem status\n  tandem status --api http://127.0.0.1:7411 --json" +
      "\n  tandem status --api https://10.0.0.1:7400 --ca tls/ca.pem --cert tls/ops.pem --key tls/ops-key.pem",
    render: (doc) => renderStatus(doc as StatusDocument),
  });
}
