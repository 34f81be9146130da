// Renders GET /api/v1/members as the table of `tandem member list`. Every cell came from a server, so each
// is escaped before it reaches the terminal.
import type { MemberJson, MembersJson } from "./member_client.ts";
import { alignedRows } from "./status_table.ts";
import { escapeControls } from "./terminal_text.ts";

/** "yes", or "learner" with "(auto)" when the leader promotes it once it has caught up. */
export function votingLabel(member: MemberJson): string {
  if (member.voting) return "yes";
  return member.autoPromote ? "learner (auto)" : "learner";
}

export function renderMembers(doc: MembersJson): string {
  const lines = [headerOf(doc)];
  if (doc.members.length > 0) {
    const rows = [["ID", "ADDRESS", "ROLE", "PRIORITY", "VOTING", "LINK", "VERSION"]];
    for (const m of doc.members) {
      rows.push([
        m.id + (m.self ? " (self)" : "") + (m.id === doc.leader ? " *" : ""),
        m.address === "" ? "-" : m.address,
        m.role,
        String(m.priority),
        votingLabel(m),
        m.link,
        m.announcedVersion === null ? "-" : `v${m.announcedVersion}`,
      ]);
    }
    lines.push(
      "",
      ...alignedRows(rows.map((row) => row.map(escapeControls))),
      "",
      "* leader; VERSION: the membership version a node announced when its link to this node came up",
    );
  }
  if (doc.configDrift.length > 0) {
    lines.push(
      "",
      "tandem.yml differs from the membership (its peers only bootstrap a new cluster; the membership rules):",
      ...doc.configDrift.map((line) => `  - ${line}`),
    );
  }
  // Cells were escaped before alignment; escaping is idempotent, so the header and drift lines go through too.
  return `${lines.map(escapeControls).join("\n")}\n`;
}

function headerOf(doc: MembersJson): string {
  const leader = `leader ${doc.leader ?? "none"}   term ${doc.term}`;
  if (doc.members.length === 0) {
    const waits =
      doc.standing === "joining"
        ? "it waits for a leader whose membership lists it"
        : "it waits until every bootstrap peer announces the same list";
    return `this node holds no membership yet (${doc.standing}): ${waits}   ${leader}`;
  }
  const pending = doc.pendingVersion === null ? "" : `, v${doc.pendingVersion} pending`;
  const self = doc.members.find((m) => m.self);
  const standing =
    self === undefined
      ? `this node is not in it (${doc.standing})`
      : `this node: ${self.id} (${doc.standing})`;
  return `membership v${doc.version} (committed v${doc.committedVersion}${pending})   ${leader}   ${standing}`;
}
