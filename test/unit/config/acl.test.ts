import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultAcl } from "../../../src/config/index.ts";

const matches = (pattern: string, text: string) => new RegExp(pattern).test(text);

test("acl: default lets exactly the peers into /api/internal/ and any client elsewhere", () => {
  const [internal, rest] = defaultAcl(["n2", "n3.eu"]);
  assert.ok(internal && rest);
  assert.ok(matches(internal.path, "/api/internal/vote"));
  assert.ok(!matches(internal.path, "/api/status"));
  for (const id of ["n2", "n3.eu"]) assert.ok(matches(internal.cn, id), id);
  // Ids are escaped and anchored: no prefix, suffix or wildcard matches.
  for (const id of ["n3xeu", "n22", "xn2", "operator", ""]) assert.ok(!matches(internal.cn, id), id);
  assert.ok(matches(rest.path, "/api/status"));
  assert.ok(matches(rest.cn, "operator"));
});

test("acl: without peers the internal rule matches no identity", () => {
  const [internal] = defaultAcl([]);
  for (const id of ["", "n1", "(?!)"]) assert.ok(!matches(internal?.cn ?? ".*", id), id);
});
