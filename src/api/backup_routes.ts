// The backup API (docs/blob.md): POST /api/v1/backups starts a backup of this node to a configured target
// or of a database provisioning knows (`{"target": NAME, "withKeys": bool, "database": NAME}`: a target is a
// name from blob.backups.targets, never a path, which the body
// cannot even express); GET /api/v1/backups/{id} its progress; GET /api/v1/backups[?target=NAME] what the
// target holds. Behind the ACL like every route.
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import { jsonBody, refused } from "./checked_input.ts";
import { ApiErrorCode, sendError, sendJson } from "./errors.ts";
import type { ApiRoute, RouteContext } from "./router.ts";

/** What the routes use of the blob capability's backups (src/blob/backup_runner.ts). */
export interface BackupView {
  begin(
    target: string | undefined,
    withKeys: boolean,
    trigger: "request",
    database: string | null,
  ): { id: string; target: string };
  job(id: string): { id: string } | undefined;
  list(target: string | undefined): Promise<unknown[]>;
}

const startSchema = z.strictObject({
  target: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, { error: "expected a target's name from blob.backups.targets" })
    .optional(),
  withKeys: z.boolean().optional(),
  database: z.string().min(1).max(63).optional(),
});

/** A request the runner refuses (no such target, one running) says why; `conflict` answers 409. */
function refusal(res: ServerResponse, error: unknown): void {
  if (error instanceof Error && error.name === "BackupRequestError") {
    const conflict = (error as Error & { conflict?: boolean }).conflict === true;
    sendError(res, conflict ? ApiErrorCode.Conflict : ApiErrorCode.BadRequest, error.message);
    return;
  }
  throw error;
}

export function backupRoutes(view: BackupView): ApiRoute[] {
  const start = async (req: IncomingMessage, res: ServerResponse) => {
    const body = await jsonBody(req, startSchema, 4096);
    if (refused(res, body)) return;
    try {
      const job = view.begin(
        body.value.target,
        body.value.withKeys ?? false,
        "request",
        body.value.database ?? null,
      );
      sendJson(res, 202, job);
    } catch (error) {
      refusal(res, error);
    }
  };
  const list = async (_req: IncomingMessage, res: ServerResponse, context: RouteContext) => {
    const target = context.url.searchParams.get("target") ?? undefined;
    try {
      sendJson(res, 200, { backups: await view.list(target) });
    } catch (error) {
      if (error instanceof Error && error.name === "BackupRequestError") return refusal(res, error);
      sendError(res, ApiErrorCode.Unavailable, (error as Error).message);
    }
  };
  const progress = (_req: IncomingMessage, res: ServerResponse, context: RouteContext) => {
    const job = /^[A-Za-z0-9._-]{1,100}$/.test(context.param) ? view.job(context.param) : undefined;
    if (job === undefined)
      return sendError(res, ApiErrorCode.NotFound, `no backup job ${context.param} on this node`);
    sendJson(res, 200, job);
  };
  return [
    { path: "/api/v1/backups", methods: { POST: start, GET: list } },
    { path: "/api/v1/backups/", prefix: true, methods: { GET: progress } },
  ];
}
