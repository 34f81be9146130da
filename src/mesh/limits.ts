// Default mesh limits in one place, and the check that refuses impossible settings.
import type { MeshLimits } from "./types.ts";

export const DEFAULT_MESH_LIMITS: Readonly<MeshLimits> = Object.freeze({
  // Large enough for a store snapshot chunk or a journal batch; anything bigger should be streamed.
  frameBytesMax: 16 * 1024 * 1024,
  // Frames written to ws but not yet flushed to the socket; a stuck peer stops growing memory here.
  sendQueueFramesMax: 4096,
  // Bytes buffered per link (ws + socket); four max-size frames.
  sendQueueBytesMax: 64 * 1024 * 1024,
  // Outstanding requests per link, and concurrent handlers run for one peer.
  inflightRequestsMax: 1024,
  // A request on a healthy LAN link answers in well under a millisecond; 5 s means the peer is stuck.
  requestTimeoutMs: 5000,
  // TLS + upgrade + hello take a few round trips; 3 s tolerates a loaded peer without hanging forever.
  handshakeTimeoutMs: 3000,
  // First redial comes fast (restart of a peer), then backs off to at most 2 s between attempts.
  reconnectDelayMsMin: 50,
  reconnectDelayMsMax: 2000,
  // Checked every 2 s: a link silent since the last check is pinged; still silent at the next, it is dead.
  keepaliveIntervalMs: 2000,
});

/** Merges overrides onto the defaults; throws RangeError for settings no deployment could want (a bug). */
export function resolveMeshLimits(overrides: Partial<MeshLimits> | undefined): MeshLimits {
  const limits: MeshLimits = { ...DEFAULT_MESH_LIMITS, ...overrides };
  for (const [key, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new RangeError(`mesh limits: ${key} must be a positive integer, got ${String(value)}`);
    }
  }
  if (limits.reconnectDelayMsMin > limits.reconnectDelayMsMax) {
    throw new RangeError("mesh limits: reconnectDelayMsMin must not exceed reconnectDelayMsMax");
  }
  if (limits.frameBytesMax > limits.sendQueueBytesMax) {
    throw new RangeError("mesh limits: frameBytesMax must not exceed sendQueueBytesMax");
  }
  return limits;
}
