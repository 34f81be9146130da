// The journal's HTTP API (docs/journal.md): POST /api/v1/journal records an entry on this node (durable when
// answered, then applied on every other node), or, given an array, up to 1,000 entries in one transaction
// (all or none); GET /api/v1/journal/status shows the outbox, the inbox, the
// dead letters and each peer's delivery; GET /api/v1/journal/dead lists the dead letters, and POST
// /api/v1/journal/dead/{id}/retry or /drop acts on one; GET /api/v1/journal/steps lists the post-execution
// steps given up, and POST /api/v1/journal/steps/{id}/{step}/retry runs one again. Behind the ACL.
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import { jsonBody, refused } from "./checked_input.ts";
import { ApiErrorCode, sendError, sendJson } from "./errors.ts";
import type { ApiRoute, RouteContext } from "./router.ts";

interface RecordedEntry {
  id: string;
  origin: string;
  hlc: string;
  key: string | null;
  keySeq: number;
}

interface RecordBody {
  type: string;
  data: unknown;
  key?: string | null;
  files?: string[];
}

/** What the routes use of the journal (src/journal/journal_node.ts). */
export interface JournalView {
  record(request: RecordBody): Promise<{ ok: true; entry: RecordedEntry } | { ok: false; reason: string }>;
  /** The entries in one transaction: all recorded, or none. */
  recordMany(
    requests: readonly RecordBody[],
  ): Promise<{ ok: true; entries: RecordedEntry[] } | { ok: false; reason: string }>;
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

/**
 * The largest body of a record request, one entry or a batch (an array); each entry's data is bounded by
 * itself (src/journal/journal_node.ts entryDataBytesMax).
 */
export const recordBodyBytesMax = 8 * 1024 * 1024;
/** Entries of one batch at most (src/journal/journal_node.ts recordBatchMax). */
const recordBatchMax = 1000;

const recordSchema = z.strictObject({
  type: z.string(),
  data: z.unknown().refine((value) => value !== undefined, { error: "expected a JSON value" }),
  key: z.string().nullable().optional(),
  files: z.array(z.string()).optional(),
});
const recordBatchSchema = z.array(recordSchema).min(1).max(recordBatchMax);

/** Parsed by `schema`, or the first problem ("1.type: …"). */
function parsedBy<T>(
  schema: z.ZodType<T>,
  value: unknown,
): { ok: true; value: T } | { ok: false; reason: string } {
  const result = schema.safeParse(value);
  if (result.success) return { ok: true, value: result.data };
  const issue = result.error.issues[0];
  const where = issue?.path.length ? `${issue.path.join(".")}: ` : "";
  return { ok: false, reason: `${where}${issue?.message ?? "invalid body"}` };
}

function recordedFields(entry: RecordedEntry): RecordedEntry {
  const { id, origin, hlc, key, keySeq } = entry;
  return { id, origin, hlc, key, keySeq };
}

export function journalRoutes(view: JournalView): ApiRoute[] {
  // One entry (an object, answered with its fields), or a batch (an array, answered with an array).
  const record = async (req: IncomingMessage, res: ServerResponse) => {
    const body = await jsonBody(req, z.unknown(), recordBodyBytesMax);
    if (refused(res, body)) return;
    if (Array.isArray(body.value)) {
      const batch = parsedBy(recordBatchSchema, body.value);
      if (!batch.ok) return sendError(res, ApiErrorCode.BadRequest, batch.reason);
      const outcome = await view.recordMany(batch.value);
      if (!outcome.ok) return sendError(res, ApiErrorCode.BadRequest, outcome.reason);
      return sendJson(res, 201, outcome.entries.map(recordedFields));
    }
    const one = parsedBy(recordSchema, body.value);
    if (!one.ok) return sendError(res, ApiErrorCode.BadRequest, one.reason);
    const outcome = await view.record(one.value);
    if (!outcome.ok) return sendError(res, ApiErrorCode.BadRequest, outcome.reason);
    sendJson(res, 201, recordedFields(outcome.entry));
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
