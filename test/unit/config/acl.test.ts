import assert from "node:assert/strict";
import { test } from "node:test";
import { aclAllows, defaultAcl } from "../../../src/config/index.ts";

test("acl: default lets peers only into /api/internal/ and any client elsewhere", () => {
  const acl = defaultAcl(["n2", "n3.eu"]);
  assert.equal(aclAllows(acl, "/api/internal/vote", "n2"), true);
  assert.equal(aclAllows(acl, "/api/internal/vote", "n3.eu"), true);
  assert.equal(aclAllows(acl, "/api/internal/vote", "n3xeu"), false);
  assert.equal(aclAllows(acl, "/api/internal/vote", "operator"), false);
  assert.equal(aclAllows(acl, "/api/status", "operator"), true);
});

test("acl: without peers the internal API is closed to everyone", () => {
  const acl = defaultAcl([]);
  assert.equal(aclAllows(acl, "/api/internal/x", ""), false);
  assert.equal(aclAllows(acl, "/api/internal/x", "n1"), false);
});

test("acl: first matching path decides; no match denies", () => {
  const acl = [
    { path: "^/api/admin/", cn: "^ops-" },
    { path: "^/api/", cn: ".*" },
  ];
  assert.equal(aclAllows(acl, "/api/admin/x", "dev-1"), false);
  assert.equal(aclAllows(acl, "/api/admin/x", "ops-1"), true);
  assert.equal(aclAllows(acl, "/api/other", "dev-1"), true);
  assert.equal(aclAllows(acl, "/metrics", "ops-1"), false);
});
