// Renders GET /api/v1/services as the table of `tandem services`. Every cell came from a server, so each is
// escaped before it reaches the terminal.
import type { ServicesJson } from "../api/index.ts";
import { alignedRows } from "./status_table.ts";
import { escapeControls } from "./terminal_text.ts";

export function renderServices(doc: ServicesJson): string {
  if (doc.term === 0)
    return "no table from a leader yet: is a leader elected, and does its config name services?\n";
  const rows = [["SERVICE", "OWNER", "STATE", "SINCE", "FENCE", "REASON"]];
  for (const s of doc.services) {
    const reason = s.detail === "" ? s.reason : `${s.reason} (${s.detail})`;
    const state = s.state === null ? "-" : s.healthy === false ? `${s.state} (unhealthy)` : s.state;
    rows.push([s.name, s.owner ?? "-", state, s.since ?? "-", s.fence ?? "-", reason]);
  }
  const lines = [
    `placed by the leader of term ${doc.term}`,
    ...(doc.drained.length === 0 ? [] : [`drained: ${doc.drained.join(", ")}`]),
    "",
    ...alignedRows(rows.map((row) => row.map(escapeControls))),
  ];
  return `${lines.join("\n")}\n`;
}
