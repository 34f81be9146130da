import assert from "node:assert/strict";
import { test } from "node:test";
import { Prng } from "../../../src/core/prng.ts";
import {
  isUnderPrefix,
  storePathBytesMax,
  storePathDepthMax,
  storePathSegmentBytesMax,
  validateStorePath,
} from "../../../src/core/store_path.ts";

const utf8 = (text: string) => new TextEncoder().encode(text).length;

test("store path: accepted paths", () => {
  const accepted = [
    "a",
    "certs/web.pem",
    "deep/er/path/file.txt",
    ".hidden",
    "a/.b/..c/...",
    "spaces are fine/and-dashes_and.dots",
    "ünïcödé/日本語/😀",
    // Neighbours of the refused ranges: U+00A0 (no-break space), U+200D (zero-width joiner), U+2030, U+206A.
    "a\u00a0b/\u00ffc",
    "a\u200db\u2030c\u2027d\u206ae\u061bf\u061dg",
    "a".repeat(storePathSegmentBytesMax),
    Array.from({ length: storePathDepthMax }, () => "d").join("/"),
    Array.from({ length: 4 }, () => "x".repeat(storePathSegmentBytesMax)).join("/"),
  ];
  for (const path of accepted) assert.deepEqual(validateStorePath(path), { ok: true, path }, path);
});

test("store path: refused paths name the rule", () => {
  const refused: [string, RegExp][] = [
    ["", /empty/],
    ["/etc/passwd", /absolute/],
    ["/", /absolute|ends/],
    ["..", /"\.\."/],
    ["a/../b", /segment 2 is "\.\."/],
    ["a/..", /"\.\."/],
    [".", /"\."/],
    ["./a", /segment 1 is "\."/],
    ["a//b", /segment 2 is empty/],
    ["a/", /ends with \//],
    ["a\u0000b", /NUL/],
    ["a\nb", /control character \(U\+000A\)/],
    ["a\tb", /control character \(U\+0009\)/],
    ["a\u007fb", /control character \(U\+007F\)/],
    ["a\u001fb", /control character \(U\+001F\)/],
    ["a\u0080b", /control character \(U\+0080\)/],
    ["next\u0085line", /control character \(U\+0085\)/],
    ["csi\u009b31m", /control character \(U\+009B\)/],
    ["a\u009f", /control character \(U\+009F\)/],
    ["invoice\u202Efdp.exe", /bidirectional formatting character \(U\+202E\)/],
    ["a\u202Ab", /bidirectional formatting character \(U\+202A\)/],
    ["a\u2066b\u2069", /bidirectional formatting character \(U\+2066\)/],
    ["a\u200Fb", /bidirectional formatting character \(U\+200F\)/],
    ["a\u061Cb", /bidirectional formatting character \(U\+061C\)/],
    ["a\u2028b", /line or paragraph separator \(U\+2028\)/],
    ["a\u2029b", /line or paragraph separator \(U\+2029\)/],
    ["a\\b", /backslash/],
    ["..\\..\\windows", /backslash/],
    ["a\ud800b", /unpaired surrogate/],
    ["a\udc00", /unpaired surrogate/],
    ["a".repeat(storePathSegmentBytesMax + 1), /segment 1 is 256 bytes/],
    ["é".repeat(128), /segment 1 is 256 bytes/],
    [Array.from({ length: storePathDepthMax + 1 }, () => "d").join("/"), /33 segments/],
    [Array.from({ length: 5 }, () => "x".repeat(storePathSegmentBytesMax)).join("/"), /1279 bytes/],
  ];
  for (const [path, reason] of refused) {
    const result = validateStorePath(path);
    assert.equal(result.ok, false, JSON.stringify(path));
    if (!result.ok) assert.match(result.reason, reason, JSON.stringify(path));
  }
});

test("store path: the byte limit counts UTF-8 bytes, not characters", () => {
  // 4 segments of 85 three-byte characters + 3 slashes = 1023 bytes but only 343 characters.
  const segment = "日".repeat(85);
  const near = [segment, segment, segment, segment].join("/");
  assert.equal(utf8(near), 1023);
  assert.equal(validateStorePath(near).ok, true);
  const over = `${near}ab`;
  assert.equal(utf8(over), 1025);
  assert.equal(validateStorePath(over).ok, false);
});

test("store path: isUnderPrefix table", () => {
  const cases: [string, string, boolean][] = [
    ["anything/at/all", "", true],
    ["certs/a", "certs/", true],
    ["certs", "certs/", false],
    ["certsX/a", "certs/", false],
    ["certs", "certs", true],
    ["certs/a/b", "certs", true],
    ["certsX", "certs", false],
    ["certsX/a", "certs", false],
    ["cert", "certs", false],
    ["a/b/c", "a/b", true],
    ["a/bc", "a/b", false],
    ["a/b.pem", "a/b", false],
  ];
  for (const [path, prefix, expected] of cases) {
    assert.equal(isUnderPrefix(path, prefix), expected, `${path} under ${prefix}`);
  }
});

/** A naive restatement of the rules, checked against every path the fuzz test sees accepted. */
function satisfiesRules(path: string): boolean {
  if (path.length === 0 || path.startsWith("/") || path.endsWith("/")) return false;
  if (utf8(path) > storePathBytesMax || path.includes("\\")) return false;
  const refusedCharacter = /[\p{Cc}\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/u;
  if (refusedCharacter.test(path)) return false;
  if (new TextDecoder().decode(new TextEncoder().encode(path)) !== path) return false; // lone surrogates
  const segments = path.split("/");
  if (segments.length > storePathDepthMax) return false;
  return segments.every((s) => s !== "" && s !== "." && s !== ".." && utf8(s) <= storePathSegmentBytesMax);
}

test("store path: fuzz: random strings never crash and the verdict matches the rules", () => {
  const rng = new Prng("store-path-fuzz");
  const alphabet = [
    ..."ab/.\\\u0000\n\u007f\u0085\u009b\u00a0é\u202e\u2066\u2028\u200d \u002d",
    "..",
    "😀",
    "\ud800",
  ];
  let acceptedCount = 0;
  for (let round = 0; round < 20_000; round++) {
    const parts: string[] = [];
    const length = rng.chance(0.02) ? rng.intBetween(300, 1200) : rng.intBetween(0, 12);
    for (let i = 0; i < length; i++) {
      parts.push(rng.chance(0.1) ? String.fromCharCode(rng.intBetween(0, 0xffff)) : rng.pick(alphabet));
    }
    const path = parts.join("");
    const result = validateStorePath(path);
    assert.equal(result.ok, satisfiesRules(path), JSON.stringify(path));
    if (result.ok) {
      acceptedCount++;
      assert.equal(result.path, path);
    } else {
      assert.ok(result.reason.length > 0);
    }
  }
  assert.ok(acceptedCount > 1000, `the fuzz must exercise accepted paths too (${acceptedCount})`);
});
