// Routes of the HTTP API, shared by the loopback plain-HTTP listener and the TLS port.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { AclRule } from "../config/index.ts";
import { aclDecide, compileAcl } from "./acl.ts";
import { ApiErrorCode, sendError, sendJson } from "./errors.ts";
import { InflightLimit } from "./inflight_limit.ts";
import { type TokenVerifier, tokenIdentityPrefix } from "./tokens.ts";

/**
 * Who is calling: a TLS client (certificate CN / PSK identity), a bearer token holder (`token:<name>`, on
 * either listener), or a local operator on loopback HTTP without a token.
 */
export interface ApiIdentity {
  kind: "certificate" | "psk" | "local" | "token";
  name: string;
}

/** What a handler learns about its request beyond req/res. */
export interface RouteContext {
  identity: ApiIdentity;
  url: URL;
  /**
   * For a prefix route, the rest of the path after the prefix exactly as the client sent it (still
   * percent-encoded, dot segments not resolved); "" for exact routes.
   */
  param: string;
  /**
   * Whether the ACL admits this caller to `path` (always true on the local listener). Routes that act on
   * paths carried elsewhere than the URL (a body, a decoded parameter) ask here for each of them.
   */
  allows(path: string): boolean;
}

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, context: RouteContext) => unknown;

export interface ApiRoute {
  /** An exact path, or with `prefix: true` a prefix ending in "/" whose rest is the parameter. */
  path: string;
  prefix?: boolean;
  methods: Partial<Record<string, RouteHandler>>;
  /** Long-lived responses (server-sent events) hold no in-flight slot; such a route bounds itself. */
  streaming?: boolean;
  /** Answered without an in-flight slot: constant-time liveness answers a health checker must always get. */
  exemptFromLimit?: boolean;
}

export interface ApiDependencies {
  nodeId: string;
  /** The JSON served at GET /api/v1/status. */
  status: () => unknown;
  acl: readonly AclRule[];
  logger: Logger;
  /** Routes of the capabilities (the store), next to the built-in ones. */
  routes?: readonly ApiRoute[];
  /**
   * Requests served at once over every listener this router serves; beyond it 429 with Retry-After
   * (default inflightMaxDefault). /healthz and streams hold no slot.
   */
  inflightMax?: number;
  /** Bearer tokens (config api.tokens_file); without it every `Authorization` header is refused. */
  tokens?: TokenVerifier;
}

/** `connection` is who the listener authenticated: the TLS peer, or "local" on the loopback listener. */
export type ApiRouter = (req: IncomingMessage, res: ServerResponse, connection: ApiIdentity) => void;

/** Enough for bursts of a busy fleet; a node past it sheds load instead of queueing without bound. */
export const inflightMaxDefault = 256;
/** A shed request tries again after this; overload on a small fleet clears within a second. */
const retryAfterSeconds = 1;

interface RouteMatch {
  route: ApiRoute;
  param: string;
}

