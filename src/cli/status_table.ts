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
  /** Absent from agents older than cluster membership. */
  membership?: {
    standing: string;
    version: number;
    committedVersion: number;
    pendingVersion: number | null;
    configDrift: string[];
    refusedBy?: { peer: string; reason: string }[];
  };
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

/** Rows as aligned columns (the first row is the header); one string per row. */
export function alignedRows(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length)));
  return rows.map((row) =>
    row
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join("  ")
      .trimEnd(),
  );
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
    ...membershipLines(status.membership),
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
  return `${header.join("\n")}\n\n${alignedRows(rows).join("\n")}\n`;
}

function membershipLines(m: StatusDocument["membership"]): string[] {
  if (m === undefined) return [];
  const pending = m.pendingVersion === null ? "" : `, v${m.pendingVersion} pending`;
  const held = m.version === 0 ? "none yet" : `v${m.version} (committed v${m.committedVersion}${pending})`;
  const lines = [`members ${held}   this node: ${m.standing}`];
  const refusedBy = m.refusedBy ?? [];
  if (refusedBy.length > 0) {
    lines.push(
      `warning ${refusedBy.map((r) => r.peer).join(", ")} refuse this node as not in their membership: it was removed (stop it, or add it again with tandem member add)`,
    );
  }
  if (m.configDrift.length > 0) {
    lines.push(
      "warning tandem.yml differs from the cluster's membership, which rules (tandem member list):",
      ...m.configDrift.map((line) => `          - ${line}`),
    );
  }
  return lines;
}
