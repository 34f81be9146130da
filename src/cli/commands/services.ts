// `tandem services`: where each service runs and why, as the leader placed it, from any node.
import type { Command } from "commander";
import type { ServicesJson } from "../../api/index.ts";
import { renderServices } from "../services_table.ts";
import { registerShowCommand } from "../show_command.ts";

export function registerServicesCommand(program: Command): void {
  registerShowCommand(program, {
    name: "services",
    description:
      "show each service: its owner, the state the owner reports, its fencing token, and why it is there",
    path: "/api/v1/services",
    examples: "  tandem services\n  tandem services --api http://127.0.0.1:7411 --json",
    render: (doc) => renderServices(doc as ServicesJson),
  });
}
