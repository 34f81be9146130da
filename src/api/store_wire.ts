// The store API's JSON shapes and the checks on what clients send: paths (src/core/store_path.ts), list
// prefixes, min_acks, strict base64 and batch bodies. Each check returns a typed result with a reason that
// names what was wrong, never a partial value.

import { createHash } from "node:crypto";
import { decodeBase64Strict } from "../core/base64.ts";
import { validateStorePath } from "../core/store_path.ts";
import type { StoreEntry } from "../core/store_types.ts";
import type { MinAcks, StoreWrite, Version, WriteOutcome } from "../store/index.ts";

/** A failure marked `tooLarge` breaks a size bound (413); any other is malformed input (400). */
export type Checked<T> = { ok: true; value: T } | { ok: false; reason: string; tooLarge?: boolean };

/** How an entry travels in JSON: the value (when asked) as base64, its size in bytes always. */
export interface EntryJson {
  path: string;
  version: Version;
  size: number;
  deleted?: true;
  value?: string;
  /** SHA-256 of the value, hex: lets `tandem sync` compare contents without downloading them. */
  sha256?: string;
}

export function entryJson(entry: StoreEntry, include: { value?: boolean; sha256?: boolean } = {}): EntryJson {
  const json: EntryJson = { path: entry.path, version: entry.version, size: entry.value.byteLength };
  if (entry.deleted) json.deleted = true;
  if (include.value) json.value = Buffer.from(entry.value).toString("base64");
  if (include.sha256) json.sha256 = createHash("sha256").update(entry.value).digest("hex");
  return json;
}

export interface WriteOutcomeJson {
  entries: EntryJson[];
  hostsOk: string[];
  hostsErr: Array<{ host: string; error: string }>;
  acked: boolean;
  minAcks: MinAcks;
}

export function writeOutcomeJson(outcome: WriteOutcome, minAcks: MinAcks): WriteOutcomeJson {
  return {
    entries: outcome.entries.map((entry) => entryJson(entry)),
    hostsOk: outcome.hostsOk,
    hostsErr: outcome.hostsErr,
    acked: outcome.acked,
    minAcks,
  };
}

/** More acknowledgements than any fleet has peers is a typo, not a request. */
export const minAcksMax = 1000;

/**
 * min_acks as a request names it: "all" (every configured peer) or a count. A count above `peerCount` can
 * never be met, so it is refused rather than answered "not acknowledged" after every peer acknowledged.
 */
export function parseMinAcks(raw: unknown, fallback: MinAcks, peerCount: number): Checked<MinAcks> {
  if (raw === undefined || raw === null) return { ok: true, value: fallback };
  if (raw === "all") return { ok: true, value: "all" };
  const n = typeof raw === "string" && /^\d{1,4}$/.test(raw) ? Number(raw) : raw;
  if (!(typeof n === "number" && Number.isSafeInteger(n) && n >= 0 && n <= minAcksMax))
    return { ok: false, reason: `min_acks must be "all" or an integer from 0 to ${minAcksMax}` };
  if (n > peerCount) {
    return {
      ok: false,
      reason: `min_acks ${n} is more than this node's ${peerCount} peer(s): no write could be acknowledged; "all" asks every peer`,
    };
  }
  return { ok: true, value: n };
}

/** The path parameter as sent in the URL: percent-decoded once, then held to the store path rules. */
export function decodePathParam(param: string): Checked<string> {
  let path: string;
  try {
    path = decodeURIComponent(param);
  } catch {
    return { ok: false, reason: "path is not valid percent-encoding" };
  }
  const checked = validateStorePath(path);
  return checked.ok ? { ok: true, value: checked.path } : { ok: false, reason: checked.reason };
}

/**
 * A list/watch prefix: "" (everything), a path ("certs" = certs and below) or a path ending in "/".
 * Same rules as a path, so a prefix cannot smuggle what a path may not hold.
 */
