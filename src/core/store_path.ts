// Store path rules. A store path names a file under every node's materialised directory, so it must be a
// plain relative path that cannot climb out of that directory or confuse the programs that read it:
// slash-separated segments, no "." or "..", no empty segments, no control characters or backslashes,
// bounded length and depth. Every path from a client is checked here before anything changes.

/** Total length of a path in UTF-8 bytes. */
export const storePathBytesMax = 1024;
/** Length of one segment in UTF-8 bytes (the usual file-name limit, NAME_MAX). */
export const storePathSegmentBytesMax = 255;
/** Number of segments. */
export const storePathDepthMax = 32;

export type StorePathResult = { ok: true; path: string } | { ok: false; reason: string };

const encoder = new TextEncoder();

function utf8Bytes(text: string): number {
  return encoder.encode(text).length;
}

/** The first character that a path must not contain, described for an error message; null when none. */
function forbiddenCharacter(path: string): string | null {
  for (let i = 0; i < path.length; i++) {
    const code = path.charCodeAt(i);
    if (code === 0) return "a NUL character";
    if (code < 0x20 || code === 0x7f) return `a control character (0x${code.toString(16).padStart(2, "0")})`;
    if (code === 0x5c) return "a backslash";
    if (code >= 0xd800 && code <= 0xdbff) {
      const next = path.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return "an unpaired surrogate (not valid Unicode)";
      i++;
    } else if (code >= 0xdc00 && code <= 0xdfff) {
      return "an unpaired surrogate (not valid Unicode)";
    }
  }
  return null;
}

function segmentProblem(segment: string, index: number): string | null {
  if (segment === "") return `segment ${index + 1} is empty`;
  if (segment === "." || segment === "..") return `segment ${index + 1} is "${segment}"`;
  const bytes = utf8Bytes(segment);
  if (bytes > storePathSegmentBytesMax) {
    return `segment ${index + 1} is ${bytes} bytes (limit ${storePathSegmentBytesMax})`;
  }
  return null;
}

/** Checks a store path against the rules above; the reason names the first rule broken. */
export function validateStorePath(path: string): StorePathResult {
  if (typeof path !== "string") return { ok: false, reason: "path must be a string" };
  if (path === "") return { ok: false, reason: "path is empty" };
  const character = forbiddenCharacter(path);
  if (character !== null) return { ok: false, reason: `path contains ${character}` };
  const bytes = utf8Bytes(path);
  if (bytes > storePathBytesMax)
    return { ok: false, reason: `path is ${bytes} bytes (limit ${storePathBytesMax})` };
  if (path.startsWith("/")) return { ok: false, reason: "path is absolute (starts with /)" };
  if (path.endsWith("/")) return { ok: false, reason: "path ends with /" };
  const segments = path.split("/");
  if (segments.length > storePathDepthMax) {
    return { ok: false, reason: `path has ${segments.length} segments (limit ${storePathDepthMax})` };
  }
  for (const [index, segment] of segments.entries()) {
    const problem = segmentProblem(segment, index);
    if (problem !== null) return { ok: false, reason: problem };
  }
  return { ok: true, path };
}

/**
 * Whether `path` lies under `prefix`: "" covers everything; a prefix ending in "/" covers what starts with
 * it ("certs/" covers "certs/a", not "certs"); any other prefix names a path and what lies below it
 * ("certs" covers "certs" and "certs/a", never "certsX").
 */
export function isUnderPrefix(path: string, prefix: string): boolean {
  if (prefix === "") return true;
  if (prefix.endsWith("/")) return path.startsWith(prefix);
  return path === prefix || path.startsWith(`${prefix}/`);
}
