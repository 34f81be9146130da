// The blob API (docs/blob.md): GET /api/v1/blobs/{entry} lists where an entry's files went; GET
// /api/v1/blobs/{entry}/{n} streams file n decrypted (from whichever store holds it), with its size and
// SHA-256 in headers so the client can check what it got. Behind the ACL like every route.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Logger } from "pino";
import { ApiErrorCode, sendError, sendJson } from "./errors.ts";
import type { ApiRoute, RouteContext } from "./router.ts";

interface RecordView {
  entryId: string;
  index: number;
  origin: string;
  name: string;
  store: string;
  key: string;
  size: number;
  plainSize: number;
  plainSha256: string;
  uploadedAtMs: number;
}

/** What the routes use of the blob capability (src/blob/blob_node.ts). */
export interface BlobView {
  recordsOf(entryId: string): RecordView[];
  open(entryId: string, index: number): Promise<{ record: RecordView; stream: Readable } | null>;
}

const entryPattern = /^([A-Za-z0-9-]{1,64})(?:\/(\d{1,6}))?$/;

export function blobRoutes(view: BlobView, logger: Logger): ApiRoute[] {
  const get = async (_req: IncomingMessage, res: ServerResponse, context: RouteContext) => {
    const match = entryPattern.exec(context.param);
    if (match === null) return sendError(res, ApiErrorCode.NotFound, `no route ${context.url.pathname}`);
    const [, entryId = "", index] = match;
    if (index === undefined) {
      const blobs = view.recordsOf(entryId).map(describe);
      if (blobs.length === 0)
        return sendError(res, ApiErrorCode.NotFound, `no offloaded file of entry ${entryId}`);
      return sendJson(res, 200, { blobs });
    }
    // The record is here but the store cannot serve it (unreachable, object gone): say which and why.
    const opened = await view.open(entryId, Number(index)).catch((error: Error) => error);
    if (opened instanceof Error) return sendError(res, ApiErrorCode.Unavailable, opened.message);
    if (opened === null)
      return sendError(res, ApiErrorCode.NotFound, `no offloaded file ${index} of entry ${entryId}`);
    const { record, stream } = opened;
    res.writeHead(200, {
      "Content-Type": "application/octet-stream",
      "Content-Length": String(record.plainSize),
      "X-Tandem-Sha256": record.plainSha256,
      "X-Tandem-Name": encodeURIComponent(record.name),
    });
    // A failure midway (an altered object) can only cut the response short: the client sees fewer bytes
    // than Content-Length, and the reason is logged here.
    await pipeline(stream, res).catch((error: Error) => {
      logger.warn({ entry: entryId, index: record.index, err: error.message }, "blob read failed midway");
      res.destroy();
    });
  };
  return [{ path: "/api/v1/blobs/", prefix: true, methods: { GET: get } }];
}

function describe(record: RecordView) {
  return {
    entryId: record.entryId,
    index: record.index,
    origin: record.origin,
    name: record.name,
    store: record.store,
    key: record.key,
    size: record.plainSize,
    storedSize: record.size,
    sha256: record.plainSha256,
    uploadedAt: new Date(record.uploadedAtMs).toISOString(),
  };
}
