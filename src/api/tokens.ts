// API bearer tokens. A token is `tdm_` + 32 random bytes in base64url; it is shown once when created and
// only its SHA-256 is kept, in a YAML file (mode 0600) that `tandem token` edits and the agent reads.
// The agent re-reads the file when it changes (checked by stat on each request that carries a token), so
// revoking a token needs no restart. A file that is missing or malformed admits no token: fail closed.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { parse, stringify } from "yaml";
import { z } from "zod";
import { nodeIdPattern } from "../config/index.ts";
import { writeFileAtomic } from "../shell/index.ts";

export const tokenPrefix = "tdm_";
const tokenRandomBytes = 32;
/** base64url of 32 bytes is 43 characters. */
const tokenPattern = /^tdm_[A-Za-z0-9_-]{43}$/;
const sha256Pattern = /^[0-9a-f]{64}$/;
const tokensFileMode = 0o600;
/** Names follow node ids: short, printable, and safe inside an ACL identity `token:<name>`. */
export const tokenNamePattern = nodeIdPattern;
/** The ACL sees a token holder under this prefix, so a token named like a node is never that node. */
export const tokenIdentityPrefix = "token:";

export interface TokenRecord {
  name: string;
  /** Hex SHA-256 of the whole token text. */
  sha256: string;
  /** ISO 8601. */
  created: string;
}

const tokensFileSchema = z.strictObject({
  tokens: z.array(
    z.strictObject({
      name: z.string().regex(tokenNamePattern),
      sha256: z.string().regex(sha256Pattern),
      created: z.string(),
    }),
  ),
});

export class TokensFileError extends Error {
  override name = "TokensFileError";
}

export class TokenNameError extends Error {
  override name = "TokenNameError";
}

export function newToken(): string {
  return `${tokenPrefix}${randomBytes(tokenRandomBytes).toString("base64url")}`;
}

export function tokenSha256(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** The records of a tokens file; a missing file has none. Throws TokensFileError when it is malformed. */
export function readTokensFile(path: string): TokenRecord[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw new TokensFileError(`cannot read tokens file ${path}`, { cause });
  }
  let document: unknown;
  try {
    document = parse(text) ?? { tokens: [] };
  } catch (cause) {
    throw new TokensFileError(`tokens file ${path} is not valid YAML`, { cause });
  }
  const checked = tokensFileSchema.safeParse(document);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    throw new TokensFileError(`tokens file ${path}: ${issue?.path.join(".")}: ${issue?.message}`);
  }
  return checked.data.tokens;
}

/** Replaces the file atomically (temp file, then rename), mode 0600. */
export function writeTokensFile(path: string, records: readonly TokenRecord[]): void {
  const header = "# Tandem API tokens: SHA-256 of each token only; a token is shown once, when created.\n";
  try {
    writeFileAtomic(path, header + stringify({ tokens: records }), tokensFileMode);
  } catch (cause) {
    throw new TokensFileError(`cannot write tokens file ${path}`, { cause });
  }
}

/** Adds a token named `name`; returns the token text, which exists nowhere else afterwards. */
export function createToken(path: string, name: string, now: Date): string {
  if (!tokenNamePattern.test(name)) {
    throw new TokenNameError(`token name "${name}" must match ${tokenNamePattern.source}`);
  }
  const records = readTokensFile(path);
  if (records.some((r) => r.name === name)) throw new TokenNameError(`a token named "${name}" exists`);
  const token = newToken();
  writeTokensFile(path, [...records, { name, sha256: tokenSha256(token), created: now.toISOString() }]);
  return token;
}

/** Removes the token named `name`; false when there was none. */
export function revokeToken(path: string, name: string): boolean {
  const records = readTokensFile(path);
  const kept = records.filter((r) => r.name !== name);
  if (kept.length === records.length) return false;
  writeTokensFile(path, kept);
  return true;
}

/** What a presented bearer token is: a known token's name, or not valid. */
export type TokenCheck = { valid: true; name: string } | { valid: false };

export interface TokenVerifier {
  verify(token: string): TokenCheck;
}

interface Loaded {
  /** Identifies the file version: a rename (new inode), a rewrite (mtime, size) each change it. */
  stamp: string;
  records: Array<{ name: string; sha256: Buffer }>;
}

/** The agent's view of a tokens file, re-read whenever its stat changes. */
export class TokensFile implements TokenVerifier {
  readonly path: string;
  private loaded: Loaded = { stamp: "", records: [] };
  private readonly onError: (error: TokensFileError) => void;

  /** `onError` hears about a malformed file once per version of it (no token is admitted meanwhile). */
  constructor(path: string, onError: (error: TokensFileError) => void) {
    this.path = path;
    this.onError = onError;
  }

  verify(token: string): TokenCheck {
    const records = this.current();
    if (!tokenPattern.test(token)) return { valid: false };
    const presented = Buffer.from(tokenSha256(token), "hex");
    let found: string | null = null;
    // Every record is compared, in constant time each, so timing tells nothing about which one matched.
    for (const record of records) {
      if (timingSafeEqual(record.sha256, presented) && found === null) found = record.name;
    }
    return found === null ? { valid: false } : { valid: true, name: found };
  }

  private current(): Loaded["records"] {
    const stamp = fileStamp(this.path);
    if (stamp === this.loaded.stamp) return this.loaded.records;
    let records: Loaded["records"] = [];
    try {
      records = readTokensFile(this.path).map((r) => ({
        name: r.name,
        sha256: Buffer.from(r.sha256, "hex"),
      }));
    } catch (error) {
      this.onError(error as TokensFileError);
    }
    this.loaded = { stamp, records };
    return records;
  }
}

function fileStamp(path: string): string {
  try {
    const stat = statSync(path, { bigint: true });
    return `${stat.ino}:${stat.size}:${stat.mtimeNs}`;
  } catch {
    return "missing";
  }
}
