// The services' HTTP API (docs/services.md): GET /api/v1/services, on any node, answers from the latest
// table of the leader (who runs each service, what its owner reports, why it is placed there) and what this
// node's own runners report. POST /api/v1/services/{name}/move and /api/v1/nodes/{id}/drain|undrain are
// operators' commands, made by the leader wherever it is; besides the ACL, a move needs the caller to be
// one of the service's `admins`, a drain one of every service's (a drain moves them all). Local operators
// (loopback without a token) always may.
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import { nodeIdPattern, serviceNamePattern } from "../core/types.ts";
import { jsonBody, refused } from "./checked_input.ts";
import { ApiErrorCode, sendError, sendJson } from "./errors.ts";
import type { ApiIdentity, ApiRoute, RouteContext } from "./router.ts";

export interface ServiceJson {
  name: string;
  /** The node it is assigned to; null when none can run it. */
  owner: string | null;
  /** What the owner last reported: stopped, starting, running, stopping or failed; null before a report. */
  state: string | null;
  /** ISO time of the owner's last state change. */
  since: string | null;
  /** The grant the owner runs it under, "term.seq". */
  fence: string | null;
  /** Placement's code and sentence for operators. */
  code: string;
  reason: string;
  /** The owner's detail (a refusal, a failed driver, a failing health check). */
  detail: string;
  /** The owner's health check verdict (true without a check); null before a report. */
  healthy: boolean | null;
}

export interface ServicesJson {
  /** The term of the leader whose table this is; 0 when no table has come yet. */
  term: number;
  services: ServiceJson[];
  /** Nodes an operator drained. */
  drained: string[];
}

type Command =
  | { kind: "move"; service: string; node: string }
  | { kind: "drain"; node: string }
  | { kind: "undrain"; node: string };

type CommandAnswer =
  | { ok: true }
  | { ok: false; reason: string; notFound?: boolean | undefined; unavailable?: boolean | undefined };

/** What the routes read (ServicesNode.status). */
export interface ServicesView {
  /** Each configured service's admins (identity patterns). */
  admins(): ReadonlyMap<string, readonly string[]>;
  command(command: Command): Promise<CommandAnswer>;
  status(): {
    table: {
      term: number;
      drained: string[];
      services: Record<
        string,
        {
          owner: string | null;
          code: string;
          reason: string;
          report: {
            state: string;
            fence: string | null;
            sinceMs: number;
            detail: string;
            healthy: boolean;
          } | null;
        }
      >;
    };
  };
}

export function servicesJson(view: ServicesView): ServicesJson {
  const { table } = view.status();
  const services = Object.entries(table.services)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, entry]) => ({
      name,
      owner: entry.owner,
      state: entry.report?.state ?? null,
      since: entry.report === null ? null : new Date(entry.report.sinceMs).toISOString(),
      fence: entry.report?.fence ?? null,
      code: entry.code,
      reason: entry.reason,
      detail: entry.report?.detail ?? "",
      healthy: entry.report?.healthy ?? null,
    }));
  return { term: table.term, services, drained: table.drained };
}

const moveSchema = z.strictObject({ node: z.string().regex(nodeIdPattern, { error: "expected a node id" }) });
const emptySchema = z.strictObject({});

/** Whether `identity` may command `services` (every one of them). */
function isAdmin(view: ServicesView, identity: ApiIdentity, services: readonly string[]): boolean {
  if (identity.kind === "local") return true;
  const admins = view.admins();
  return services.every((name) =>
    (admins.get(name) ?? []).some((pattern) => new RegExp(pattern).test(identity.name)),
  );
}

async function answer(res: ServerResponse, view: ServicesView, command: Command): Promise<void> {
  const result = await view.command(command);
  if (result.ok) return sendJson(res, 200, { ok: true });
  if (result.notFound) return sendError(res, ApiErrorCode.NotFound, result.reason);
  if (result.unavailable) {
    return sendError(res, ApiErrorCode.Unavailable, result.reason, { "retry-after": "1" });
  }
  sendJson(res, 409, { error: { code: "refused", message: result.reason } });
}

export function serviceRoutes(view: ServicesView): ApiRoute[] {
  const list = (_req: IncomingMessage, res: ServerResponse) => sendJson(res, 200, servicesJson(view));

  const move = async (req: IncomingMessage, res: ServerResponse, context: RouteContext) => {
    const match = /^([^/]+)\/move$/.exec(context.param);
    const name = match?.[1] ?? "";
    if (match === null || !serviceNamePattern.test(name)) {
      return sendError(res, ApiErrorCode.NotFound, `no route ${context.url.pathname}`);
    }
    if (!view.admins().has(name)) return sendError(res, ApiErrorCode.NotFound, `no service ${name}`);
    if (!isAdmin(view, context.identity, [name])) {
      return sendError(res, ApiErrorCode.Forbidden, `${context.identity.name} is not an admin of ${name}`);
    }
    const body = await jsonBody(req, moveSchema);
    if (refused(res, body)) return;
    await answer(res, view, { kind: "move", service: name, node: body.value.node });
  };

  const drain = async (req: IncomingMessage, res: ServerResponse, context: RouteContext) => {
    const match = /^([^/]+)\/(drain|undrain)$/.exec(context.param);
    const node = match?.[1] ?? "";
    if (match === null || !nodeIdPattern.test(node)) {
      return sendError(res, ApiErrorCode.NotFound, `no route ${context.url.pathname}`);
    }
    if (!isAdmin(view, context.identity, [...view.admins().keys()])) {
      return sendError(
        res,
        ApiErrorCode.Forbidden,
        `${context.identity.name} is not an admin of every service, which a drain moves`,
      );
    }
    const body = await jsonBody(req, emptySchema);
    if (refused(res, body)) return;
    await answer(res, view, { kind: match[2] === "drain" ? "drain" : "undrain", node });
  };

  return [
    { path: "/api/v1/services", methods: { GET: list } },
    { path: "/api/v1/services/", prefix: true, methods: { POST: move } },
    { path: "/api/v1/nodes/", prefix: true, methods: { POST: drain } },
  ];
}
