// The journal's HTTP API (docs/journal.md): POST /api/v1/journal records an entry on this node (durable when
// answered, then applied on every other node); GET /api/v1/journal/status shows the outbox, the inbox, the
// dead letters and each peer's delivery; GET /api/v1/journal/dead lists the dead letters, and POST
// /api/v1/journal/dead/{id}/retry or /drop acts on one; GET /api/v1/journal/steps lists the post-execution
// steps given up, and POST /api/v1/journal/steps/{id}/{step}/retry runs one again. Behind the ACL.
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import { jsonBody, refused } from "./checked_input.ts";
import { ApiErrorCode, sendError, sendJson } from "./errors.ts";
import type { ApiRoute, RouteContext } from "./router.ts";

/** What the routes use of the journal (src/journal/journal_node.ts). */
export interface JournalView {
  record(request: {
    type: string;
    data: unknown;
    key?: string | null;
    files?: string[];
  }): Promise<
    | { ok: true; entry: { id: string; origin: string; hlc: string; key: string | null; keySeq: number } }
    | { ok: false; reason: string }
  >;
  status(): Record<string, unknown>;
  deadLetters(): Array<{
    entry: { id: string; origin: string; hlc: string; type: string; key: string | null; data: string };
    attempts: number;
    reason: string;
    deadAtMs: number;
  }>;
  retryDead(id: string): boolean;
  dropDead(id: string): boolean;
  deadSteps(): Array<{ entryId: string; step: string; attempts: number; reason: string }>;
  retryStep(entryId: string, step: string): boolean;
}

/** The largest body of a record request: the entry's data limit, plus its other fields. */
export const recordBodyBytesMax = 1024 * 1024 + 64 * 1024;

const recordSchema = z.strictObject({
  type: z.string(),
  data: z.unknown().refine((value) => value !== undefined, { error: "expected a JSON value" }),
  key: z.string().nullable().optional(),
  files: z.array(z.string()).optional(),
});

export function journalRoutes(view: JournalView): ApiRoute[] {
  const record = async (req: IncomingMessage, res: ServerResponse) => {
    const body = await jsonBody(req, recordSchema, recordBodyBytesMax);
    if (refused(res, body)) return;
    const outcome = await view.record(body.value);
    if (!outcome.ok) return sendError(res, ApiErrorCode.BadRequest, outcome.reason);
    const { id, origin, hlc, key, keySeq } = outcome.entry;
    sendJson(res, 201, { id, origin, hlc, key, keySeq });
  };

  const dead = (_req: IncomingMessage, res: ServerResponse) =>
    sendJson(res, 200, {
      deadLetters: view.deadLetters().map((d) => ({
        id: d.entry.id,
        origin: d.entry.origin,
        hlc: d.entry.hlc,
        type: d.entry.type,
        key: d.entry.key,
        data: JSON.parse(d.entry.data),
        attempts: d.attempts,
        reason: d.reason,
        deadAt: new Date(d.deadAtMs).toISOString(),
      })),
    });

  const act = (_req: IncomingMessage, res: ServerResponse, context: RouteContext) => {
    const match = /^([A-Za-z0-9-]{1,64})\/(retry|drop)$/.exec(context.param);
    if (match === null) return sendError(res, ApiErrorCode.NotFound, `no route ${context.url.pathname}`);
    const [, id = "", verb] = match;
    const done = verb === "retry" ? view.retryDead(id) : view.dropDead(id);
    if (!done) return sendError(res, ApiErrorCode.NotFound, `no dead letter ${id}`);
    sendJson(res, 200, { id, [verb === "retry" ? "retried" : "dropped"]: true });
  };

  const retryStep = (_req: IncomingMessage, res: ServerResponse, context: RouteContext) => {
    const match = /^([A-Za-z0-9-]{1,64})\/([a-z0-9][a-z0-9_-]{0,63})\/retry$/.exec(context.param);
    if (match === null) return sendError(res, ApiErrorCode.NotFound, `no route ${context.url.pathname}`);
    const [, id = "", step = ""] = match;
    if (!view.retryStep(id, step))
      return sendError(res, ApiErrorCode.NotFound, `no given-up step ${step} of ${id}`);
    sendJson(res, 200, { id, step, retried: true });
  };

  return [
    { path: "/api/v1/journal", methods: { POST: record } },
    {
      path: "/api/v1/journal/steps",
      methods: { GET: (_req, res) => sendJson(res, 200, { deadSteps: view.deadSteps() }) },
    },
    { path: "/api/v1/journal/steps/", prefix: true, methods: { POST: retryStep } },
    { path: "/api/v1/journal/status", methods: { GET: (_req, res) => sendJson(res, 200, view.status()) } },
    { path: "/api/v1/journal/dead", methods: { GET: dead } },
    { path: "/api/v1/journal/dead/", prefix: true, methods: { POST: act } },
  ];
}
