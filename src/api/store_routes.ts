// The store's HTTP API (documented in docs/store.md): single entries at /api/v1/store/{path}, batches and
// listings at /api/v1/store, changes as server-sent events at /api/v1/store-watch.
//
// Every path a request acts on is validated (src/core/store_path.ts) and checked against the ACL as
// `/api/v1/store/<decoded path>`, including paths carried in a batch body and entries of a listing or a
// watch, so a rule on `^/api/v1/store/certs/` covers them however the request spells them. Every
// rejection happens before the service is called: a refused request changes nothing.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { isUnderPrefix } from "../core/store_path.ts";
import {
  type MinAcks,
  ReadOnlyReplicaError,
  StoreFlushError,
  type StoreService,
  type StoreWrite,
} from "../store/index.ts";
import { ApiErrorCode, sendError, sendJson } from "./errors.ts";
import { InflightLimit } from "./inflight_limit.ts";
import { readBody } from "./request_body.ts";
import type { ApiRoute, RouteContext } from "./router.ts";
import { resumeSeqOf, serveWatch } from "./store_watch.ts";
import {
  base64Bytes,
  type Checked,
  decodeBase64,
  decodePathParam,
  entryJson,
  parseBatch,
  parseCount,
  parseMinAcks,
  parsePrefix,
  writeOutcomeJson,
} from "./store_wire.ts";

export interface StoreRoutesOptions {
  /** This node's id: watch event ids carry it (seqs are per node). */
  nodeId: string;
  logger: Logger;
  /** min_acks when a request names none (default 1). */
  minAcksDefault?: MinAcks;
  /** Bytes of one value (default 4 MiB, as store.value_bytes_max). */
  valueBytesMax?: number;
  /** Bytes of a batch request body, base64 included (default 16 MiB, one mesh frame). */
  batchBytesMax?: number;
  /** Writes in one batch (default 10,000). */
  batchWritesMax?: number;
  /** Entries per listing page (default 10,000). */
  listLimitMax?: number;
  /** Open watch streams (default 64); they hold no in-flight slot, so they have their own bound. */
  watchersMax?: number;
  /** Comment line sent on an idle watch so proxies and clients see the stream alive (default 15 s). */
  watchHeartbeatMs?: number;
  /** A watcher that stops reading while this many changes commit is disconnected (default 10,000). */
  watchLagMax?: number;
  /** How long a write waits for min_acks peers before answering unacknowledged (default: the service's). */
  writeTimeoutMs?: number;
}

const MiB = 1024 * 1024;
const listLimitDefault = 1000;
/** Room for the JSON around a single base64 value. */
const jsonEnvelopeBytes = 1024;

type Resolved = Required<Omit<StoreRoutesOptions, "writeTimeoutMs">> & { writeTimeoutMs?: number };

function resolve(options: StoreRoutesOptions): Resolved {
  const resolved: Resolved = {
    minAcksDefault: 1,
    valueBytesMax: 4 * MiB,
    batchBytesMax: 16 * MiB,
    batchWritesMax: 10_000,
    listLimitMax: 10_000,
    watchersMax: 64,
    watchHeartbeatMs: 15_000,
    watchLagMax: 10_000,
    ...options,
  };
  for (const key of [
    "valueBytesMax",
    "batchBytesMax",
    "batchWritesMax",
    "listLimitMax",
    "watchHeartbeatMs",
  ] as const) {
    if (!(Number.isSafeInteger(resolved[key]) && resolved[key] > 0)) {
      throw new RangeError(`store routes: ${key} must be a positive integer`);
    }
  }
  return resolved;
}

