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
    ["a\nb", /control character \(0x0a\)/],
    ["a\tb", /control character \(0x09\)/],
    ["a\u007fb", /control character \(0x7f\)/],
    ["a\u001fb", /control character \(0x1f\)/],
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
  if ([...path].some((c) => c.codePointAt(0)! < 0x20 || c.codePointAt(0) === 0x7f)) return false;
  if (new TextDecoder().decode(new TextEncoder().encode(path)) !== path) return false; // lone surrogates
  const segments = path.split("/");
  if (segments.length > storePathDepthMax) return false;
  return segments.every((s) => s !== "" && s !== "." && s !== ".." && utf8(s) <= storePathSegmentBytesMax);
}

test("store path: fuzz: random strings never crash and the verdict matches the rules", () => {
  const rng = new Prng("store-path-fuzz");
  const alphabet = ["a", "b", "/", ".", "..", "\\", "\u0000", "\n", "\u007f", "é", "😀", "\ud800", " ", "-"];
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
