// Outstanding requests of one link: ids, timeouts and the in-flight bound. The link writes the frames;
// this table only matches answers to callers.
import type { NodeId } from "../core/types.ts";
import { BackpressureError, RemoteError, TimeoutError } from "./errors.ts";
import { REQUEST_ID_MAX } from "./frame.ts";

interface PendingRequest {
  resolve: (payload: Uint8Array) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export type OpenResult =
  | { ok: true; requestId: number; response: Promise<Uint8Array> }
  | { ok: false; error: Error };

export class PendingRequests {
  private readonly peer: NodeId;
  private readonly inflightMax: number;
  private readonly pending = new Map<number, PendingRequest>();
  private readonly onEmpty: () => void;
  private lastRequestId = 0;

  /** `onEmpty` runs whenever the last outstanding request settles (a retiring link waits for it). */
  constructor(options: { peer: NodeId; inflightMax: number; onEmpty: () => void }) {
    this.peer = options.peer;
    this.inflightMax = options.inflightMax;
    this.onEmpty = options.onEmpty;
  }

  get size(): number {
    return this.pending.size;
  }

  /** Registers a request and arms its timeout; fails with BackpressureError past the in-flight bound. */
  open(channel: string, timeoutMs: number): OpenResult {
    if (this.pending.size >= this.inflightMax) {
      return {
        ok: false,
        error: new BackpressureError(`${this.inflightMax} requests in flight to ${this.peer}`),
      };
    }
    const requestId = this.nextRequestId();
    const response = new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        if (this.pending.size === 0) this.onEmpty();
        reject(
          new TimeoutError(
            `request on ${channel} to ${this.peer} timed out after ${timeoutMs} ms`,
            timeoutMs,
          ),
        );
      }, timeoutMs);
      this.pending.set(requestId, { resolve, reject, timer });
    });
    return { ok: true, requestId, response };
  }

  /** False when the id is not pending (already timed out, or never sent): the answer is dropped. */
  resolve(requestId: number, payload: Uint8Array): boolean {
    const request = this.settle(requestId);
    request?.resolve(payload);
    return request !== undefined;
  }

  rejectRemote(requestId: number, message: string): boolean {
    const request = this.settle(requestId);
    request?.reject(new RemoteError(this.peer, message));
    return request !== undefined;
  }

  /** Fails one request that never left (the send was refused). */
  fail(requestId: number, error: Error): void {
    this.settle(requestId)?.reject(error);
  }

  rejectAll(error: Error): void {
    const requests = [...this.pending.values()];
    this.pending.clear();
    for (const request of requests) {
      clearTimeout(request.timer);
      request.reject(error);
    }
  }

  private settle(requestId: number): PendingRequest | undefined {
    const request = this.pending.get(requestId);
    if (request === undefined) return undefined;
    this.pending.delete(requestId);
    clearTimeout(request.timer);
    if (this.pending.size === 0) this.onEmpty();
    return request;
  }

  /** Ids wrap around 2^32 and skip 0 and any still pending (the table is far smaller than the id space). */
  private nextRequestId(): number {
    do {
      this.lastRequestId = this.lastRequestId >= REQUEST_ID_MAX ? 1 : this.lastRequestId + 1;
    } while (this.pending.has(this.lastRequestId));
    return this.lastRequestId;
  }
}
