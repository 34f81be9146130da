// GET /api/v1/store-watch: the store's change log as server-sent events, one event per change.
//
// Pull, not push: a change only wakes the pump, which reads the log from the last seq sent and writes
// while the socket accepts. Memory per connection is thus the socket buffer plus one event, whatever the
// write rate. A consumer that stops reading while more than `lagMax` new changes commit is cut off with a
// final `overflow` event naming where to resume. Event ids are `<nodeId>:<seq>`: seqs are local to a node,
// so a client that fails over to another node and resumes with a foreign id is replayed from the start
// instead of skipping or repeating an unrelated range.
import type { ServerResponse } from "node:http";
import { isUnderPrefix } from "../core/store_path.ts";
import type { StoreChange, StoreService } from "../store/index.ts";
import { entryJson } from "./store_wire.ts";

export interface WatchOptions {
  nodeId: string;
  prefix: string;
  /** Changes with seq > fromSeq are sent. */
  fromSeq: number;
  values: boolean;
  /** The ACL: a change to a path the caller may not read is skipped. */
  allows: (path: string) => boolean;
  heartbeatMs: number;
  lagMax: number;
}

/** Changes read from the log per step; small enough to yield to other requests between pages. */
const pageChanges = 256;

/** `<nodeId>:<seq>` from a Last-Event-ID header: the seq when it names this node, 0 (replay) otherwise. */
export function resumeSeqOf(lastEventId: string, nodeId: string): number | null {
  const match = /^(.+):(\d{1,15})$/.exec(lastEventId);
  if (!match) return null;
  return match[1] === nodeId ? Number(match[2]) : 0;
}

export function serveWatch(res: ServerResponse, service: StoreService, options: WatchOptions): void {
  let sentSeq = options.fromSeq;
  let closed = false;
  let scheduled = false;
  /** lastSeq() when the socket last refused a write; null while it accepts. */
  let blockedAtSeq: number | null = null;

  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-store",
    "x-accel-buffering": "no",
  });
  res.write(
    `: watching ${options.prefix === "" ? "everything" : options.prefix} after ${options.nodeId}:${sentSeq}\n\n`,
  );

  const eventOf = (change: StoreChange) =>
    `id: ${options.nodeId}:${change.seq}\nevent: change\ndata: ${JSON.stringify({
      seq: change.seq,
      ...entryJson(change.entry, { value: options.values }),
    })}\n\n`;

  const pump = () => {
    scheduled = false;
    while (!closed && blockedAtSeq === null) {
      const page = service.changesSince(sentSeq, pageChanges);
      if (page.length === 0) return;
      for (const change of page) {
        // The log's seqs strictly increase (contract); a service breaking it must not spin this loop.
        if (change.seq <= sentSeq) return void res.destroy(new RangeError("store change log out of order"));
        sentSeq = change.seq;
        const path = change.entry.path;
        if (!isUnderPrefix(path, options.prefix) || !options.allows(`/api/v1/store/${path}`)) continue;
        if (!res.write(eventOf(change))) {
          blockedAtSeq = service.lastSeq();
          res.once("drain", () => {
            blockedAtSeq = null;
            schedule();
          });
          return;
        }
      }
    }
  };
  const schedule = () => {
    if (closed) return;
    if (blockedAtSeq !== null) {
      if (service.lastSeq() - blockedAtSeq > options.lagMax) overflow();
      return;
    }
    if (scheduled) return;
    scheduled = true;
    setImmediate(pump);
  };
  const overflow = () => {
    const data = JSON.stringify({
      reason: `stopped reading while more than ${options.lagMax} changes committed`,
      resume: `${options.nodeId}:${sentSeq}`,
    });
    res.end(`event: overflow\ndata: ${data}\n\n`);
    stop();
  };

  const unsubscribe = service.onChange(schedule);
  const heartbeat = setInterval(() => {
    if (blockedAtSeq === null) res.write(": heartbeat\n\n");
  }, options.heartbeatMs);
  const stop = () => {
    closed = true;
    unsubscribe();
    clearInterval(heartbeat);
  };
  res.once("close", stop);
  schedule();
}