export function parsePrefix(raw: string | null): Checked<string> {
  if (raw === null || raw === "") return { ok: true, value: "" };
  const checked = validateStorePath(raw.endsWith("/") ? raw.slice(0, -1) : raw);
  return checked.ok ? { ok: true, value: raw } : { ok: false, reason: `prefix: ${checked.reason}` };
}

/** A bounded integer query parameter. */
export function parseCount(
  raw: string | null,
  name: string,
  fallback: number,
  bounds: { min: number; max: number },
): Checked<number> {
  if (raw === null) return { ok: true, value: fallback };
  if (!/^\d{1,16}$/.test(raw) || Number(raw) < bounds.min || Number(raw) > bounds.max) {
    return { ok: false, reason: `${name} must be an integer from ${bounds.min} to ${bounds.max}` };
  }
  return { ok: true, value: Number(raw) };
}

/** Standard padded base64 only (see src/core/base64.ts). */
export const decodeBase64 = decodeBase64Strict;

/** Bytes of the base64 text for `bytes` bytes of value. */
export function base64Bytes(bytes: number): number {
  return Math.ceil(bytes / 3) * 4;
}

export interface BatchLimits {
  writesMax: number;
  valueBytesMax: number;
}

export interface Batch {
  writes: StoreWrite[];
  minAcks: unknown;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function parseBatch(body: unknown, limits: BatchLimits): Checked<Batch> {
  if (!isRecord(body)) return { ok: false, reason: "body must be a JSON object {writes, minAcks}" };
  const unknownKey = Object.keys(body).find((key) => key !== "writes" && key !== "minAcks");
  if (unknownKey !== undefined) return { ok: false, reason: `unknown field ${JSON.stringify(unknownKey)}` };
  const { writes } = body;
  if (!Array.isArray(writes)) return { ok: false, reason: "writes must be an array" };
  if (writes.length === 0) return { ok: false, reason: "writes is empty" };
  if (writes.length > limits.writesMax) {
    return {
      ok: false,
      reason: `${writes.length} writes in one batch (limit ${limits.writesMax})`,
      tooLarge: true,
    };
  }
  const parsed: StoreWrite[] = [];
  const seen = new Set<string>();
  for (const [index, write] of writes.entries()) {
    const checked = parseBatchWrite(write, limits.valueBytesMax);
    if (!checked.ok) return { ...checked, reason: `writes[${index}]: ${checked.reason}` };
    // Two writes to one path in one batch would race for the same version; the client meant one of them.
    if (seen.has(checked.value.path))
      return { ok: false, reason: `writes[${index}]: path repeated in the batch` };
    seen.add(checked.value.path);
    parsed.push(checked.value);
  }
  return { ok: true, value: { writes: parsed, minAcks: body.minAcks } };
}

function parseBatchWrite(write: unknown, valueBytesMax: number): Checked<StoreWrite> {
  if (!isRecord(write)) return { ok: false, reason: "must be an object {path, value}" };
  const unknownKey = Object.keys(write).find((key) => key !== "path" && key !== "value");
  if (unknownKey !== undefined) return { ok: false, reason: `unknown field ${JSON.stringify(unknownKey)}` };
  if (typeof write.path !== "string") return { ok: false, reason: "path must be a string" };
  const path = validateStorePath(write.path);
  if (!path.ok) return { ok: false, reason: path.reason };
  if (write.value === null) return { ok: true, value: { path: path.path, value: null } };
  if (typeof write.value !== "string") return { ok: false, reason: "value must be a base64 string or null" };
  if (write.value.length > base64Bytes(valueBytesMax)) {
    return { ok: false, reason: `value is larger than ${valueBytesMax} bytes`, tooLarge: true };
  }
  const value = decodeBase64(write.value);
  if (value === null) return { ok: false, reason: "value is not valid base64" };
  if (value.byteLength > valueBytesMax)
    return { ok: false, reason: `value is larger than ${valueBytesMax} bytes`, tooLarge: true };
  return { ok: true, value: { path: path.path, value: new Uint8Array(value) } };
}
