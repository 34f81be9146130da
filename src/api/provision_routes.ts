// The provisioning API (docs/provision.md): GET /api/v1/provision shows each target's last pass (state and
// lag per database and replica, drift, orphans, preconditions, leader and term), the same on every node;
// POST /api/v1/provision/{target}/prune `{"yes": true}` drops the orphans on the replicas and POST
// /api/v1/provision/{target}/rotate-password applies the follower's (new) password, POST
// /api/v1/provision/{target}/release `{"database"}` stops replicating one (so the primary can drop it): on the leader,
// which runs the passes (another node answers 409 naming it). Behind the ACL like every route.
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import { jsonBody, refused } from "./checked_input.ts";
import { ApiErrorCode, sendError, sendJson } from "./errors.ts";
import type { ApiRoute, RouteContext } from "./router.ts";

interface ProvisionerView {
  prune(): Promise<Array<{ replica: string; database: string }>>;
  release(database: string): Promise<void>;
  /** Applies the follower's configured password (read from its file or variable now). */
  rotatePassword(): Promise<void>;
}

export interface ProvisionView {
  statuses(): unknown[];
  provisioner(target: string): ProvisionerView | undefined;
  leader(): string | null;
}

const releaseSchema = z.strictObject({ database: z.string().min(1).max(63) });
const pruneSchema = z.strictObject({
  yes: z.literal(true, { error: 'expected {"yes": true}: dropping databases is for good' }),
});

export function provisionRoutes(view: ProvisionView): ApiRoute[] {
  const act = async (req: IncomingMessage, res: ServerResponse, context: RouteContext) => {
    const match = /^([a-z0-9_]{1,31})\/(prune|rotate-password|release)$/.exec(context.param);
    if (match === null) return sendError(res, ApiErrorCode.NotFound, `no route ${context.url.pathname}`);
    const [, target = "", verb] = match;
    const provisioner = view.provisioner(target);
    if (provisioner === undefined)
      return sendError(res, ApiErrorCode.NotFound, `no provisioning target ${target}`);
    try {
      if (verb === "prune") {
        const body = await jsonBody(req, pruneSchema, 1024);
        if (refused(res, body)) return;
        return sendJson(res, 200, { target, dropped: await provisioner.prune() });
      }
      if (verb === "release") {
        const body = await jsonBody(req, releaseSchema, 1024);
        if (refused(res, body)) return;
        await provisioner.release(body.value.database);
        return sendJson(res, 200, { target, released: body.value.database });
      }
      await provisioner.rotatePassword();
      sendJson(res, 200, { target, rotated: true });
    } catch (error) {
      if ((error as Error).name === "StaleTermError") {
        return sendError(
          res,
          ApiErrorCode.Conflict,
          `${(error as Error).message}; the leader is ${view.leader() ?? "not known now"}`,
        );
      }
      sendError(res, ApiErrorCode.Unavailable, (error as Error).message);
    }
  };
  return [
    {
      path: "/api/v1/provision",
      methods: { GET: (_req, res) => sendJson(res, 200, { targets: view.statuses() }) },
    },
    { path: "/api/v1/provision/", prefix: true, methods: { POST: act } },
  ];
}
