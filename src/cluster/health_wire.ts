// Health heartbeats on the mesh channel "health": a ping carries the sender's sequence number and monotonic
// send time; the pong echoes both so the sender measures the round trip with its own clock only.
//
// Layout (big-endian), 17 bytes: u8 type (1 ping, 2 pong) | f64 seq | f64 sentAtMs, where seq is a
// non-negative safe integer and sentAtMs a number in [0, 2^53). Any other length, type or value is refused
// before use, so an accepted payload re-encodes to the same bytes.
import { readNonNegative, readUint, writeNonNegative, writeUint } from "./wire_numbers.ts";

export const HEALTH_CHANNEL = "health";

/** Every health message is exactly this long. */
export const healthMessageBytes = 17;

export interface HealthMessage {
  type: "ping" | "pong";
  seq: number;
  /** The pinging node's performance.now(): only that node interprets it. */
  sentAtMs: number;
}

export type HealthDecodeResult = { ok: true; message: HealthMessage } | { ok: false; reason: string };

const pingCode = 1;
const pongCode = 2;

export function encodeHealthMessage(message: HealthMessage): Uint8Array {
  const bytes = Buffer.allocUnsafe(healthMessageBytes);
  bytes[0] = message.type === "ping" ? pingCode : pongCode;
  writeUint(bytes, 1, message.seq);
  writeNonNegative(bytes, 9, message.sentAtMs);
  return bytes;
}

/** Never throws: hostile bytes from a peer become a reason to log. */
export function decodeHealthMessage(payload: Uint8Array): HealthDecodeResult {
  if (payload.byteLength !== healthMessageBytes)
    return refuse(`${payload.byteLength} bytes, not ${healthMessageBytes}`);
  const code = payload[0];
  if (code !== pingCode && code !== pongCode) return refuse(`unknown type ${code}`);
  const seq = readUint(payload, 1);
  if (seq < 0) return refuse("seq is not a non-negative integer");
  const sentAtMs = readNonNegative(payload, 9);
  if (sentAtMs < 0) return refuse("sentAtMs is not a number in [0, 2^53)");
  return { ok: true, message: { type: code === pingCode ? "ping" : "pong", seq, sentAtMs } };
}

function refuse(reason: string): HealthDecodeResult {
  return { ok: false, reason: `invalid health message: ${reason}` };
}
