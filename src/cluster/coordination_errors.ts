// The typed errors of the Coordination interface. Calls are async because a later implementation answers
// over the network (etcd); each failure says what the caller can do next.
import type { NodeId } from "../core/types.ts";

/** A leader-only call on a node that does not lead (or no longer did when the request arrived). */
export class NotLeaderError extends Error {
  /** The leader this node knows of, to ask instead; null when none is known. */
  readonly leaderId: NodeId | null;
  constructor(leaderId: NodeId | null, what: string) {
    super(`${what}: ${leaderId === null ? "no leader is known" : `${leaderId} leads`}`);
    this.name = "NotLeaderError";
    this.leaderId = leaderId;
  }
}

/** The leader would not give the grant now. */
export class GrantRefusedError extends Error {
  /** When asking again can succeed (a grant elsewhere lapses), ms from now; null: only a change can. */
  readonly retryInMs: number | null;
  constructor(reason: string, retryInMs: number | null) {
    super(reason);
    this.name = "GrantRefusedError";
    this.retryInMs = retryInMs;
  }
}

/** The leader did not answer (unreachable, timed out, or answered nonsense). */
export class CoordinationUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CoordinationUnavailableError";
  }
}
