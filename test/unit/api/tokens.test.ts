import assert from "node:assert/strict";
import crypto from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, mock, test } from "node:test";
import {
  createToken,
  readTokensFile,
  revokeToken,
  TokenNameError,
  TokensFile,
  TokensFileError,
  tokenSha256,
} from "../../../src/api/tokens.ts";

const dir = mkdtempSync(join(tmpdir(), "tandem-tokens-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileCount = 0;
const freshFile = () => join(dir, `tokens-${fileCount++}.yml`);
const now = new Date("2026-11-24T12:00:00.000Z");

test("tokens: create writes only the SHA-256, mode 0600, and returns a tdm_ token", () => {
  const path = freshFile();
  const token = createToken(path, "ops", now);
  assert.match(token, /^tdm_[A-Za-z0-9_-]{43}$/);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const text = readFileSync(path, "utf8");
  assert.ok(!text.includes(token.slice(4)), "the token itself is not stored");
  assert.deepEqual(readTokensFile(path), [
    { name: "ops", sha256: tokenSha256(token), created: "2026-11-24T12:00:00.000Z" },
  ]);
  assert.notEqual(createToken(path, "ci", now), token, "each token is fresh randomness");
  assert.deepEqual(
    readTokensFile(path).map((r) => r.name),
    ["ops", "ci"],
  );
});

test("tokens: create refuses a duplicate or malformed name and leaves the file as it was", () => {
  const path = freshFile();
  createToken(path, "ops", now);
  const before = readFileSync(path, "utf8");
  assert.throws(() => createToken(path, "ops", now), TokenNameError);
  assert.throws(() => createToken(path, "Bad Name", now), TokenNameError);
  assert.throws(() => createToken(path, "", now), TokenNameError);
  assert.equal(readFileSync(path, "utf8"), before);
});

test("tokens: revoke removes one name; an unknown name is reported, not an error", () => {
  const path = freshFile();
  createToken(path, "ops", now);
  createToken(path, "ci", now);
  assert.equal(revokeToken(path, "ops"), true);
  assert.equal(revokeToken(path, "ops"), false);
  assert.deepEqual(
    readTokensFile(path).map((r) => r.name),
    ["ci"],
  );
  assert.equal(statSync(path).mode & 0o777, 0o600);
});

test("tokens: a missing file has no tokens; a malformed one is a TokensFileError", () => {
  assert.deepEqual(readTokensFile(join(dir, "absent.yml")), []);
  const path = freshFile();
  writeFileSync(path, "tokens:\n  - name: ops\n    sha256: not-hex\n    created: x\n");
  assert.throws(() => readTokensFile(path), TokensFileError);
  writeFileSync(path, "tokens: [");
  assert.throws(() => readTokensFile(path), TokensFileError);
});

test("tokens: verify names the holder; wrong, malformed and revoked tokens are refused without a restart", () => {
  const path = freshFile();
  const ops = createToken(path, "ops", now);
  const ci = createToken(path, "ci", now);
  const verifier = new TokensFile(path, () => assert.fail("no file error expected"));
  assert.deepEqual(verifier.verify(ops), { valid: true, name: "ops" });
  assert.deepEqual(verifier.verify(ci), { valid: true, name: "ci" });
  assert.deepEqual(verifier.verify(`${ops.slice(0, -1)}${ops.endsWith("A") ? "B" : "A"}`), { valid: false });
  assert.deepEqual(verifier.verify("tdm_short"), { valid: false });
  assert.deepEqual(verifier.verify(tokenSha256(ops)), { valid: false }, "the stored hash is not a token");
  revokeToken(path, "ops");
  assert.deepEqual(verifier.verify(ops), { valid: false }, "the same verifier sees the revocation");
  assert.deepEqual(verifier.verify(ci), { valid: true, name: "ci" });
  const later = createToken(path, "later", now);
  assert.deepEqual(verifier.verify(later), { valid: true, name: "later" }, "and new tokens");
});

test("tokens: a file turned malformed admits no token and is reported once per version", () => {
  const path = freshFile();
  const ops = createToken(path, "ops", now);
  const errors: TokensFileError[] = [];
  const verifier = new TokensFile(path, (error) => errors.push(error));
  assert.equal(verifier.verify(ops).valid, true);
  writeFileSync(path, "tokens: {}\n# a different size, so a new version\n");
  assert.equal(verifier.verify(ops).valid, false);
  assert.equal(verifier.verify(ops).valid, false);
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof TokensFileError);
  rmSync(path);
  assert.equal(verifier.verify(ops).valid, false, "a deleted file admits nothing");
});

test("tokens: verify compares hashes with crypto.timingSafeEqual, once per known token", () => {
  const path = freshFile();
  const ops = createToken(path, "ops", now);
  createToken(path, "ci", now);
  createToken(path, "web", now);
  const verifier = new TokensFile(path, () => {});
  const spy = mock.method(crypto, "timingSafeEqual");
  syncBuiltinESMExports();
  try {
    assert.equal(verifier.verify(ops).valid, true);
    assert.equal(spy.mock.callCount(), 3, "every record is compared, even after a match");
    assert.equal(verifier.verify(ops.replace(/.$/, (c) => (c === "x" ? "y" : "x"))).valid, false);
    assert.equal(spy.mock.callCount(), 6);
  } finally {
    spy.mock.restore();
    syncBuiltinESMExports();
  }
});
