// Typed JSON errors: every rejection is `{ "error": { "code", "message" } }` with the matching status.
import type { ServerResponse } from "node:http";

export const ApiErrorCode = {
  BadRequest: "bad_request",
  NotFound: "not_found",
  MethodNotAllowed: "method_not_allowed",
  Forbidden: "forbidden",
  ReadOnlyReplica: "read_only_replica",
  Conflict: "conflict",
  PayloadTooLarge: "payload_too_large",
  UnsupportedMediaType: "unsupported_media_type",
  TooManyRequests: "too_many_requests",
  Internal: "internal",
  Unavailable: "unavailable",
  Unauthorized: "unauthorized",
} as const;
export type ApiErrorCode = (typeof ApiErrorCode)[keyof typeof ApiErrorCode];

const statusByCode: Record<ApiErrorCode, number> = {
  bad_request: 400,
  not_found: 404,
  method_not_allowed: 405,
  forbidden: 403,
  // The request is fine; this node's role refuses it (a read-only replica), so it conflicts with its state.
  read_only_replica: 409,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  too_many_requests: 429,
  internal: 500,
  // Not ready yet (the agent is starting): retry shortly.
  unavailable: 503,
  unauthorized: 401,
};

export function statusOfErrorCode(code: ApiErrorCode): number {
  return statusByCode[code];
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
    ...headers,
  });
  res.end(text);
}

export function sendError(
  res: ServerResponse,
  code: ApiErrorCode,
  message: string,
  headers: Record<string, string> = {},
): void {
  sendJson(res, statusByCode[code], { error: { code, message } }, headers);
}
