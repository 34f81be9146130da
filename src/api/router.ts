// Routes of the HTTP API, shared by the loopback plain-HTTP listener and the TLS port.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { AclRule } from "../config/index.ts";
import { aclDecide, compileAcl } from "./acl.ts";
import { ApiErrorCode, sendError, sendJson } from "./errors.ts";

/** Who is calling: a TLS client (certificate CN / PSK identity) or a local operator on loopback HTTP. */
export interface ApiIdentity {
  kind: "certificate" | "psk" | "local";
  name: string;
}

export interface ApiDependencies {
  nodeId: string;
  /** The JSON served at GET /api/v1/status. */
  status: () => unknown;
  acl: readonly AclRule[];
  logger: Logger;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export type ApiRouter = (req: IncomingMessage, res: ServerResponse, identity: ApiIdentity) => void;

export function createApiRouter(deps: ApiDependencies): ApiRouter {
  const acl = compileAcl(deps.acl);
  const routes: Record<string, Partial<Record<string, Handler>>> = {
    "/healthz": { GET: (_req, res) => sendJson(res, 200, { status: "ok", node: deps.nodeId }) },
    "/api/v1/status": { GET: (_req, res) => sendJson(res, 200, deps.status()) },
  };

  return (req, res, identity) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (identity.kind === "local") {
      // Peer-only routes are served on the authenticated TLS port alone.
      if (path.startsWith("/api/internal/"))
        return sendError(res, ApiErrorCode.Forbidden, "peer routes need TLS");
    } else {
      const decision = aclDecide(acl, path, identity.name);
      if (!decision.allowed) {
        deps.logger.warn({ path, identity: identity.name }, "api request denied by acl");
        return sendError(res, ApiErrorCode.Forbidden, `${identity.name} may not access ${path}`);
      }
    }
    const methods = routes[path];
    if (!methods) return sendError(res, ApiErrorCode.NotFound, `no route ${path}`);
    const handler = methods[req.method ?? "GET"];
    if (!handler) {
      const allow = Object.keys(methods).join(", ");
      return sendError(res, ApiErrorCode.MethodNotAllowed, `${req.method} not allowed on ${path}`, { allow });
    }
    try {
      handler(req, res);
    } catch (error) {
      deps.logger.error({ err: error, path }, "api handler failed");
      if (!res.headersSent) sendError(res, ApiErrorCode.Internal, "internal error");
    }
  };
}