export function createApiRouter(deps: ApiDependencies): ApiRouter {
  const acl = compileAcl(deps.acl);
  const limit = new InflightLimit(deps.inflightMax ?? inflightMaxDefault);
  const builtIn: ApiRoute[] = [
    {
      path: "/healthz",
      methods: { GET: (_req, res) => sendJson(res, 200, { status: "ok", node: deps.nodeId }) },
      // A saturated node is alive: a 429 here would make its health checker fail it over.
      exemptFromLimit: true,
    },
    { path: "/api/v1/status", methods: { GET: (_req, res) => sendJson(res, 200, deps.status()) } },
  ];
  const routes = [...builtIn, ...(deps.routes ?? [])];
  const exact = new Map(routes.filter((r) => !r.prefix).map((r) => [r.path, r]));
  // Longest prefix first, so a nested prefix route wins over its parent.
  const prefixes = routes.filter((r) => r.prefix).sort((a, b) => b.path.length - a.path.length);

  const match = (path: string, rawPath: string): RouteMatch | "non_canonical" | null => {
    const found = exact.get(path);
    if (found) return { route: found, param: "" };
    const route = prefixes.find((r) => path.startsWith(r.path));
    if (!route) return null;
    // The parameter comes from the path as sent: resolving dot segments first would hide `..` from the route.
    if (!rawPath.startsWith(route.path)) return "non_canonical";
    return { route, param: rawPath.slice(route.path.length) };
  };

  return (req, res, connection) => {
    // A target like "//" is no URL path: new URL would throw out of the server's request listener.
    const url = URL.parse(req.url ?? "/", "http://localhost");
    if (url === null) return sendError(res, ApiErrorCode.BadRequest, "the request target is not a URL path");
    const path = url.pathname;
    const identity = authenticate(req, connection, deps.tokens);
    if (identity === null) {
      // The header is never logged: it may be a live token pasted into the wrong place.
      deps.logger.warn(
        { path, remoteAddress: req.socket.remoteAddress },
        "api request with an invalid token",
      );
      return sendError(res, ApiErrorCode.Unauthorized, "invalid or revoked bearer token", {
        "www-authenticate": 'Bearer realm="tandem"',
      });
    }
    const allows = (target: string) =>
      identity.kind === "local" || aclDecide(acl, target, identity.name).allowed;
    // Peer-only routes are served on the authenticated TLS port alone, whatever the token.
    if (connection.kind === "local" && path.startsWith("/api/internal/")) {
      return sendError(res, ApiErrorCode.Forbidden, "peer routes need TLS");
    }
    if (!allows(path)) {
      deps.logger.warn({ path, identity: identity.name }, "api request denied by acl");
      return sendError(res, ApiErrorCode.Forbidden, `${identity.name} may not access ${path}`);
    }
    const found = match(path, rawPathOf(req.url ?? "/"));
    if (found === null) return sendError(res, ApiErrorCode.NotFound, `no route ${path}`);
    if (found === "non_canonical") {
      return sendError(res, ApiErrorCode.BadRequest, "path must not contain dot segments");
    }
    const { route, param } = found;
    const handler = route.methods[req.method ?? "GET"];
    if (!handler) {
      const allow = Object.keys(route.methods).join(", ");
      return sendError(res, ApiErrorCode.MethodNotAllowed, `${req.method} not allowed on ${path}`, { allow });
    }
    if (!route.streaming && !route.exemptFromLimit) {
      const release = limit.tryAcquire();
      if (!release) {
        res.setHeader("connection", "close");
        return sendError(
          res,
          ApiErrorCode.TooManyRequests,
          `more than ${limit.inflightMax} requests in flight`,
          {
            "retry-after": String(retryAfterSeconds),
          },
        );
      }
      res.once("close", release);
    }
    const failed = (error: unknown) => {
      deps.logger.error({ err: error, path }, "api handler failed");
      if (!res.headersSent) sendError(res, ApiErrorCode.Internal, "internal error");
      else res.destroy();
    };
    try {
      const result = handler(req, res, { identity, url, param, allows });
      if (result instanceof Promise) result.catch(failed);
    } catch (error) {
      failed(error);
    }
  };
}

/**
 * The identity the ACL sees: the bearer token's holder when the request carries `Authorization`, else the
 * connection's. null when the header is there but names no valid token (malformed, unknown, revoked).
 */
function authenticate(
  req: IncomingMessage,
  connection: ApiIdentity,
  tokens: TokenVerifier | undefined,
): ApiIdentity | null {
  const header = req.headers.authorization;
  if (header === undefined) return connection;
  const bearer = /^Bearer +(\S+) *$/i.exec(header)?.[1];
  if (bearer === undefined || tokens === undefined) return null;
  const check = tokens.verify(bearer);
  return check.valid ? { kind: "token", name: `${tokenIdentityPrefix}${check.name}` } : null;
}

/** The path part of a request target, before any query or fragment, untouched. */
function rawPathOf(target: string): string {
  const end = target.search(/[?#]/);
  return end === -1 ? target : target.slice(0, end);
}
