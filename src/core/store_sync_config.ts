// Default message bounds of the store sync core and the check that refuses impossible settings.
import type { ConfigProblem, NodeId, StoreSyncConfig, StoreSyncLimits } from "./store_sync_types.ts";

/**
 * Sized for the mesh's 16 MiB frames: 4 MiB of values become ~5.4 MiB of base64 JSON, so even an entry
 * that travels alone at the few-MiB value limit fits. 512 entries of 1 KiB values are ~0.7 MiB per frame.
 */
export const DEFAULT_STORE_SYNC_LIMITS: Readonly<StoreSyncLimits> = Object.freeze({
  entriesPerMessageMax: 512,
  valueBytesPerMessageMax: 4 * 1024 * 1024,
  // A path is at most 1 KiB; 4096 of them stay under 5 MiB, and typical ones under 200 KiB.
  pathsPerPullMax: 4096,
  // 8 mesh frames' worth of values: what one pull answer holds in memory at most (plus one entry).
  valueBytesPerPullMax: 32 * 1024 * 1024,
  // A stamp is a path (at most 1 KiB) and ~20 bytes more on the wire: under 9 MiB, and ~0.3 MiB for
  // typical paths. With 256 buckets and 100k entries a bucket holds ~400.
  stampsPerMessageMax: 8192,
});

export function validateStoreSyncConfig(c: StoreSyncConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const positive = (key: string, value: number) => {
    if (!Number.isSafeInteger(value) || value < 1) {
      problems.push({ key, message: `must be an integer >= 1, got ${value}` });
    }
  };
  positive("writeTimeoutTicks", c.writeTimeoutTicks);
  positive("antiEntropyIntervalTicks", c.antiEntropyIntervalTicks);
  positive("digestRoundEvery", c.digestRoundEvery);
  positive("roundTimeoutTicks", c.roundTimeoutTicks);
  for (const [key, value] of Object.entries(c.limits)) positive(`limits.${key}`, value);
  problems.push(...peerProblems(c.selfId, c.peers));
  return problems;
}

/** What is wrong with a peer set for node `selfId` (at construction and in StoreSync.setPeers). */
export function peerProblems(selfId: NodeId, peers: readonly NodeId[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (peers.includes(selfId)) problems.push({ key: "peers", message: "must not include selfId" });
  if (new Set(peers).size !== peers.length) problems.push({ key: "peers", message: "duplicate peer" });
  return problems;
}

export class StoreSyncConfigError extends Error {
  override name = "StoreSyncConfigError";
  readonly problems: ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    super(`invalid store sync config: ${problems.map((p) => `${p.key} ${p.message}`).join("; ")}`);
    this.problems = problems;
  }
}
