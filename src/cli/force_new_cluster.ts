// `tandem member force-new-cluster`: the way out when a majority of the voters is lost for good. Offline, on
// one survivor whose agent is stopped, the election state is rewritten so that the node holds a membership
// of itself alone, as a voter, one version past the one it held and taken as of a term above every term it
// knew. Lists are ordered by (term, version) (compareMembership), so the forced list outranks every list the
// old cluster's nodes hold up to that term, and they take it from this node once added back.
//
// It is unsafe by design: if old voters that still form a majority of the old list are running, they can
// keep or elect their own leader beside this one.
import { existsSync } from "node:fs";
import { FileHardStateStore } from "../cluster/index.ts";
import { formatHostPort, type TandemConfig } from "../config/index.ts";
import type { HardState } from "../core/election_types.ts";
import { findMember, type MemberSpec, type Membership, sortedMembership } from "../core/membership.ts";
import { DataDirLock } from "./data_dir_lock.ts";

export type ForcedState = { ok: true; state: HardState; self: MemberSpec } | { ok: false; reason: string };

/** This node as tandem.yml describes it: used when the held list does not (any more) name it. */
export type ConfiguredSelf = Omit<MemberSpec, "voting" | "autoPromote">;

/** The election state that makes this node a cluster of one; pure. */
export function forcedHardState(before: HardState, configured: ConfiguredSelf): ForcedState {
  const held = before.membership?.config;
  const listed = held === undefined ? undefined : findMember(held, configured.id);
  const spec = listed ?? configured;
  if (spec.role === "witness") {
    return {
      ok: false,
      reason: `${configured.id} is a witness: it votes but never leads, so it cannot be a cluster alone; run this on a surviving member`,
    };
  }
  const term = Math.max(before.term, before.membership?.term ?? 0) + 1;
  const self: MemberSpec = {
    id: configured.id,
    address: spec.address === "" ? configured.address : spec.address,
    role: spec.role,
    priority: spec.priority,
    voting: true,
    autoPromote: false,
  };
  const config = sortedMembership((held?.version ?? 0) + 1, [self]);
  return { ok: true, state: { term, votedFor: null, membership: { config, term } }, self };
}

export interface ForceNewClusterReport {
  statePath: string;
  before: HardState;
  after: HardState;
  self: MemberSpec;
  /** False: only planned (no --yes). */
  written: boolean;
}

/**
 * Takes the data-dir lock (so a running agent makes this fail), reads the election state, and writes the
 * forced one when `write`. Throws with the reason on a running agent, a missing or corrupt state file, or a
 * node that cannot stand alone.
 */
export function forceNewCluster(config: TandemConfig, options: { write: boolean }): ForceNewClusterReport {
  const lock = new DataDirLock(config.dataDir);
  lock.acquire();
  try {
    const store = new FileHardStateStore(config.dataDir);
    if (!existsSync(store.path)) {
      throw new Error(
        `${store.path} does not exist: ${config.node.id} never ran in a cluster with this data_dir (check the config), so there is nothing to recover`,
      );
    }
    const before = store.load();
    const forced = forcedHardState(before, {
      id: config.node.id,
      address: formatHostPort(config.advertise),
      role: config.node.role,
      priority: config.node.priority,
    });
    if (!forced.ok) throw new Error(forced.reason);
    if (options.write) store.save(forced.state);
    return { statePath: store.path, before, after: forced.state, self: forced.self, written: options.write };
  } finally {
    lock.release();
  }
}

/** What was (or would be) done, and what the operator does next. */
export function describeForcedCluster(report: ForceNewClusterReport, configPath: string): string {
  const { before, after, self } = report;
  const held = before.membership;
  const was = held === undefined ? "none" : `${listOf(held.config)} (term ${held.term})`;
  const now = `${listOf(after.membership!.config)} (term ${after.membership!.term})`;
  const lines = [
    `${report.written ? "rewrote" : "would rewrite"} ${report.statePath}:`,
    `  term        ${before.term} -> ${after.term}, vote cleared`,
    `  membership  ${was} -> ${now}`,
  ];
  if (!report.written) return `${lines.join("\n")}\n`;
  const others = (held?.config.nodes ?? []).filter((n) => n.id !== self.id);
  lines.push(
    "",
    `${self.id} now holds a membership of itself alone. Next steps:`,
    "  1. Keep every other node of the old cluster stopped until it is added back: if voters that form a",
    "     majority of the old list still run, they can keep a leader of their own beside this one.",
    `  2. Start the agent here: tandem agent --config ${configPath} (it elects itself).`,
    "  3. Add the others back one at a time, each once the one before votes; their old data can stay (they",
    "     take the new membership from this node once they link):",
  );
  for (const node of others) {
    const role = node.role === "witness" ? " --witness" : "";
    lines.push(
      `       tandem member add ${node.id} --address ${node.address}${role} --priority ${node.priority} --wait`,
    );
  }
  if (others.length === 0) lines.push("       tandem member add ID --address HOST:PORT --wait");
  return `${lines.join("\n")}\n`;
}

function listOf(m: Membership): string {
  const names = m.nodes.map(
    (n) => n.id + (n.role === "witness" ? " (witness)" : "") + (n.voting ? "" : " (learner)"),
  );
  return `v${m.version} [${names.join(", ")}]`;
}
