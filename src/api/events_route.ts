// GET /api/v1/events: this node's events (src/shell/event_log.ts) as server-sent events, the kept ones
// first, then each new one as it happens. Resumable: `Last-Event-ID` (or `?after=ID`) sends only what came
// after; an id of another node or an earlier run of the agent replays what is kept, and a stream that
// resumes after events it missed starts with a `lost` event. `?follow=false` ends after the kept ones.
// A client that stops reading is cut off once the ring has moved past what it was sent.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { EventLog, TandemEvent } from "../shell/index.ts";
import { ApiErrorCode, sendError } from "./errors.ts";
import { InflightLimit } from "./inflight_limit.ts";
import type { ApiRoute, RouteContext } from "./router.ts";

export interface EventsRouteOptions {
  /** Open streams at once; beyond it 429. */
  streamsMax?: number;
  heartbeatMs?: number;
}

export function eventsRoute(log: EventLog, options: EventsRouteOptions = {}): ApiRoute {
  const streams = new InflightLimit(options.streamsMax ?? 32);
  const heartbeatMs = options.heartbeatMs ?? 15_000;

  const get = (req: IncomingMessage, res: ServerResponse, context: RouteContext) => {
    const follow = context.url.searchParams.get("follow") !== "false";
    const after = context.url.searchParams.get("after") ?? req.headers["last-event-id"];
    const release = follow ? streams.tryAcquire() : () => undefined;
    if (release === null) {
      return sendError(res, ApiErrorCode.TooManyRequests, "too many event streams open", {
        "retry-after": "5",
      });
    }
    let sentSeq = typeof after === "string" ? (log.seqOf(after) ?? 0) : 0;
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      "x-accel-buffering": "no",
    });
    const frame = (event: TandemEvent) =>
      `id: ${event.id}\nevent: ${event.kind}\ndata: ${JSON.stringify(event)}\n\n`;
    const first = log.after(sentSeq);
    if (first.lost) res.write(`event: lost\ndata: ${JSON.stringify({ after: sentSeq })}\n\n`);
    for (const event of first.events) res.write(frame(event));
    sentSeq = first.events.at(-1)?.seq ?? sentSeq;
    if (!follow) {
      res.end();
      return;
    }
    // While the socket refuses writes nothing more is buffered: the ring holds what it has not read.
    let blocked = false;
    const pump = () => {
      if (blocked || res.writableEnded) return;
      const next = log.after(sentSeq);
      if (next.lost) {
        // It stopped reading while the ring moved on: end it; it resumes from what it got.
        res.end(`event: lost\ndata: ${JSON.stringify({ after: sentSeq })}\n\n`);
        return;
      }
      for (const event of next.events) {
        sentSeq = event.seq;
        if (!res.write(frame(event))) {
          blocked = true;
          return;
        }
      }
    };
    res.on("drain", () => {
      blocked = false;
      pump();
    });
    const unsubscribe = log.onEvent(pump);
    const heartbeat = setInterval(() => {
      if (!blocked) res.write(": heartbeat\n\n");
    }, heartbeatMs);
    res.once("close", () => {
      unsubscribe();
      clearInterval(heartbeat);
      release();
    });
  };
  return { path: "/api/v1/events", streaming: true, methods: { GET: get } };
}
