// Names and quoting for the PostgreSQL engine: identifiers and literals in SQL, libpq keyword strings,
// connection URLs (a password never printed), include/exclude patterns, and the deterministic names of
// Tandem's publication, subscriptions and replication slots.

import { createHash } from "node:crypto";
import { globMatches } from "../core/name_pattern.ts";

/** The publication Tandem creates in each replicated database of the primary. */
export const publicationName = "tandem";
/** Comment set on a database Tandem creates on a replica; `orphans()` recognises it. */
export const markerPrefix = "tandem: replicated from ";
const identifierBytesMax = 63;

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A string literal (standard_conforming_strings, on by default since 9.1: backslashes are plain). */
export function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/** `schema.table`, both quoted. */
export function qualified(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}

/**
 * The subscription's name on the replica, which is also its slot's name on the primary: slots are unique per
 * primary across databases and replicas, so both parts are in it. Sanitized to [a-z0-9_] and cut to fit 63
 * bytes, with a hash of the exact pair, so `a_b`+`c` and `a`+`b_c` (or `My-DB` and `my_db`) never meet.
 */
export function subscriptionName(replica: string, database: string): string {
  const clean = (text: string) => text.toLowerCase().replace(/[^a-z0-9_]+/g, "_");
  const hash = createHash("sha256")
    .update(JSON.stringify([replica, database]))
    .digest("hex")
    .slice(0, 8);
  const base = `tandem_${clean(replica)}_${clean(database)}`;
  return `${base.slice(0, identifierBytesMax - hash.length - 1)}_${hash}`;
}

export function selected(name: string, include: readonly string[], exclude: readonly string[]): boolean {
  return include.some((p) => globMatches(p, name)) && !exclude.some((p) => globMatches(p, name));
}

/** A server's connection as configured: a postgres:// URL, the password given apart (or in the URL). */
export interface ServerTarget {
  name: string;
  url: string;
  password?: string;
}

export interface ConnectionParts {
  host: string;
  port: number;
  user: string;
  database: string;
  password: string | undefined;
  sslmode: string | undefined;
}

/** The URL's parts for `database` (the URL's own database when not given). */
export function connectionParts(target: ServerTarget, database?: string): ConnectionParts {
  let url: URL;
  try {
    url = new URL(target.url);
  } catch {
    throw new Error(`${target.name}: the connection URL is not a URL (postgres://user@host:port/database)`);
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw new Error(`${target.name}: the connection URL must start with postgres://`);
  }
  const inUrl = url.password === "" ? undefined : decodeURIComponent(url.password);
  return {
    // A unix socket folder may be given as ?host=/run/postgresql, as libpq allows.
    host: url.searchParams.get("host") ?? decodeURIComponent(url.hostname.replace(/^\[|\]$/g, "")),
    port: url.port === "" ? 5432 : Number(url.port),
    user: decodeURIComponent(url.username) || "postgres",
    database: database ?? (decodeURIComponent(url.pathname.slice(1)) || "postgres"),
    password: target.password ?? inUrl,
    sslmode: url.searchParams.get("sslmode") ?? undefined,
  };
}

/** How a server is named in logs and errors: its name and URL, the password masked. */
export function describeServer(target: ServerTarget, database?: string): string {
  const parts = connectionParts(target, database);
  const host = parts.host.includes(":") ? `[${parts.host}]` : parts.host;
  return `${target.name} (postgres://${parts.user}@${host}:${parts.port}/${parts.database})`;
}

/** Replaces a known password wherever it appears in `text` (a child's stderr, a driver's message). */
export function maskSecret(text: string, secret: string | undefined): string {
  return secret === undefined || secret === "" ? text : text.split(secret).join("***");
}

/** A libpq keyword/value string (for a subscription's CONNECTION, or a child's --dbname); 10 s to connect. */
export function libpqConninfo(parts: ConnectionParts, withPassword: boolean): string {
  const quote = (value: string) => `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
  const pairs: Array<[string, string]> = [
    ["host", parts.host],
    ["port", String(parts.port)],
    ["dbname", parts.database],
    ["user", parts.user],
    ["connect_timeout", "10"],
  ];
  if (parts.sslmode !== undefined) pairs.push(["sslmode", parts.sslmode]);
  if (withPassword && parts.password !== undefined) pairs.push(["password", parts.password]);
  return pairs.map(([key, value]) => `${key}=${quote(value)}`).join(" ");
}