export function storeRoutes(service: StoreService, options: StoreRoutesOptions): ApiRoute[] {
  const o = resolve(options);
  const watchers = new InflightLimit(o.watchersMax);

  /** Sends the typed error for a failed check; true when it did. */
  const refused = (
    res: ServerResponse,
    checked: Checked<unknown>,
  ): checked is { ok: false; reason: string } => {
    if (checked.ok) return false;
    sendError(res, checked.tooLarge ? ApiErrorCode.PayloadTooLarge : ApiErrorCode.BadRequest, checked.reason);
    return true;
  };
  const denied = (res: ServerResponse, context: RouteContext, paths: readonly string[]): boolean => {
    const path = paths.find((p) => !context.allows(`/api/v1/store/${p}`));
    if (path === undefined) return false;
    o.logger.warn({ path, identity: context.identity.name }, "store request denied by acl");
    sendError(res, ApiErrorCode.Forbidden, `${context.identity.name} may not access store path ${path}`);
    return true;
  };
  const readOnly = (res: ServerResponse): boolean => {
    if (!service.readOnly) return false;
    sendError(res, ApiErrorCode.ReadOnlyReplica, "this node is a read-only replica; write to another node");
    return true;
  };
  const tooLarge = (res: ServerResponse, bytesMax: number) => {
    // The rest of the body is not read: close the connection rather than drain it.
    res.setHeader("connection", "close");
    sendError(res, ApiErrorCode.PayloadTooLarge, `request body is larger than ${bytesMax} bytes`);
  };

  const write = async (res: ServerResponse, writes: StoreWrite[], minAcks: MinAcks) => {
    try {
      const timeout = o.writeTimeoutMs === undefined ? {} : { timeoutMs: o.writeTimeoutMs };
      const outcome = await service.write(writes, { minAcks, ...timeout });
      // 202: committed here and spreading, but fewer than min_acks peers hold it yet.
      sendJson(res, outcome.acked ? 200 : 202, writeOutcomeJson(outcome, minAcks));
    } catch (error) {
      if (error instanceof ReadOnlyReplicaError)
        return sendError(res, ApiErrorCode.ReadOnlyReplica, error.message);
      if (error instanceof StoreFlushError) {
        const message = "this node could not flush the write to its disk: its outcome is unknown";
        return sendError(res, ApiErrorCode.Internal, message);
      }
      throw error;
    }
  };

  const getOne = (_req: IncomingMessage, res: ServerResponse, context: RouteContext) => {
    const path = decodePathParam(context.param);
    if (refused(res, path) || denied(res, context, [path.value])) return;
    const entry = service.get(path.value);
    if (entry === null || entry.deleted)
      return sendError(res, ApiErrorCode.NotFound, `no entry at ${path.value}`);
    if (context.url.searchParams.get("raw") === "1") {
      res.writeHead(200, {
        "content-type": "application/octet-stream",
        "content-length": entry.value.byteLength,
        "cache-control": "no-store",
        "x-tandem-version": JSON.stringify(entry.version),
      });
      return void res.end(entry.value);
    }
    sendJson(res, 200, entryJson(entry, { value: true }));
  };

  const putOne = async (req: IncomingMessage, res: ServerResponse, context: RouteContext) => {
    const path = decodePathParam(context.param);
    const minAcks = parseMinAcks(
      context.url.searchParams.get("min_acks") ?? undefined,
      o.minAcksDefault,
      service.peerCount,
    );
    if (refused(res, path) || refused(res, minAcks) || denied(res, context, [path.value]) || readOnly(res))
      return;
    const json =
      context.url.searchParams.get("raw") !== "1" &&
      (req.headers["content-type"] ?? "").split(";")[0]?.trim() === "application/json";
    const bytesMax = json ? base64Bytes(o.valueBytesMax) + jsonEnvelopeBytes : o.valueBytesMax;
    const body = await readBody(req, bytesMax);
    if (!body.ok)
      return body.tooLarge
        ? tooLarge(res, bytesMax)
        : sendError(res, ApiErrorCode.BadRequest, body.error.message);
    let value: Buffer = body.bytes;
    if (json) {
      const decoded = jsonValueOf(body.bytes);
      if (refused(res, decoded)) return;
      value = decoded.value;
      if (value.byteLength > o.valueBytesMax) return tooLarge(res, o.valueBytesMax);
    }
    await write(res, [{ path: path.value, value: new Uint8Array(value) }], minAcks.value);
  };

  const deleteOne = async (_req: IncomingMessage, res: ServerResponse, context: RouteContext) => {
    const path = decodePathParam(context.param);
    const minAcks = parseMinAcks(
      context.url.searchParams.get("min_acks") ?? undefined,
      o.minAcksDefault,
      service.peerCount,
    );
    if (refused(res, path) || refused(res, minAcks) || denied(res, context, [path.value]) || readOnly(res))
      return;
    await write(res, [{ path: path.value, value: null }], minAcks.value);
  };

  const postBatch = async (req: IncomingMessage, res: ServerResponse, context: RouteContext) => {
    if (readOnly(res)) return;
    if ((req.headers["content-type"] ?? "").split(";")[0]?.trim() !== "application/json") {
      res.setHeader("connection", "close");
      return sendError(
        res,
        ApiErrorCode.UnsupportedMediaType,
        "a batch is JSON: Content-Type: application/json",
      );
    }
    const body = await readBody(req, o.batchBytesMax);
    if (!body.ok)
      return body.tooLarge
        ? tooLarge(res, o.batchBytesMax)
        : sendError(res, ApiErrorCode.BadRequest, body.error.message);
    const parsed = parseJson(body.bytes);
    if (refused(res, parsed)) return;
    const batch = parseBatch(parsed.value, { writesMax: o.batchWritesMax, valueBytesMax: o.valueBytesMax });
    if (refused(res, batch)) return;
    const minAcks = parseMinAcks(
      context.url.searchParams.get("min_acks") ?? batch.value.minAcks,
      o.minAcksDefault,
      service.peerCount,
    );
    if (
      refused(res, minAcks) ||
      denied(
        res,
        context,
        batch.value.writes.map((w) => w.path),
      )
    )
      return;
    await write(res, batch.value.writes, minAcks.value);
  };

  const list = (_req: IncomingMessage, res: ServerResponse, context: RouteContext) => {
    const query = context.url.searchParams;
    const prefix = parsePrefix(query.get("prefix"));
    const limit = parseCount(query.get("limit"), "limit", listLimitDefault, { min: 1, max: o.listLimitMax });
    const afterRaw = query.get("after");
    const after = afterRaw === null ? null : parsePrefix(afterRaw);
    if (refused(res, prefix) || refused(res, limit) || (after !== null && refused(res, after))) return;
    if (denied(res, context, [prefix.value])) return;
    const page = service.list(prefix.value, {
      limit: limit.value,
      ...(after === null ? {} : { after: after.value }),
    });
    const include = { value: query.get("values") === "1", sha256: query.get("hashes") === "1" };
    const entries = page
      .filter(
        (e) => !e.deleted && isUnderPrefix(e.path, prefix.value) && context.allows(`/api/v1/store/${e.path}`),
      )
      .map((e) => entryJson(e, include));
    // A full page may have more behind it; `next` is the cursor for `after`.
    const next = page.length >= limit.value ? (page.at(-1)?.path ?? null) : null;
    sendJson(res, 200, { entries, next });
  };

  const watch = (req: IncomingMessage, res: ServerResponse, context: RouteContext) => {
    const query = context.url.searchParams;
    const prefix = parsePrefix(query.get("prefix"));
    const fromSeq = parseCount(query.get("from_seq"), "from_seq", service.lastSeq(), {
      min: 0,
      max: Number.MAX_SAFE_INTEGER,
    });
    if (refused(res, prefix) || refused(res, fromSeq) || denied(res, context, [prefix.value])) return;
    const lastEventId = req.headers["last-event-id"];
    let resumeSeq = fromSeq.value;
    if (typeof lastEventId === "string") {
      const seq = resumeSeqOf(lastEventId, o.nodeId);
      if (seq === null) return sendError(res, ApiErrorCode.BadRequest, "Last-Event-ID must be <node>:<seq>");
      resumeSeq = seq;
    }
    const release = watchers.tryAcquire();
    if (!release) {
      return sendError(res, ApiErrorCode.TooManyRequests, `more than ${o.watchersMax} watches open`, {
        "retry-after": "5",
      });
    }
    res.once("close", release);
    serveWatch(res, service, {
      nodeId: o.nodeId,
      prefix: prefix.value,
      fromSeq: resumeSeq,
      values: query.get("values") === "1",
      allows: context.allows,
      heartbeatMs: o.watchHeartbeatMs,
      lagMax: o.watchLagMax,
    });
  };

  return [
    {
      path: "/api/v1/store/",
      prefix: true,
      methods: { GET: getOne, HEAD: getOne, PUT: putOne, DELETE: deleteOne },
    },
    { path: "/api/v1/store", methods: { GET: list, POST: postBatch } },
    { path: "/api/v1/store-watch", streaming: true, methods: { GET: watch } },
  ];
}

function parseJson(bytes: Buffer): Checked<unknown> {
  try {
    return { ok: true, value: JSON.parse(bytes.toString("utf8")) };
  } catch {
    return { ok: false, reason: "body is not valid JSON" };
  }
}

/** A single PUT sent as JSON: {"value": "<base64>"}. */
function jsonValueOf(bytes: Buffer): Checked<Buffer> {
  const parsed = parseJson(bytes);
  if (!parsed.ok) return parsed;
  const body = parsed.value as { value?: unknown } | null;
  if (
    typeof body !== "object" ||
    body === null ||
    Array.isArray(body) ||
    Object.keys(body).join() !== "value"
  ) {
    return { ok: false, reason: 'body must be {"value": "<base64>"}' };
  }
  if (typeof body.value !== "string") return { ok: false, reason: "value must be a base64 string" };
  const value = decodeBase64(body.value);
  return value === null ? { ok: false, reason: "value is not valid base64" } : { ok: true, value };
}
