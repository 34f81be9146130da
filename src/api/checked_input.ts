// Checked inputs of API handlers: a JSON body read with a bound and checked by a schema, and the answer to
// a check that failed.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { z } from "zod";
import { ApiErrorCode, sendError } from "./errors.ts";
import { readBody } from "./request_body.ts";

/** A failed check answers `code` (default bad_request) with `reason`. */
export type Checked<T> = { ok: true; value: T } | { ok: false; reason: string; code?: ApiErrorCode };

/** Command bodies are a few fields. */
const bodyBytesMax = 4096;

/** A JSON body of at most `bytesMax` (a command's few fields by default), checked by `schema`; empty is {}. */
export async function jsonBody<T>(
  req: IncomingMessage,
  schema: z.ZodType<T>,
  bytesMax = bodyBytesMax,
): Promise<Checked<T>> {
  if ((req.headers["content-type"] ?? "").split(";")[0]?.trim() !== "application/json") {
    return {
      ok: false,
      code: ApiErrorCode.UnsupportedMediaType,
      reason: "the body is JSON: Content-Type: application/json",
    };
  }
  const body = await readBody(req, bytesMax);
  if (!body.ok) {
    return body.tooLarge
      ? {
          ok: false,
          code: ApiErrorCode.PayloadTooLarge,
          reason: `request body is larger than ${bytesMax} bytes`,
        }
      : { ok: false, reason: body.error.message };
  }
  let parsed: unknown = {};
  const text = body.bytes.toString("utf8");
  if (text.trim() !== "") {
    try {
      parsed = JSON.parse(text);
    } catch {
      return { ok: false, reason: "body is not valid JSON" };
    }
  }
  const result = schema.safeParse(parsed);
  if (result.success) return { ok: true, value: result.data };
  const issue = result.error.issues[0];
  const where = issue?.path.length ? `${issue.path.join(".")}: ` : "";
  return { ok: false, reason: `${where}${issue?.message ?? "invalid body"}` };
}

/** Answers a failed check and returns true; false for a passed one. */
export function refused<T>(
  res: ServerResponse,
  checked: Checked<T>,
): checked is { ok: false; reason: string } {
  if (checked.ok) return false;
  // The rest of a refused body is not read: close the connection rather than drain it.
  if (checked.code !== undefined) res.setHeader("connection", "close");
  sendError(res, checked.code ?? ApiErrorCode.BadRequest, checked.reason);
  return true;
}
