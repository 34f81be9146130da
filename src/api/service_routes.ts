// The services' HTTP API (docs/services.md): GET /api/v1/services, on any node, answers from the latest
// table of the leader (who runs each service, what its owner reports, why it is placed there) and what this
// node's own runners report. POST /api/v1/services/{name}/move and /api/v1/nodes/{id}/drain|undrain are
// operators' commands, made by the leader wherever it is. POST /api/v1/services/{name}/actions/{action}
// and GET /api/v1/services/{name}/logs are answered where the service runs, whichever node is asked (the
// answer names the owner and its API address; `?redirect=true` sends the client there instead). Besides
// the ACL, these need the caller to be one of the service's `admins`, a drain one of every service's (a
// drain moves them all). Local operators (loopback without a token) always may.
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

type CallAnswer =
  | { ok: true; node: string; action: Record<string, unknown> & { exitCode: number | null } }
  | { ok: true; node: string; logs: { lines: unknown[]; next: number } }
  | {
      ok: false;
      reason: string;
      moved?: { owner: string | null } | undefined;
      notFound?: boolean | undefined;
      unavailable?: boolean | undefined;
    };

type Call =
  | { kind: "action"; service: string; action: string; args: string[] }
  | { kind: "logs"; service: string; after: number };

type CommandAnswer =
  | { ok: true }
  | { ok: false; reason: string; notFound?: boolean | undefined; unavailable?: boolean | undefined };

/** What the routes read (ServicesNode.status). */
export interface ServicesView {
  /** Each configured service's admins (identity patterns). */
  admins(): ReadonlyMap<string, readonly string[]>;
  command(command: Command): Promise<CommandAnswer>;
  /** A call answered where the service runs. */
  call(call: Call): Promise<CallAnswer>;
  /** A member's advertised address (its TLS API), or null. */
  apiAddress(node: string): string | null;
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
const actionSchema = z.strictObject({ args: z.array(z.string().max(4096)).max(64).default([]) });
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

/** Headers naming where the service runs and that node's API, so a client may go there itself. */
function ownerHeaders(view: ServicesView, owner: string): Record<string, string> {
  const address = view.apiAddress(owner);
  return { "tandem-owner": owner, ...(address === null ? {} : { "tandem-owner-api": `https://${address}` }) };
}

async function answerCall(
  res: ServerResponse,
  view: ServicesView,
  context: RouteContext,
  call: Call,
): Promise<void> {
  const owner = view.status().table.services[call.service]?.owner ?? null;
  if (context.url.searchParams.get("redirect") === "true" && owner !== null) {
    const address = view.apiAddress(owner);
    if (address !== null) {
      const query = new URLSearchParams(context.url.searchParams);
      query.delete("redirect");
      const search = query.size === 0 ? "" : `?${query}`;
      res.writeHead(307, {
        location: `https://${address}${context.url.pathname}${search}`,
        ...ownerHeaders(view, owner),
      });
      res.end();
      return;
    }
  }
  const result = await view.call(call);
  if (result.ok) {
    const { ok: _ok, ...body } = result;
    return sendJson(res, 200, body, ownerHeaders(view, result.node));
  }
  if (result.notFound) return sendError(res, ApiErrorCode.NotFound, result.reason);
  if (result.moved !== undefined) {
    // The owner changed while the call was on its way: nothing ran; the client may retry at the new one.
    const headers = result.moved.owner === null ? {} : ownerHeaders(view, result.moved.owner);
    const message = `${result.reason}; it now runs on ${result.moved.owner ?? "no node"}`;
    return sendJson(
      res,
      409,
      { error: { code: "owner_changed", message, owner: result.moved.owner } },
      headers,
    );
  }
  sendError(res, ApiErrorCode.Unavailable, result.reason, { "retry-after": "1" });
}

export function serviceRoutes(view: ServicesView): ApiRoute[] {
  const list = (_req: IncomingMessage, res: ServerResponse) => sendJson(res, 200, servicesJson(view));

  /** `{name}/{rest}` of a service the caller may act on, or null once answered with the error. */
  const target = (res: ServerResponse, context: RouteContext): { name: string; rest: string } | null => {
    const match = /^([^/]+)\/(.+)$/.exec(context.param);
    const name = match?.[1] ?? "";
    if (match === null || !serviceNamePattern.test(name)) {
      sendError(res, ApiErrorCode.NotFound, `no route ${context.url.pathname}`);
      return null;
    }
    if (!view.admins().has(name)) {
      sendError(res, ApiErrorCode.NotFound, `no service ${name}`);
      return null;
    }
    if (!isAdmin(view, context.identity, [name])) {
      sendError(res, ApiErrorCode.Forbidden, `${context.identity.name} is not an admin of ${name}`);
      return null;
    }
    return { name, rest: match[2] ?? "" };
  };

  const post = async (req: IncomingMessage, res: ServerResponse, context: RouteContext) => {
    const t = target(res, context);
    if (t === null) return;
    if (t.rest === "move") {
      const body = await jsonBody(req, moveSchema);
      if (refused(res, body)) return;
      return answer(res, view, { kind: "move", service: t.name, node: body.value.node });
    }
    const action = /^actions\/([^/]+)$/.exec(t.rest)?.[1];
    if (action === undefined || !serviceNamePattern.test(action)) {
      return sendError(res, ApiErrorCode.NotFound, `no route ${context.url.pathname}`);
    }
    const body = await jsonBody(req, actionSchema);
    if (refused(res, body)) return;
    await answerCall(res, view, context, { kind: "action", service: t.name, action, args: body.value.args });
  };

  const get = async (_req: IncomingMessage, res: ServerResponse, context: RouteContext) => {
    const t = target(res, context);
    if (t === null) return;
    if (t.rest !== "logs") return sendError(res, ApiErrorCode.NotFound, `no route ${context.url.pathname}`);
    const after = Number(context.url.searchParams.get("after") ?? "0");
    if (!Number.isSafeInteger(after) || after < 0) {
      return sendError(res, ApiErrorCode.BadRequest, "after must be a line number (0 or more)");
    }
    await answerCall(res, view, context, { kind: "logs", service: t.name, after });
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
    { path: "/api/v1/services/", prefix: true, methods: { POST: post, GET: get } },
    { path: "/api/v1/nodes/", prefix: true, methods: { POST: drain } },
  ];
}
