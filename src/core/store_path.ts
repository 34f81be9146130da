// Store path rules. A store path names a file under every node's materialised directory, so it must be a
// plain relative path that cannot climb out of that directory or confuse the programs that read it:
// slash-separated segments, no "." or "..", no empty segments, no control characters (C0, DEL, C1), no
// bidirectional formatting or line/paragraph separators (they make a name print as another: Trojan Source),
// no backslashes, bounded length and depth. Every path from a client is checked here before anything changes.

/** Total length of a path in UTF-8 bytes. */
export const storePathBytesMax = 1024;
/** Length of one segment in UTF-8 bytes (the usual file-name limit, NAME_MAX). */
export const storePathSegmentBytesMax = 255;
/** Number of segments. */
export const storePathDepthMax = 32;

export type StorePathResult = { ok: true; path: string } | { ok: false; reason: string };

/** Bidirectional formatting characters (ALM, LRM, RLM, embeddings, overrides, isolates) and U+2028/2029. */
function isBidiOrSeparator(code: number): boolean {
  return (
    code === 0x061c ||
    code === 0x200e ||
    code === 0x200f ||
    (code >= 0x2028 && code <= 0x202e) ||
    (code >= 0x2066 && code <= 0x2069)
  );
}

/** The first character that a path must not contain, described for an error message; null when none. */
function forbiddenCharacter(code: number, next: number): string | null {
  if (code === 0) return "a NUL character";
  if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return `a control character (${codePoint(code)})`;
  if (code === 0x5c) return "a backslash";
  if (code === 0x2028 || code === 0x2029) return `a line or paragraph separator (${codePoint(code)})`;
  if (isBidiOrSeparator(code)) return `a bidirectional formatting character (${codePoint(code)})`;
  const unpaired =
    code >= 0xd800 && code <= 0xdbff ? !(next >= 0xdc00 && next <= 0xdfff) : code >= 0xdc00 && code <= 0xdfff;
  return unpaired ? "an unpaired surrogate (not valid Unicode)" : null;
}

/** U+XXXX: how the error names a character without printing it. */
function codePoint(code: number): string {
  return `U+${code.toString(16).toUpperCase().padStart(4, "0")}`;
}

function segmentProblem(
  path: string,
  start: number,
  end: number,
  bytes: number,
  index: number,
): string | null {
  if (start === end) return `segment ${index + 1} is empty`;
  if (end - start <= 2 && (path.slice(start, end) === "." || path.slice(start, end) === "..")) {
    return `segment ${index + 1} is "${path.slice(start, end)}"`;
  }
  if (bytes > storePathSegmentBytesMax) {
    return `segment ${index + 1} is ${bytes} bytes (limit ${storePathSegmentBytesMax})`;
  }
  return null;
}

/**
 * Checks a store path against the rules above; the reason names the first rule broken. One pass over the
 * characters (every replicated entry from a peer goes through here), counting UTF-8 bytes as it goes.
 */
export function validateStorePath(path: string): StorePathResult {
  if (typeof path !== "string") return { ok: false, reason: "path must be a string" };
  if (path === "") return { ok: false, reason: "path is empty" };
  let bytes = 0;
  let segments = 1;
  let segmentStart = 0;
  let segmentBytes = 0;
  let firstSegmentProblem: string | null = null;
  for (let i = 0; i <= path.length; i++) {
    const code = i < path.length ? path.charCodeAt(i) : 0x2f;
    if (code === 0x2f) {
      firstSegmentProblem ??= segmentProblem(path, segmentStart, i, segmentBytes, segments - 1);
      if (i < path.length) {
        segments++;
        bytes++;
      }
      segmentStart = i + 1;
      segmentBytes = 0;
      continue;
    }
    const forbidden =
      code < 0x20 ||
      code === 0x5c ||
      (code >= 0x7f && code <= 0x9f) ||
      (code >= 0xd800 && code <= 0xdfff) ||
      (code >= 0x061c && isBidiOrSeparator(code));
    let width = code < 0x80 ? 1 : code < 0x800 ? 2 : 3;
    if (forbidden) {
      const character = forbiddenCharacter(code, path.charCodeAt(i + 1));
      if (character !== null) return { ok: false, reason: `path contains ${character}` };
      // A well-formed surrogate pair: one 4-byte character.
      width = 4;
      i++;
    }
    bytes += width;
    segmentBytes += width;
  }
  if (bytes > storePathBytesMax)
    return { ok: false, reason: `path is ${bytes} bytes (limit ${storePathBytesMax})` };
  if (path.startsWith("/")) return { ok: false, reason: "path is absolute (starts with /)" };
  if (path.endsWith("/")) return { ok: false, reason: "path ends with /" };
  if (segments > storePathDepthMax) {
    return { ok: false, reason: `path has ${segments} segments (limit ${storePathDepthMax})` };
  }
  return firstSegmentProblem === null ? { ok: true, path } : { ok: false, reason: firstSegmentProblem };
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
