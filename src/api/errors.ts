// Typed JSON errors: every rejection is `{ "error": { "code", "message" } }` with the matching status.
import type { ServerResponse } from "node:http";

export const ApiErrorCode = {
  NotFound: "not_found",
  MethodNotAllowed: "method_not_allowed",
  Forbidden: "forbidden",
  Internal: "internal",
} as const;
export type ApiErrorCode = (typeof ApiErrorCode)[keyof typeof ApiErrorCode];

const statusByCode: Record<ApiErrorCode, number> = {
  not_found: 404,
  method_not_allowed: 405,
  forbidden: 403,
  internal: 500,
};

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
