// Renders GET /api/v1/status as the readable table of `tandem status`.

export interface StatusDocument {
  node: {
    id: string;
    role: string;
    priority: number;
    cluster: string;
    address: string;
    version: string;
    uptimeMs: number;
  };
  leaderId: string | null;
  term: number;
  role: string;
  leaseValid: boolean;
  peers: Array<{
    id: string;
    address: string;
    role: string;
    priority: number;
    state: string;
    link: string;
    rttMs: number | null;
    lastHeardMsAgo: number | null;
  }>;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length)));
  return rows
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

function formatMs(value: number | null): string {
  if (value === null) return "-";
  return value < 10 ? `${value.toFixed(2)} ms` : `${Math.round(value)} ms`;
}

export function renderStatus(status: StatusDocument): string {
  const { node } = status;
  const leader = status.leaderId ?? "none";
  const self =
    status.role +
    (status.role === "leader" ? (status.leaseValid ? " (lease valid)" : " (lease expired)") : "");
  const header = [
    `node    ${node.id} (${node.role}, priority ${node.priority}) at ${node.address}, cluster ${node.cluster}, v${node.version}`,
    `leader  ${leader}   term ${status.term}   this node: ${self}`,
  ];
  const rows = [["PEER", "ROLE", "PRIORITY", "STATE", "LINK", "RTT", "LAST HEARD", "ADDRESS"]];
  for (const peer of status.peers) {
    rows.push([
      peer.id + (peer.id === status.leaderId ? " *" : ""),
      peer.role,
      String(peer.priority),
      peer.state,
      peer.link,
      formatMs(peer.rttMs),
      peer.lastHeardMsAgo === null ? "never" : `${formatMs(peer.lastHeardMsAgo)} ago`,
      peer.address,
    ]);
  }
  return `${header.join("\n")}\n\n${table(rows)}\n`;
}
