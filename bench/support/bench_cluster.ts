// A real 3-agent cluster for benches: the integration-test harness (configs as `tandem dev` writes them,
// default timings, agents through the real CLI), plus the steady-state wait every bench starts from.
import { loadConfig, type Timings } from "../../src/config/index.ts";
import { type CLI_ENTRY, ClusterHarness, type NodeStatus } from "../../test/support/cluster_harness.ts";

export const CLUSTER_NODE_IDS = ["n1", "n2", "n3"] as const;

/** One agent log line: pino JSON with `time` in epoch ms from the machine clock the bench also reads. */
export interface LogRecord {
  time: number;
  msg: string;
  [field: string]: unknown;
}

export interface Leadership {
  leaderId: string;
  term: number;
}

/**
 * Agents run in their own process groups, so a Ctrl-C or a SIGTERM from bench/run.ts would leave them
 * behind: turn those signals into a normal exit, where the harness kills every agent by pid.
 */
export function exitOnSignals(): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130));
}

/** Which CLI the agents run: "build" (dist/, as installed; see cli_build.ts) or "source" (type stripping). */
export type CliEntry = keyof typeof CLI_ENTRY;

/** Configs, certificates and data folders for a 3-node cluster with the default timings; nothing started. */
export function createBenchCluster(entry: CliEntry): Promise<ClusterHarness> {
  return ClusterHarness.create({ nodes: CLUSTER_NODE_IDS.length, entry });
}

/** Every node agrees on one leader in one term, and sees every peer alive over an up link; else undefined. */
export function steadyLeadership(
  statuses: Map<string, NodeStatus>,
  ids: readonly string[],
): Leadership | undefined {
  if (statuses.size !== ids.length) return undefined;
  const all = [...statuses.values()];
  const first = all[0];
  if (!first?.leaderId || !ids.includes(first.leaderId)) return undefined;
  const agreed = all.every((s) => s.leaderId === first.leaderId && s.term === first.term);
  const linked = all.every((s) =>
    s.peers.every((p) => p.state === "alive" && p.link === "up" && p.rttMs !== null),
  );
  if (!agreed || !linked || statuses.get(first.leaderId)?.role !== "leader") return undefined;
  return { leaderId: first.leaderId, term: first.term };
}

/** Every node agrees on one leader in one term, and sees every peer alive over an up link. */
export function waitForSteadyCluster(harness: ClusterHarness, timeoutMs: number): Promise<Leadership> {
  return harness.waitFor(
    "a steady cluster (agreed leader, every peer alive)",
    [...CLUSTER_NODE_IDS],
    (statuses) => steadyLeadership(statuses, CLUSTER_NODE_IDS),
    timeoutMs,
  );
}

/** The timings the agents actually run with, read back from a node's config file through the real loader. */
export function effectiveTimings(harness: ClusterHarness): Timings {
  const loaded = loadConfig(harness.node(CLUSTER_NODE_IDS[0]).configPath);
  if (!loaded.ok) throw loaded.error;
  return loaded.value.timings;
}

/** The pino records a node printed from line `fromLine` on (its log is append-only). */
export function logRecordsSince(harness: ClusterHarness, id: string, fromLine: number): LogRecord[] {
  return parseLogRecords(harness.logLines(id).slice(fromLine));
}

/** Agent log lines as pino records; other lines (a crash trace, a torn last line) are skipped. */
export function parseLogRecords(lines: readonly string[]): LogRecord[] {
  return lines.flatMap((line) => {
    try {
      const record = JSON.parse(line) as LogRecord;
      return typeof record.time === "number" && typeof record.msg === "string" ? [record] : [];
    } catch {
      return [];
    }
  });
}
