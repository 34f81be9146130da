// One error class per mesh failure, each with a stable `name` and an optional `cause`.
import type { NodeId } from "../core/types.ts";

/** No usable link to the peer: never connected, link lost, or the mesh closed. */
export class PeerUnreachableError extends Error {
  override readonly name = "PeerUnreachableError";
  readonly peer: NodeId;
  constructor(peer: NodeId, message: string, options?: { cause?: unknown }) {
    super(`peer ${peer} unreachable: ${message}`, options);
    this.peer = peer;
  }
}

/** A request got no response within its timeout. */
export class TimeoutError extends Error {
  override readonly name = "TimeoutError";
  readonly timeoutMs: number;
  constructor(message: string, timeoutMs: number, options?: { cause?: unknown }) {
    super(message, options);
    this.timeoutMs = timeoutMs;
  }
}

/** The link's in-flight or send-queue bound is reached; retry later. */
export class BackpressureError extends Error {
  override readonly name = "BackpressureError";
}

/** The peer's handler rejected; `message` is the remote error's message. */
export class RemoteError extends Error {
  override readonly name = "RemoteError";
  readonly peer: NodeId;
  constructor(peer: NodeId, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.peer = peer;
  }
}

/** A peer broke the wire protocol (bad frame, text frame, unexpected kind). */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
}

/** The hello exchange failed: version, cluster, identity, timeout. */
export class HandshakeError extends Error {
  override readonly name = "HandshakeError";
}

export const meshErrors = {
  PeerUnreachableError,
  TimeoutError,
  BackpressureError,
  RemoteError,
  ProtocolError,
  HandshakeError,
} as const;
